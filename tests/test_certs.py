"""The committed test CA, regeneration, and a clear failure with the wrong CA."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography import x509

import quicsim
from quicsim import certs


def test_committed_certs_chain_to_the_ca():
    paths = certs.paths_in(certs.REPO_CERTS)
    ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
    server = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_generate_makes_a_fresh_chain(tmp_path):
    paths = certs.generate(tmp_path)
    ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
    x509.load_pem_x509_certificate(paths.cert.read_bytes()).verify_directly_issued_by(ca)
    assert paths.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.asyncio
async def test_wrong_ca_fails_clearly_not_a_hang(tmp_path):
    other = certs.generate(tmp_path)
    listener = await quicsim.listen()
    try:
        start = time.monotonic()
        with pytest.raises(ConnectionError) as info:
            await quicsim.connect("127.0.0.1", listener.port, ca_file=str(other.ca))
        assert time.monotonic() - start < 5
        assert "certificate" in str(info.value).lower() or "verif" in str(info.value).lower()
    finally:
        listener.close()
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_non_loopback_address_is_refused():
    with pytest.raises(ValueError, match="loopback"):
        await quicsim.connect("192.0.2.1", 4433)

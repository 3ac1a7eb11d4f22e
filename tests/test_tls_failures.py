"""Each kind of TLS failure says what went wrong and what to do; a missing CA file is
named at once instead of surfacing as a handshake timeout."""

from __future__ import annotations

import time

import pytest

import quicsim
from quicsim import Settings, certs


async def _connect_error(**kw) -> str:
    listen_kw = kw.pop("listen", {})
    listener = await quicsim.listen(**listen_kw)
    try:
        with pytest.raises(ConnectionError) as info:
            await quicsim.connect("127.0.0.1", listener.port, settings=Settings(handshake_idle_timeout_ms=5000), **kw)
        return str(info.value)
    finally:
        listener.close()


@pytest.mark.asyncio
async def test_missing_ca_file_fails_at_once_naming_it(tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    started = time.monotonic()
    with pytest.raises(FileNotFoundError, match="ca_file .*no-such-ca.pem: no such file"):
        await quicsim.connect("127.0.0.1", 9, ca_file=str(missing))
    assert time.monotonic() - started < 1


@pytest.mark.asyncio
async def test_unknown_ca_hint(tmp_path):
    other = certs.generate(tmp_path)
    text = await _connect_error(ca_file=str(other.ca))
    assert "not signed by the CA in ca_file" in text


@pytest.mark.asyncio
async def test_name_mismatch_hint():
    text = await _connect_error(server_name="example.com")
    assert "not valid for server_name" in text and "localhost" in text
    assert "signed by the CA" not in text


@pytest.mark.asyncio
async def test_expired_certificate_hint(tmp_path):
    expired = certs.generate(tmp_path, days=0)  # valid until yesterday
    text = await _connect_error(ca_file=str(expired.ca),
                                listen={"cert_file": str(expired.cert), "key_file": str(expired.key)})
    assert "has expired or is not valid yet" in text and "quicsim certs" in text


@pytest.mark.asyncio
async def test_alpn_mismatch_hint():
    text = await _connect_error(alpn="not-quicsim")
    assert "no common ALPN protocol" in text and "signed by the CA" not in text


def test_the_docs_say_where_the_certificates_come_from():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text().split())
    for needed in ("`QUICSIM_CERTS`", "~/.cache/quicsim/certs", "`$XDG_CACHE_HOME/quicsim/certs`",
                   "refuses to replace existing files unless given `--force`"):
        assert needed in readme, needed
    # what the API page promises is what default_paths() does
    assert certs.default_paths.__doc__ and "QUICSIM_CERTS" in certs.default_paths.__doc__


def test_quicsim_certs_env_is_used(tmp_path, monkeypatch):
    made = certs.generate(tmp_path)
    monkeypatch.setenv("QUICSIM_CERTS", str(tmp_path))
    assert certs.default_paths() == made

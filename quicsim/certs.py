"""The project's test CA and its ``localhost`` server certificate (Ed25519), made with
``cryptography``. Committed copies live in ``certs/``; ``quicsim certs DIR`` makes new ones."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import UsageError

#: certs/ at the repository root, used when running from a checkout or editable install.
REPO_CERTS = Path(__file__).resolve().parent.parent / "certs"
CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"


@dataclass(frozen=True)
class CertPaths:
    ca: Path
    cert: Path
    key: Path


def default_paths() -> CertPaths:
    """The test CA, server certificate and key quicsim uses unless told otherwise:
    ``$QUICSIM_CERTS``, else the repository's ``certs/``, else a per-user copy made
    on first use (an installed package has no repository next to it)."""
    env = os.environ.get("QUICSIM_CERTS")
    if env:
        return _checked(env)
    repo = paths_in(REPO_CERTS)
    if repo.ca.exists() and repo.cert.exists() and repo.key.exists():
        return repo
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quicsim" / "certs"
    paths = paths_in(cache)
    if not (paths.ca.exists() and paths.cert.exists() and paths.key.exists()):
        generate(cache)
    return paths


def _checked(directory: str) -> CertPaths:
    """The files in the folder ``$QUICSIM_CERTS`` names, which must all be there: a
    missing one is one line naming it, not a traceback from deep inside TLS."""
    paths = paths_in(directory)
    if not Path(directory).is_dir():
        raise UsageError(f"QUICSIM_CERTS={directory}: no such folder (make one with: quicsim certs {directory})")
    missing = [p.name for p in (paths.ca, paths.cert, paths.key) if not p.is_file()]
    if missing:
        force = " --force" if len(missing) < 3 else ""  # (certs refuses to replace files without it)
        raise UsageError(f"QUICSIM_CERTS={directory}: no {', '.join(missing)} in it "
                         f"(make them with: quicsim certs{force} {directory})")
    return paths


def paths_in(directory: str | Path) -> CertPaths:
    d = Path(directory)
    return CertPaths(ca=d / CA_FILE, cert=d / CERT_FILE, key=d / KEY_FILE)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "quicsim"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def generate(directory: str | Path, *, days: int = 3650, ca_name: str = "quicsim test CA") -> CertPaths:
    """Write a new CA and a ``localhost`` / 127.0.0.1 / ::1 server certificate signed by it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    until = now + datetime.timedelta(days=days)

    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, None)
    )

    key = ed25519.Ed25519PrivateKey.generate()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, None)
    )

    paths = paths_in(out)
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths

"""What to do about a failed TLS handshake: one hint per kind of failure (unknown CA,
name mismatch, expired certificate, ALPN mismatch) instead of one guess for all."""

from __future__ import annotations

#: TLS alerts (RFC 8446 section 6) a handshake fails with, and what to do about each.
_UNKNOWN_CA = ("the server certificate is not signed by the CA in ca_file: pass the CA that signed it "
               "(quicsim's test CA: certs/ca.pem, or $QUICSIM_CERTS/ca.pem)")
_TLS_HINTS = {
    45: "the server certificate has expired or is not valid yet: make new ones with `quicsim certs DIR --force`",
    48: _UNKNOWN_CA,
    120: "no common ALPN protocol: client and server must be given the same alpn= (default 'quicsim')",
}


def tls_hint(alert: int, reason: str) -> str:
    """One hint per kind of TLS failure, from the alert and aioquic's reason text."""
    if "doesn't match" in reason or "hostname" in reason:
        return ("the server certificate is not valid for server_name: pass a server_name= it names "
                "(quicsim's test certificate: localhost, 127.0.0.1, ::1)")
    if alert == 42 and "issuer" in reason:
        return _UNKNOWN_CA
    return _TLS_HINTS.get(alert, "check ca_file, server_name, the certificate's dates and alpn")

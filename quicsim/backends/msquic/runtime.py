"""The loaded libmsquic behind the msquic backend: one library and one registration per
process and path, and a configuration (ALPN, QUIC_SETTINGS, credentials) per role and
settings.

quicsim's :class:`~quicsim.Settings` maps onto QUIC_SETTINGS field by field; what only the
simulator has (faults, preemption) is refused with :class:`~quicsim.backends.BackendError`:
the library runs as it is.
"""

from __future__ import annotations

import atexit
import ctypes
import threading
from ctypes import byref
from typing import Any

from ... import certs as _certs
from ...faults import FAULTS
from ...settings import Settings
from ...errors import BackendError
from .. import HOW_TO_GET_MSQUIC, find_msquic
from . import bindings as b

#: Settings fields and the QUIC_SETTINGS field each one sets (every one, always: MsQuic's
#: own defaults differ from quicsim's, PeerBidiStreamCount 0 above all).
SETTINGS_FIELDS: dict[str, str] = {
    "idle_timeout_ms": "IdleTimeoutMs",
    "handshake_idle_timeout_ms": "HandshakeIdleTimeoutMs",
    "send_buffering": "SendBufferingEnabled",
    "peer_bidi_stream_count": "PeerBidiStreamCount",
    "peer_unidi_stream_count": "PeerUnidiStreamCount",
    "stream_recv_window_default": "StreamRecvWindowDefault",
    "conn_flow_control_window": "ConnFlowControlWindow",
    "datagram_receive_enabled": "DatagramReceiveEnabled",
    "initial_rtt_ms": "InitialRttMs",
}
#: Settings fields that exist only in the simulator.
SIMULATOR_ONLY = ("faults", "preempt", "preempt_window_ms")


def simulator_faults(faults: frozenset[str]) -> list[str]:
    """The faults of ``faults`` the real library does not have by itself (those it has,
    such as reentrant-close, need no injecting: the library does it)."""
    return sorted(name for name in faults if not FAULTS[name].in_library)


def check_settings(settings: Settings, side: str = "") -> None:
    """Refuse what the real library cannot do, naming it (BackendError)."""
    where = f"{side} " if side else ""
    injected = simulator_faults(settings.faults)
    if injected:
        raise BackendError(f"{where}settings inject faults ({', '.join(injected)}): faults are the simulator's; "
                           "the msquic backend runs the library as it is")
    if settings.preempt:
        raise BackendError(f"{where}settings.preempt={settings.preempt}: preemption points are the simulator's; "
                           "on the msquic backend MsQuic's worker threads race for real")
    for name in ("peer_bidi_stream_count", "peer_unidi_stream_count"):
        if getattr(settings, name) > 0xFFFF:
            raise BackendError(f"{where}settings.{name}={getattr(settings, name)}: MsQuic takes at most 65535")
    window = settings.stream_recv_window_default
    if window == 0 or window & (window - 1):
        # QuicSettingsSetDefault refuses it (ConfigurationOpen: INVALID_PARAMETER)
        raise BackendError(f"{where}settings.stream_recv_window_default={window}: MsQuic needs a power of two")


def quic_settings(settings: Settings) -> b.QUIC_SETTINGS:
    """QUIC_SETTINGS for ``settings`` (see :data:`SETTINGS_FIELDS`)."""
    check_settings(settings)
    out = b.QUIC_SETTINGS()
    for name, field in SETTINGS_FIELDS.items():
        out.set(field, int(getattr(settings, name)))
    return out


class Runtime:
    """A libmsquic opened once (MsQuicOpenVersion) with one registration; its
    configurations are cached, so each pair of a run costs no TLS set-up of its own."""

    _by_path: dict[str, "Runtime"] = {}
    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.library = b.Library(path)
        self.api = self.library.api
        major, minor, patch, _build = self.library.version()
        self.version = f"{major}.{minor}.{patch}"
        self.registration = b.HQUIC()
        config = b.QUIC_REGISTRATION_CONFIG(b"quicsim", b.ExecutionProfile.LOW_LATENCY)
        b.check(self.api.RegistrationOpen(byref(config), byref(self.registration)), "RegistrationOpen")
        self._configurations: dict[tuple[Any, ...], b.HQUIC] = {}
        #: handles opened and not closed yet (RegistrationClose waits for all of them)
        self.live_handles = 0

    @classmethod
    def get(cls, msquic_lib: str | None = None) -> "Runtime":
        """The process's runtime for the libmsquic ``msquic_lib`` names (else
        ``$QUICSIM_MSQUIC_LIB``, else the system's); BackendError when there is none."""
        found = find_msquic(msquic_lib)
        if found is None:
            raise BackendError(f"the msquic backend needs a libmsquic: {HOW_TO_GET_MSQUIC}")
        path, origin = found
        with cls._lock:
            runtime = cls._by_path.get(path)
            if runtime is None:
                try:
                    runtime = cls(path)
                except OSError as exc:
                    raise BackendError(f"{path} (from {origin}) cannot be used: {exc}") from None
                except b.MsQuicError as exc:
                    raise BackendError(f"{path} (from {origin}): {exc}") from None
                cls._by_path[path] = runtime
            return runtime

    def configuration(self, settings: Settings, *, is_client: bool, alpn: str, ca_file: str | None = None,
                      cert_file: str | None = None, key_file: str | None = None) -> b.HQUIC:
        """ConfigurationOpen + ConfigurationLoadCredential, once per distinct argument set.
        The client checks the server's certificate against quicsim's test CA (or
        ``ca_file``); the server presents the test certificate (or ``cert_file``)."""
        paths = _certs.default_paths()
        if is_client:
            cred_files: tuple[str, ...] = (str(ca_file or paths.ca),)
        else:
            cred_files = (str(cert_file or paths.cert), str(key_file or paths.key))
        key = (is_client, alpn, settings.__class__, tuple(getattr(settings, n) for n in SETTINGS_FIELDS), cred_files)
        with self._lock:
            handle = self._configurations.get(key)
            if handle is not None:
                return handle
            handle = b.HQUIC()
            alpns = b.alpn_buffers(alpn)
            raw = quic_settings(settings)
            b.check(self.api.ConfigurationOpen(self.registration, alpns.array, alpns.count, byref(raw),
                                               ctypes.sizeof(raw), None, byref(handle)), "ConfigurationOpen")
            credential = b.QUIC_CREDENTIAL_CONFIG()
            keep: list[Any] = []
            if is_client:
                credential.Type = b.CredentialType.NONE
                credential.Flags = b.CredentialFlags.CLIENT | b.CredentialFlags.SET_CA_CERTIFICATE_FILE
                credential.CaCertificateFile = cred_files[0].encode()
            else:
                files = b.QUIC_CERTIFICATE_FILE(cred_files[1].encode(), cred_files[0].encode())
                keep.append(files)
                credential.Type = b.CredentialType.CERTIFICATE_FILE
                credential.CertificateFile = ctypes.addressof(files)
            try:
                b.check(self.api.ConfigurationLoadCredential(handle, byref(credential)),
                        "ConfigurationLoadCredential")
            except b.MsQuicError:
                self.api.ConfigurationClose(handle)
                raise
            self._configurations[key] = handle
            return handle

    def close(self) -> None:
        """Close the configurations, the registration and the library (at exit, and only
        when every handle was closed: RegistrationClose would wait for the rest)."""
        if self.live_handles:
            return
        for handle in self._configurations.values():
            self.api.ConfigurationClose(handle)
        self._configurations.clear()
        if self.registration:
            self.api.RegistrationClose(self.registration)
            self.registration = b.HQUIC()
        self.library.close()


@atexit.register
def _close_runtimes() -> None:
    for runtime in list(Runtime._by_path.values()):
        runtime.close()
    Runtime._by_path.clear()

"""ctypes bindings of msquic.h's API table and the library loader (v2.3.5, Linux x86_64):
the callback and function-pointer types, QUIC_API_TABLE, send buffers, and Library."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char, c_char_p, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p

from .c_events import *  # noqa: F401,F403
from .structs import *  # noqa: F401,F403
from ...errors import LibraryLoadError, MsQuicError

# --- Callbacks and the API table -----------------------------------------------------------

#: QUIC_STATUS (HQUIC Handle, void* Context, EVENT* Event). The Python function must return an
#: int (a negative Status such as PENDING is wrapped to its unsigned value). If it returns
#: None or raises, ctypes only prints "Exception ignored" and MsQuic gets an undefined status,
#: so a backend must catch everything inside its callbacks.
QUIC_LISTENER_CALLBACK = CFUNCTYPE(QUIC_STATUS, HQUIC, c_void_p, POINTER(QUIC_LISTENER_EVENT))
QUIC_CONNECTION_CALLBACK = CFUNCTYPE(QUIC_STATUS, HQUIC, c_void_p, POINTER(QUIC_CONNECTION_EVENT))
QUIC_STREAM_CALLBACK = CFUNCTYPE(QUIC_STATUS, HQUIC, c_void_p, POINTER(QUIC_STREAM_EVENT))


def status_c(status: int) -> int:
    """A (possibly negative) status as the unsigned value a callback returns to C."""
    return int(status) & 0xFFFFFFFF


QUIC_SET_CONTEXT_FN = CFUNCTYPE(None, HQUIC, c_void_p)
QUIC_GET_CONTEXT_FN = CFUNCTYPE(c_void_p, HQUIC)
QUIC_SET_CALLBACK_HANDLER_FN = CFUNCTYPE(None, HQUIC, c_void_p, c_void_p)
QUIC_SET_PARAM_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, c_uint32, c_uint32, c_void_p)
QUIC_GET_PARAM_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, c_uint32, POINTER(c_uint32), c_void_p)
QUIC_REGISTRATION_OPEN_FN = CFUNCTYPE(QUIC_STATUS, POINTER(QUIC_REGISTRATION_CONFIG), POINTER(HQUIC))
QUIC_REGISTRATION_CLOSE_FN = CFUNCTYPE(None, HQUIC)
QUIC_REGISTRATION_SHUTDOWN_FN = CFUNCTYPE(None, HQUIC, QUIC_ENUM, QUIC_UINT62)
QUIC_CONFIGURATION_OPEN_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, POINTER(QUIC_BUFFER), c_uint32,
                                       POINTER(QUIC_SETTINGS), c_uint32, c_void_p, POINTER(HQUIC))
QUIC_CONFIGURATION_CLOSE_FN = CFUNCTYPE(None, HQUIC)
QUIC_CONFIGURATION_LOAD_CREDENTIAL_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, POINTER(QUIC_CREDENTIAL_CONFIG))
QUIC_LISTENER_OPEN_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_LISTENER_CALLBACK, c_void_p, POINTER(HQUIC))
QUIC_LISTENER_CLOSE_FN = CFUNCTYPE(None, HQUIC)
QUIC_LISTENER_START_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, POINTER(QUIC_BUFFER), c_uint32, POINTER(QUIC_ADDR))
QUIC_LISTENER_STOP_FN = CFUNCTYPE(None, HQUIC)
QUIC_CONNECTION_OPEN_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_CONNECTION_CALLBACK, c_void_p, POINTER(HQUIC))
QUIC_CONNECTION_CLOSE_FN = CFUNCTYPE(None, HQUIC)
QUIC_CONNECTION_SHUTDOWN_FN = CFUNCTYPE(None, HQUIC, QUIC_ENUM, QUIC_UINT62)
#: (Connection, Configuration, Family, ServerName, ServerPort in host byte order)
QUIC_CONNECTION_START_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, HQUIC, QUIC_ADDRESS_FAMILY, c_char_p, c_uint16)
QUIC_CONNECTION_SET_CONFIGURATION_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, HQUIC)
QUIC_CONNECTION_SEND_RESUMPTION_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_ENUM, c_uint16, POINTER(c_uint8))
QUIC_STREAM_OPEN_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_ENUM, QUIC_STREAM_CALLBACK, c_void_p, POINTER(HQUIC))
QUIC_STREAM_CLOSE_FN = CFUNCTYPE(None, HQUIC)
QUIC_STREAM_START_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_ENUM)
QUIC_STREAM_SHUTDOWN_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, QUIC_ENUM, QUIC_UINT62)
QUIC_STREAM_SEND_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, POINTER(QUIC_BUFFER), c_uint32, QUIC_ENUM, c_void_p)
QUIC_STREAM_RECEIVE_COMPLETE_FN = CFUNCTYPE(None, HQUIC, c_uint64)
QUIC_STREAM_RECEIVE_SET_ENABLED_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, BOOLEAN)
QUIC_DATAGRAM_SEND_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, POINTER(QUIC_BUFFER), c_uint32, QUIC_ENUM, c_void_p)
QUIC_CONNECTION_COMP_RESUMPTION_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, BOOLEAN)
QUIC_CONNECTION_COMP_CERT_FN = CFUNCTYPE(QUIC_STATUS, HQUIC, BOOLEAN, QUIC_ENUM)


class QUIC_API_TABLE(Structure):
    """The version 2 function table, in header order. Later releases only append to it."""

    _fields_ = [
        ("SetContext", QUIC_SET_CONTEXT_FN),
        ("GetContext", QUIC_GET_CONTEXT_FN),
        ("SetCallbackHandler", QUIC_SET_CALLBACK_HANDLER_FN),
        ("SetParam", QUIC_SET_PARAM_FN),
        ("GetParam", QUIC_GET_PARAM_FN),
        ("RegistrationOpen", QUIC_REGISTRATION_OPEN_FN),
        ("RegistrationClose", QUIC_REGISTRATION_CLOSE_FN),
        ("RegistrationShutdown", QUIC_REGISTRATION_SHUTDOWN_FN),
        ("ConfigurationOpen", QUIC_CONFIGURATION_OPEN_FN),
        ("ConfigurationClose", QUIC_CONFIGURATION_CLOSE_FN),
        ("ConfigurationLoadCredential", QUIC_CONFIGURATION_LOAD_CREDENTIAL_FN),
        ("ListenerOpen", QUIC_LISTENER_OPEN_FN),
        ("ListenerClose", QUIC_LISTENER_CLOSE_FN),
        ("ListenerStart", QUIC_LISTENER_START_FN),
        ("ListenerStop", QUIC_LISTENER_STOP_FN),
        ("ConnectionOpen", QUIC_CONNECTION_OPEN_FN),
        ("ConnectionClose", QUIC_CONNECTION_CLOSE_FN),
        ("ConnectionShutdown", QUIC_CONNECTION_SHUTDOWN_FN),
        ("ConnectionStart", QUIC_CONNECTION_START_FN),
        ("ConnectionSetConfiguration", QUIC_CONNECTION_SET_CONFIGURATION_FN),
        ("ConnectionSendResumptionTicket", QUIC_CONNECTION_SEND_RESUMPTION_FN),
        ("StreamOpen", QUIC_STREAM_OPEN_FN),
        ("StreamClose", QUIC_STREAM_CLOSE_FN),
        ("StreamStart", QUIC_STREAM_START_FN),
        ("StreamShutdown", QUIC_STREAM_SHUTDOWN_FN),
        ("StreamSend", QUIC_STREAM_SEND_FN),
        ("StreamReceiveComplete", QUIC_STREAM_RECEIVE_COMPLETE_FN),
        ("StreamReceiveSetEnabled", QUIC_STREAM_RECEIVE_SET_ENABLED_FN),
        ("DatagramSend", QUIC_DATAGRAM_SEND_FN),
        ("ConnectionResumptionTicketValidationComplete", QUIC_CONNECTION_COMP_RESUMPTION_FN),
        ("ConnectionCertificateValidationComplete", QUIC_CONNECTION_COMP_CERT_FN),
    ]


# --- Buffers -------------------------------------------------------------------------------


class Buffers:
    """A QUIC_BUFFER array over private copies of ``chunks``. MsQuic reads the memory until
    the matching completion (SEND_COMPLETE, a datagram's final state, the end of the call for
    ALPNs), so keep this object alive until then."""

    def __init__(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        data = [bytes(c) for c in chunks]
        # a zero-length chunk still gets one byte of storage, so its pointer is never NULL
        self.storage = [(c_uint8 * max(len(d), 1)).from_buffer_copy(d.ljust(1, b"\0")) for d in data]
        self.array = (QUIC_BUFFER * max(len(data), 1))()
        for i, (d, store) in enumerate(zip(data, self.storage)):
            self.array[i].Length = len(d)
            self.array[i].Buffer = ctypes.cast(store, POINTER(c_uint8))
        self.count = len(data)

    @property
    def total_length(self) -> int:
        return sum(int(self.array[i].Length) for i in range(self.count))


def alpn_buffers(*protocols: str | bytes) -> Buffers:
    return Buffers([p.encode("ascii") if isinstance(p, str) else bytes(p) for p in protocols])


def buffers_bytes(buffers: ctypes._Pointer[QUIC_BUFFER], count: int) -> bytes:
    """The bytes of ``count`` QUIC_BUFFERs (e.g. a RECEIVE event's), joined; valid only
    while the event is being handled."""
    return b"".join(ctypes.string_at(buffers[i].Buffer, buffers[i].Length) for i in range(count))


# --- The library ---------------------------------------------------------------------------


class Library:
    """A loaded libmsquic and its API table (MsQuicOpenVersion(2)); :meth:`close` calls
    MsQuicClose. Usable as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._dll = ctypes.CDLL(self.path)
        except OSError as exc:
            raise LibraryLoadError(self.path, str(exc)) from exc
        try:
            open_version = self._dll.MsQuicOpenVersion
            self._close_fn = self._dll.MsQuicClose
        except AttributeError as exc:
            raise LibraryLoadError(self.path, "it exports no MsQuicOpenVersion/MsQuicClose") from exc
        open_version.argtypes = [c_uint32, POINTER(c_void_p)]
        open_version.restype = QUIC_STATUS
        self._close_fn.argtypes = [c_void_p]
        self._close_fn.restype = None
        table = c_void_p()
        check(open_version(QUIC_API_VERSION_2, byref(table)), "MsQuicOpenVersion")
        if not table.value:
            raise MsQuicError("MsQuicOpenVersion", int(Status.INTERNAL_ERROR), Status.INTERNAL_ERROR.name)
        self._table: int | None = table.value
        self.api: QUIC_API_TABLE = QUIC_API_TABLE.from_address(table.value)

    @property
    def closed(self) -> bool:
        return self._table is None

    def get_param(self, handle: int | None, param: int, size: int) -> bytes:
        """GetParam into a ``size``-byte buffer; the bytes MsQuic wrote."""
        buf = ctypes.create_string_buffer(size)
        length = c_uint32(size)
        check(self.api.GetParam(handle, param, byref(length), buf), f"GetParam(0x{param:08x})")
        return buf.raw[: length.value]

    def version(self) -> tuple[int, int, int, int]:
        """QUIC_PARAM_GLOBAL_LIBRARY_VERSION: (major, minor, patch, build)."""
        words = (c_uint32 * 4)()
        length = c_uint32(ctypes.sizeof(words))
        check(self.api.GetParam(None, QUIC_PARAM_GLOBAL_LIBRARY_VERSION, byref(length), byref(words)),
              "GetParam(LIBRARY_VERSION)")
        return (int(words[0]), int(words[1]), int(words[2]), int(words[3]))

    def git_hash(self) -> str:
        return self.get_param(None, QUIC_PARAM_GLOBAL_LIBRARY_GIT_HASH, 64).split(b"\0", 1)[0].decode("ascii")

    def close(self) -> None:
        """MsQuicClose (once). Every registration must be closed before."""
        if self._table is not None:
            table, self._table = self._table, None
            self._close_fn(table)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



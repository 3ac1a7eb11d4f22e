"""ctypes bindings for MsQuic's public C API (msquic.h v2.3.5, Linux x86_64): scalar types,
constants, addresses and the configuration structs.

Only layouts, constants and the loader live here; nothing in this module knows about
asyncio or quicsim's objects. Names of C types, fields and parameter ids keep MsQuic's
spelling so that they can be looked up in msquic.h; enumerations are Python enums.

Layouts are the header's default ones: QUIC_API_ENABLE_PREVIEW_FEATURES is not defined,
so the preview-only connection events (16..18) have no payload struct in the event union.
tests/test_msquic_bindings.py checks every size and offset against gcc's.

Threads: MsQuic calls the callbacks on its own worker threads (and sometimes inline, on
the thread of the API call that caused the event). ctypes releases the GIL around every
foreign call and takes it for every Python callback, so a blocking call such as
RegistrationClose does not deadlock with a callback that waits for the GIL. The caller
must keep each callback object (a CFUNCTYPE instance) alive for as long as MsQuic may
call it, and each send buffer alive until its SEND_COMPLETE.
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Iterable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    byref,
    c_char,
    c_char_p,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from enum import IntEnum, IntFlag

# Re-exported: these enums already carry msquic.h's values (Status is QUIC_STATUS read signed).
from ...enums import (
    ConnectionEventType as ConnectionEventType,
    ConnectionShutdownFlags as ConnectionShutdownFlags,
    DatagramSendState as DatagramSendState,
    ReceiveFlags as ReceiveFlags,
    SendFlags as SendFlags,
    Status as Status,
    StreamEventType as StreamEventType,
    StreamOpenFlags as StreamOpenFlags,
    StreamShutdownFlags as StreamShutdownFlags,
    StreamStartFlags as StreamStartFlags,
)
from ...errors import MsQuicError as MsQuicError  # (named here: the bindings' namespace)

# --- Scalar types --------------------------------------------------------------------------

#: msquic_posix.h: QUIC_STATUS is an unsigned int; values are errno numbers, PENDING and
#: CONTINUE are -2 and -1 stored unsigned (see :func:`status_value`).
QUIC_STATUS = c_uint32
HQUIC = c_void_p
BOOLEAN = c_uint8
QUIC_UINT62 = c_uint64
#: C enums whose values are all non-negative: gcc stores them as unsigned int.
QUIC_ENUM = c_uint32
#: sa_family_t
QUIC_ADDRESS_FAMILY = c_uint16

QUIC_API_VERSION_2 = 2
QUIC_UINT62_MAX = (1 << 62) - 1
QUIC_MAX_ALPN_LENGTH = 255


# --- Enumerations not already in quicsim.enums ---------------------------------------------


class ListenerEventType(IntEnum):
    NEW_CONNECTION = 0
    STOP_COMPLETE = 1


class ExecutionProfile(IntEnum):
    LOW_LATENCY = 0
    TYPE_MAX_THROUGHPUT = 1
    TYPE_SCAVENGER = 2
    TYPE_REAL_TIME = 3


class AddressFamily(IntEnum):
    """QUIC_ADDRESS_FAMILY values on Linux (AF_UNSPEC, AF_INET, AF_INET6)."""

    UNSPEC = 0
    INET = 2
    INET6 = 10


class CredentialType(IntEnum):
    NONE = 0
    CERTIFICATE_HASH = 1
    CERTIFICATE_HASH_STORE = 2
    CERTIFICATE_CONTEXT = 3
    CERTIFICATE_FILE = 4
    CERTIFICATE_FILE_PROTECTED = 5
    CERTIFICATE_PKCS12 = 6


class CredentialFlags(IntFlag):
    NONE = 0
    CLIENT = 0x1
    LOAD_ASYNCHRONOUS = 0x2
    NO_CERTIFICATE_VALIDATION = 0x4
    ENABLE_OCSP = 0x8
    INDICATE_CERTIFICATE_RECEIVED = 0x10
    DEFER_CERTIFICATE_VALIDATION = 0x20
    REQUIRE_CLIENT_AUTHENTICATION = 0x40
    USE_TLS_BUILTIN_CERTIFICATE_VALIDATION = 0x80
    REVOCATION_CHECK_END_CERT = 0x100
    REVOCATION_CHECK_CHAIN = 0x200
    REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT = 0x400
    IGNORE_NO_REVOCATION_CHECK = 0x800
    IGNORE_REVOCATION_OFFLINE = 0x1000
    SET_ALLOWED_CIPHER_SUITES = 0x2000
    USE_PORTABLE_CERTIFICATES = 0x4000
    USE_SUPPLIED_CREDENTIALS = 0x8000
    USE_SYSTEM_MAPPER = 0x10000
    CACHE_ONLY_URL_RETRIEVAL = 0x20000
    REVOCATION_CHECK_CACHE_ONLY = 0x40000
    INPROC_PEER_CERTIFICATE = 0x80000
    SET_CA_CERTIFICATE_FILE = 0x100000


class AllowedCipherSuite(IntFlag):
    NONE = 0
    AES_128_GCM_SHA256 = 0x1
    AES_256_GCM_SHA384 = 0x2
    CHACHA20_POLY1305_SHA256 = 0x4


class ServerResumptionLevel(IntEnum):
    NO_RESUME = 0
    RESUME_ONLY = 1
    RESUME_AND_ZERORTT = 2


class SendResumptionFlags(IntFlag):
    NONE = 0
    FINAL = 1


#: The TLS alert code that means "no alert" (ConnectionCertificateValidationComplete).
QUIC_TLS_ALERT_CODE_SUCCESS = 0xFFFF

# --- Parameter ids (GetParam / SetParam) ---------------------------------------------------

QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT = 0x01000000
QUIC_PARAM_GLOBAL_SUPPORTED_VERSIONS = 0x01000001
QUIC_PARAM_GLOBAL_LOAD_BALACING_MODE = 0x01000002
QUIC_PARAM_GLOBAL_PERF_COUNTERS = 0x01000003
QUIC_PARAM_GLOBAL_LIBRARY_VERSION = 0x01000004  # uint32_t[4]
QUIC_PARAM_GLOBAL_SETTINGS = 0x01000005
QUIC_PARAM_GLOBAL_GLOBAL_SETTINGS = 0x01000006
QUIC_PARAM_GLOBAL_LIBRARY_GIT_HASH = 0x01000008  # char[64]
QUIC_PARAM_GLOBAL_TLS_PROVIDER = 0x0100000A
QUIC_PARAM_GLOBAL_STATELESS_RESET_KEY = 0x0100000B

QUIC_PARAM_CONFIGURATION_SETTINGS = 0x03000000
QUIC_PARAM_CONFIGURATION_TICKET_KEYS = 0x03000001

QUIC_PARAM_LISTENER_LOCAL_ADDRESS = 0x04000000  # QUIC_ADDR
QUIC_PARAM_LISTENER_STATS = 0x04000001

QUIC_PARAM_CONN_QUIC_VERSION = 0x05000000
QUIC_PARAM_CONN_LOCAL_ADDRESS = 0x05000001
QUIC_PARAM_CONN_REMOTE_ADDRESS = 0x05000002
QUIC_PARAM_CONN_IDEAL_PROCESSOR = 0x05000003
QUIC_PARAM_CONN_SETTINGS = 0x05000004
QUIC_PARAM_CONN_STATISTICS = 0x05000005
QUIC_PARAM_CONN_STATISTICS_PLAT = 0x05000006
QUIC_PARAM_CONN_SHARE_UDP_BINDING = 0x05000007
QUIC_PARAM_CONN_LOCAL_BIDI_STREAM_COUNT = 0x05000008
QUIC_PARAM_CONN_LOCAL_UNIDI_STREAM_COUNT = 0x05000009
QUIC_PARAM_CONN_MAX_STREAM_IDS = 0x0500000A
QUIC_PARAM_CONN_CLOSE_REASON_PHRASE = 0x0500000B
QUIC_PARAM_CONN_STREAM_SCHEDULING_SCHEME = 0x0500000C
QUIC_PARAM_CONN_DATAGRAM_RECEIVE_ENABLED = 0x0500000D
QUIC_PARAM_CONN_DATAGRAM_SEND_ENABLED = 0x0500000E
QUIC_PARAM_CONN_RESUMPTION_TICKET = 0x05000010
QUIC_PARAM_CONN_PEER_CERTIFICATE_VALID = 0x05000011
QUIC_PARAM_CONN_LOCAL_INTERFACE = 0x05000012
QUIC_PARAM_CONN_TLS_SECRETS = 0x05000013
QUIC_PARAM_CONN_STATISTICS_V2 = 0x05000016
QUIC_PARAM_CONN_STATISTICS_V2_PLAT = 0x05000017
QUIC_PARAM_CONN_ORIG_DEST_CID = 0x05000018

QUIC_PARAM_TLS_HANDSHAKE_INFO = 0x06000000
QUIC_PARAM_TLS_NEGOTIATED_ALPN = 0x06000001

QUIC_PARAM_STREAM_ID = 0x08000000  # QUIC_UINT62
QUIC_PARAM_STREAM_0RTT_LENGTH = 0x08000001
QUIC_PARAM_STREAM_IDEAL_SEND_BUFFER_SIZE = 0x08000002
QUIC_PARAM_STREAM_PRIORITY = 0x08000003
QUIC_PARAM_STREAM_STATISTICS = 0x08000004


# --- Status helpers (the values themselves are quicsim.enums.Status) -----------------------


def status_value(raw: int) -> int:
    """A QUIC_STATUS read as unsigned (ctypes' view) turned into the signed int of Status."""
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw & 0x80000000 else raw


def status_failed(raw: int) -> bool:
    """QUIC_FAILED: the status, read as a signed int, is greater than zero."""
    return status_value(raw) > 0


def status_name(raw: int) -> str:
    value = status_value(raw)
    try:
        return Status(value).name
    except ValueError:
        return f"0x{raw & 0xFFFFFFFF:x}"


def check(raw: int, call: str) -> int:
    """Raise :class:`MsQuicError` if ``raw`` is a failure; return the signed status otherwise."""
    if status_failed(raw):
        raise MsQuicError(call, status_value(raw), status_name(raw))
    return status_value(raw)


# --- Addresses (Linux sockaddr layouts) ----------------------------------------------------


class sockaddr(Structure):
    _fields_ = [("sa_family", c_uint16), ("sa_data", c_char * 14)]


class in_addr(Structure):
    _fields_ = [("s_addr", c_uint32)]  # network byte order in memory


class sockaddr_in(Structure):
    _fields_ = [
        ("sin_family", c_uint16),
        ("sin_port", c_uint16),  # network byte order
        ("sin_addr", in_addr),
        ("sin_zero", c_uint8 * 8),
    ]


class in6_addr(Union):
    _fields_ = [("s6_addr", c_uint8 * 16), ("s6_addr16", c_uint16 * 8), ("s6_addr32", c_uint32 * 4)]


class sockaddr_in6(Structure):
    _fields_ = [
        ("sin6_family", c_uint16),
        ("sin6_port", c_uint16),  # network byte order
        ("sin6_flowinfo", c_uint32),
        ("sin6_addr", in6_addr),
        ("sin6_scope_id", c_uint32),
    ]


class QUIC_ADDR(Union):
    _fields_ = [("Ip", sockaddr), ("Ipv4", sockaddr_in), ("Ipv6", sockaddr_in6)]

    @classmethod
    def ipv4(cls, host: str = "127.0.0.1", port: int = 0) -> QUIC_ADDR:
        addr = cls()
        addr.Ipv4.sin_family = AddressFamily.INET
        addr.Ipv4.sin_port = socket.htons(port)
        ctypes.memmove(ctypes.addressof(addr.Ipv4.sin_addr), socket.inet_pton(socket.AF_INET, host), 4)
        return addr

    @classmethod
    def ipv6(cls, host: str = "::1", port: int = 0) -> QUIC_ADDR:
        addr = cls()
        addr.Ipv6.sin6_family = AddressFamily.INET6
        addr.Ipv6.sin6_port = socket.htons(port)
        ctypes.memmove(ctypes.addressof(addr.Ipv6.sin6_addr), socket.inet_pton(socket.AF_INET6, host), 16)
        return addr

    @property
    def family(self) -> int:
        return int(self.Ip.sa_family)

    @property
    def port(self) -> int:
        """The port in host byte order (sin_port and sin6_port share an offset)."""
        return socket.ntohs(self.Ipv4.sin_port)

    @property
    def host(self) -> str:
        if self.family == AddressFamily.INET6:
            return socket.inet_ntop(socket.AF_INET6, bytes(self.Ipv6.sin6_addr.s6_addr))
        return socket.inet_ntop(socket.AF_INET, ctypes.string_at(ctypes.addressof(self.Ipv4.sin_addr), 4))


# --- Configuration structs -----------------------------------------------------------------


class QUIC_BUFFER(Structure):
    _fields_ = [("Length", c_uint32), ("Buffer", POINTER(c_uint8))]


class QUIC_REGISTRATION_CONFIG(Structure):
    _fields_ = [("AppName", c_char_p), ("ExecutionProfile", QUIC_ENUM)]


#: Bit i of QUIC_SETTINGS.IsSetFlags marks the field named at index i as set.
SETTINGS_IS_SET_FIELDS: tuple[str, ...] = (
    "MaxBytesPerKey", "HandshakeIdleTimeoutMs", "IdleTimeoutMs", "MtuDiscoverySearchCompleteTimeoutUs",
    "TlsClientMaxSendBuffer", "TlsServerMaxSendBuffer", "StreamRecvWindowDefault", "StreamRecvBufferDefault",
    "ConnFlowControlWindow", "MaxWorkerQueueDelayUs", "MaxStatelessOperations", "InitialWindowPackets",
    "SendIdleTimeoutMs", "InitialRttMs", "MaxAckDelayMs", "DisconnectTimeoutMs", "KeepAliveIntervalMs",
    "CongestionControlAlgorithm", "PeerBidiStreamCount", "PeerUnidiStreamCount",
    "MaxBindingStatelessOperations", "StatelessOperationExpirationMs", "MinimumMtu", "MaximumMtu",
    "SendBufferingEnabled", "PacingEnabled", "MigrationEnabled", "DatagramReceiveEnabled",
    "ServerResumptionLevel", "MaxOperationsPerDrain", "MtuDiscoveryMissingProbeCount",
    "DestCidUpdateIdleTimeoutMs", "GreaseQuicBitEnabled", "EcnEnabled", "HyStartEnabled",
    "StreamRecvWindowBidiLocalDefault", "StreamRecvWindowBidiRemoteDefault", "StreamRecvWindowUnidiDefault",
)
#: The IsSet bits that follow when the header is compiled with preview features.
SETTINGS_PREVIEW_IS_SET_FIELDS: tuple[str, ...] = (
    "EncryptionOffloadAllowed", "ReliableResetEnabled", "OneWayDelayEnabled", "NetStatsEventEnabled",
)
#: Bit i of QUIC_SETTINGS.Flags (the last four only with preview features).
SETTINGS_FLAGS_BITS: tuple[str, ...] = (
    "HyStartEnabled", "EncryptionOffloadAllowed", "ReliableResetEnabled", "OneWayDelayEnabled",
    "NetStatsEventEnabled",
)
_IS_SET_BIT = {name: bit for bit, name in enumerate(SETTINGS_IS_SET_FIELDS + SETTINGS_PREVIEW_IS_SET_FIELDS)}
_FLAGS_BIT = {name: bit for bit, name in enumerate(SETTINGS_FLAGS_BITS)}


class QUIC_SETTINGS(Structure):
    """QUIC_SETTINGS; use :meth:`set` so that a field's IsSet bit goes with its value."""

    IsSetFlags: int
    Flags: int
    _fields_ = [
        ("IsSetFlags", c_uint64),  # the IsSet union, bit order in SETTINGS_IS_SET_FIELDS
        ("MaxBytesPerKey", c_uint64),
        ("HandshakeIdleTimeoutMs", c_uint64),
        ("IdleTimeoutMs", c_uint64),
        ("MtuDiscoverySearchCompleteTimeoutUs", c_uint64),
        ("TlsClientMaxSendBuffer", c_uint32),
        ("TlsServerMaxSendBuffer", c_uint32),
        ("StreamRecvWindowDefault", c_uint32),
        ("StreamRecvBufferDefault", c_uint32),
        ("ConnFlowControlWindow", c_uint32),
        ("MaxWorkerQueueDelayUs", c_uint32),
        ("MaxStatelessOperations", c_uint32),
        ("InitialWindowPackets", c_uint32),
        ("SendIdleTimeoutMs", c_uint32),
        ("InitialRttMs", c_uint32),
        ("MaxAckDelayMs", c_uint32),
        ("DisconnectTimeoutMs", c_uint32),
        ("KeepAliveIntervalMs", c_uint32),
        ("CongestionControlAlgorithm", c_uint16),
        ("PeerBidiStreamCount", c_uint16),
        ("PeerUnidiStreamCount", c_uint16),
        ("MaxBindingStatelessOperations", c_uint16),
        ("StatelessOperationExpirationMs", c_uint16),
        ("MinimumMtu", c_uint16),
        ("MaximumMtu", c_uint16),
        ("SendBufferingEnabled", c_uint8, 1),
        ("PacingEnabled", c_uint8, 1),
        ("MigrationEnabled", c_uint8, 1),
        ("DatagramReceiveEnabled", c_uint8, 1),
        ("ServerResumptionLevel", c_uint8, 2),
        ("GreaseQuicBitEnabled", c_uint8, 1),
        ("EcnEnabled", c_uint8, 1),
        ("MaxOperationsPerDrain", c_uint8),
        ("MtuDiscoveryMissingProbeCount", c_uint8),
        ("DestCidUpdateIdleTimeoutMs", c_uint32),
        ("Flags", c_uint64),  # the Flags union, bit order in SETTINGS_FLAGS_BITS
        ("StreamRecvWindowBidiLocalDefault", c_uint32),
        ("StreamRecvWindowBidiRemoteDefault", c_uint32),
        ("StreamRecvWindowUnidiDefault", c_uint32),
    ]

    @staticmethod
    def is_set_bit(name: str) -> int:
        try:
            return _IS_SET_BIT[name]
        except KeyError:
            raise AttributeError(f"QUIC_SETTINGS has no settable field {name!r}") from None

    def mark_set(self, name: str) -> None:
        self.IsSetFlags |= 1 << self.is_set_bit(name)

    def is_set(self, name: str) -> bool:
        return bool(self.IsSetFlags >> self.is_set_bit(name) & 1)

    def set(self, name: str, value: int) -> QUIC_SETTINGS:
        """Store ``value`` in the field (or Flags bit) ``name`` and mark it set; returns self."""
        bit = self.is_set_bit(name)
        if name in _FLAGS_BIT:
            mask = 1 << _FLAGS_BIT[name]
            self.Flags = (self.Flags | mask) if value else (self.Flags & ~mask)
        else:
            setattr(self, name, int(value))
        self.IsSetFlags |= 1 << bit
        return self

    def get(self, name: str) -> int:
        if name in _FLAGS_BIT:
            return int(self.Flags >> _FLAGS_BIT[name] & 1)
        return int(getattr(self, name))


class QUIC_CERTIFICATE_FILE(Structure):
    _fields_ = [("PrivateKeyFile", c_char_p), ("CertificateFile", c_char_p)]


class QUIC_CERTIFICATE_FILE_PROTECTED(Structure):
    _fields_ = [("PrivateKeyFile", c_char_p), ("CertificateFile", c_char_p), ("PrivateKeyPassword", c_char_p)]


class QUIC_CERTIFICATE_PKCS12(Structure):
    _fields_ = [("Asn1Blob", POINTER(c_uint8)), ("Asn1BlobLength", c_uint32), ("PrivateKeyPassword", c_char_p)]


#: void (HQUIC Configuration, void* Context, QUIC_STATUS Status)
QUIC_CREDENTIAL_LOAD_COMPLETE = CFUNCTYPE(None, HQUIC, c_void_p, QUIC_STATUS)


class _CredentialCertificate(Union):
    """The credential's anonymous union: each member a pointer (addresses, as c_void_p)."""

    _fields_ = [
        ("CertificateHash", c_void_p),
        ("CertificateHashStore", c_void_p),
        ("CertificateContext", c_void_p),
        ("CertificateFile", c_void_p),
        ("CertificateFileProtected", c_void_p),
        ("CertificatePkcs12", c_void_p),
    ]


class QUIC_CREDENTIAL_CONFIG(Structure):
    """QUIC_CREDENTIAL_CONFIG. The certificate struct a member points to must outlive the
    ConfigurationLoadCredential call (the struct does not keep it alive)."""

    _anonymous_ = ("Certificate",)
    _fields_ = [
        ("Type", QUIC_ENUM),
        ("Flags", QUIC_ENUM),
        ("Certificate", _CredentialCertificate),
        ("Principal", c_char_p),
        ("Reserved", c_void_p),
        ("AsyncHandler", QUIC_CREDENTIAL_LOAD_COMPLETE),
        ("AllowedCipherSuites", QUIC_ENUM),
        ("CaCertificateFile", c_char_p),
    ]


class QUIC_NEW_CONNECTION_INFO(Structure):
    _fields_ = [
        ("QuicVersion", c_uint32),
        ("LocalAddress", POINTER(QUIC_ADDR)),
        ("RemoteAddress", POINTER(QUIC_ADDR)),
        ("CryptoBufferLength", c_uint32),
        ("ClientAlpnListLength", c_uint16),
        ("ServerNameLength", c_uint16),
        ("NegotiatedAlpnLength", c_uint8),
        ("CryptoBuffer", POINTER(c_uint8)),
        ("ClientAlpnList", POINTER(c_uint8)),
        ("NegotiatedAlpn", POINTER(c_uint8)),
        ("ServerName", POINTER(c_char)),  # not NUL-terminated: ServerNameLength bytes
    ]



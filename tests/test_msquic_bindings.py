"""The MsQuic ctypes bindings: every layout and constant equals gcc's reading of msquic.h
v2.3.5, the loader fails clearly on a bad path, and (with QUICSIM_MSQUIC_LIB set) a real
library loads, reports major version 2 and opens a registration."""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import os

import pytest

from quicsim.backends.msquic import bindings as b

# sizeof/_Alignof/offsetof under gcc 12 x86_64 for msquic.h v2.3.5 (default, no preview features).
# Sizes are (size, alignment); an anonymous union's size is its struct's size minus its offset.
SIZES = {
    "sockaddr": (16, 2),
    "in_addr": (4, 4),
    "sockaddr_in": (16, 4),
    "in6_addr": (16, 4),
    "sockaddr_in6": (28, 4),
    "QUIC_ADDR": (28, 4),
    "QUIC_BUFFER": (16, 8),
    "QUIC_REGISTRATION_CONFIG": (16, 8),
    "QUIC_SETTINGS": (144, 8),
    "QUIC_CERTIFICATE_FILE": (16, 8),
    "QUIC_CERTIFICATE_FILE_PROTECTED": (24, 8),
    "QUIC_CERTIFICATE_PKCS12": (24, 8),
    "QUIC_CREDENTIAL_CONFIG": (56, 8),
    "_CredentialCertificate": 8,
    "QUIC_NEW_CONNECTION_INFO": (72, 8),
    "QUIC_LISTENER_EVENT": (24, 8),
    "_ListenerEventUnion": 16,
    "QUIC_CONNECTION_EVENT": (32, 8),
    "_ConnectionEventUnion": 24,
    "QUIC_STREAM_EVENT": (40, 8),
    "_StreamEventUnion": 32,
    "QUIC_API_TABLE": (248, 8),
    "QUIC_LISTENER_EVENT_NEW_CONNECTION_DATA": (16, 8),
    "QUIC_LISTENER_EVENT_STOP_COMPLETE_DATA": (1, 1),
    "QUIC_CONNECTION_EVENT_CONNECTED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER_DATA": (8, 8),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA": (1, 1),
    "QUIC_CONNECTION_EVENT_LOCAL_ADDRESS_CHANGED_DATA": (8, 8),
    "QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED_DATA": (8, 8),
    "QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE_DATA": (4, 2),
    "QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS_DATA": (1, 1),
    "QUIC_CONNECTION_EVENT_IDEAL_PROCESSOR_CHANGED_DATA": (4, 2),
    "QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED_DATA": (4, 2),
    "QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_RESUMED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED_DATA": (16, 8),
    "QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED_DATA": (24, 8),
    "QUIC_STREAM_EVENT_START_COMPLETE_DATA": (24, 8),
    "QUIC_STREAM_EVENT_RECEIVE_DATA": (32, 8),
    "QUIC_STREAM_EVENT_SEND_COMPLETE_DATA": (16, 8),
    "QUIC_STREAM_EVENT_PEER_SEND_ABORTED_DATA": (8, 8),
    "QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED_DATA": (8, 8),
    "QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE_DATA": (1, 1),
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA": (24, 8),
    "QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE_DATA": (8, 8),
    "QUIC_STREAM_EVENT_CANCEL_ON_LOSS_DATA": (8, 8),
}
OFFSETS = {
    "sockaddr": {"sa_family": 0, "sa_data": 2},
    "in_addr": {"s_addr": 0},
    "sockaddr_in": {"sin_family": 0, "sin_port": 2, "sin_addr": 4, "sin_zero": 8},
    "in6_addr": {"s6_addr": 0, "s6_addr16": 0, "s6_addr32": 0},
    "sockaddr_in6": {
        "sin6_family": 0, "sin6_port": 2, "sin6_flowinfo": 4, "sin6_addr": 8, "sin6_scope_id": 24
    },
    "QUIC_ADDR": {"Ip": 0, "Ipv4": 0, "Ipv6": 0},
    "QUIC_BUFFER": {"Length": 0, "Buffer": 8},
    "QUIC_REGISTRATION_CONFIG": {"AppName": 0, "ExecutionProfile": 8},
    "QUIC_SETTINGS": {
        "IsSetFlags": 0, "MaxBytesPerKey": 8, "HandshakeIdleTimeoutMs": 16, "IdleTimeoutMs": 24,
        "MtuDiscoverySearchCompleteTimeoutUs": 32, "TlsClientMaxSendBuffer": 40, "TlsServerMaxSendBuffer": 44,
        "StreamRecvWindowDefault": 48, "StreamRecvBufferDefault": 52, "ConnFlowControlWindow": 56,
        "MaxWorkerQueueDelayUs": 60, "MaxStatelessOperations": 64, "InitialWindowPackets": 68,
        "SendIdleTimeoutMs": 72, "InitialRttMs": 76, "MaxAckDelayMs": 80, "DisconnectTimeoutMs": 84,
        "KeepAliveIntervalMs": 88, "CongestionControlAlgorithm": 92, "PeerBidiStreamCount": 94,
        "PeerUnidiStreamCount": 96, "MaxBindingStatelessOperations": 98, "StatelessOperationExpirationMs": 100,
        "MinimumMtu": 102, "MaximumMtu": 104, "MaxOperationsPerDrain": 107, "MtuDiscoveryMissingProbeCount":
        108, "DestCidUpdateIdleTimeoutMs": 112, "Flags": 120, "StreamRecvWindowBidiLocalDefault": 128,
        "StreamRecvWindowBidiRemoteDefault": 132, "StreamRecvWindowUnidiDefault": 136
    },
    "QUIC_CERTIFICATE_FILE": {"PrivateKeyFile": 0, "CertificateFile": 8},
    "QUIC_CERTIFICATE_FILE_PROTECTED": {"PrivateKeyFile": 0, "CertificateFile": 8, "PrivateKeyPassword": 16},
    "QUIC_CERTIFICATE_PKCS12": {"Asn1Blob": 0, "Asn1BlobLength": 8, "PrivateKeyPassword": 16},
    "QUIC_CREDENTIAL_CONFIG": {
        "Type": 0, "Flags": 4, "Certificate": 8, "Principal": 16, "Reserved": 24, "AsyncHandler": 32,
        "AllowedCipherSuites": 40, "CaCertificateFile": 48
    },
    "_CredentialCertificate": {
        "CertificateHash": 0, "CertificateHashStore": 0, "CertificateContext": 0, "CertificateFile": 0,
        "CertificateFileProtected": 0, "CertificatePkcs12": 0
    },
    "QUIC_NEW_CONNECTION_INFO": {
        "QuicVersion": 0, "LocalAddress": 8, "RemoteAddress": 16, "CryptoBufferLength": 24,
        "ClientAlpnListLength": 28, "ServerNameLength": 30, "NegotiatedAlpnLength": 32, "CryptoBuffer": 40,
        "ClientAlpnList": 48, "NegotiatedAlpn": 56, "ServerName": 64
    },
    "QUIC_LISTENER_EVENT": {"Type": 0, "u": 8},
    "QUIC_CONNECTION_EVENT": {"Type": 0, "u": 8},
    "QUIC_STREAM_EVENT": {"Type": 0, "u": 8},
    "QUIC_API_TABLE": {
        "SetContext": 0, "GetContext": 8, "SetCallbackHandler": 16, "SetParam": 24, "GetParam": 32,
        "RegistrationOpen": 40, "RegistrationClose": 48, "RegistrationShutdown": 56, "ConfigurationOpen": 64,
        "ConfigurationClose": 72, "ConfigurationLoadCredential": 80, "ListenerOpen": 88, "ListenerClose": 96,
        "ListenerStart": 104, "ListenerStop": 112, "ConnectionOpen": 120, "ConnectionClose": 128,
        "ConnectionShutdown": 136, "ConnectionStart": 144, "ConnectionSetConfiguration": 152,
        "ConnectionSendResumptionTicket": 160, "StreamOpen": 168, "StreamClose": 176, "StreamStart": 184,
        "StreamShutdown": 192, "StreamSend": 200, "StreamReceiveComplete": 208, "StreamReceiveSetEnabled": 216,
        "DatagramSend": 224, "ConnectionResumptionTicketValidationComplete": 232,
        "ConnectionCertificateValidationComplete": 240
    },
    "_ListenerEventUnion": {"NEW_CONNECTION": 0, "STOP_COMPLETE": 0},
    "QUIC_LISTENER_EVENT_NEW_CONNECTION_DATA": {"Info": 0, "Connection": 8},
    "_ConnectionEventUnion": {
        "CONNECTED": 0, "SHUTDOWN_INITIATED_BY_TRANSPORT": 0, "SHUTDOWN_INITIATED_BY_PEER": 0,
        "SHUTDOWN_COMPLETE": 0, "LOCAL_ADDRESS_CHANGED": 0, "PEER_ADDRESS_CHANGED": 0, "PEER_STREAM_STARTED": 0,
        "STREAMS_AVAILABLE": 0, "PEER_NEEDS_STREAMS": 0, "IDEAL_PROCESSOR_CHANGED": 0, "DATAGRAM_STATE_CHANGED":
        0, "DATAGRAM_RECEIVED": 0, "DATAGRAM_SEND_STATE_CHANGED": 0, "RESUMED": 0, "RESUMPTION_TICKET_RECEIVED":
        0, "PEER_CERTIFICATE_RECEIVED": 0
    },
    "QUIC_CONNECTION_EVENT_CONNECTED_DATA": {
        "SessionResumed": 0, "NegotiatedAlpnLength": 1, "NegotiatedAlpn": 8
    },
    "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT_DATA": {"Status": 0, "ErrorCode": 8},
    "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER_DATA": {"ErrorCode": 0},
    "QUIC_CONNECTION_EVENT_LOCAL_ADDRESS_CHANGED_DATA": {"Address": 0},
    "QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED_DATA": {"Address": 0},
    "QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED_DATA": {"Stream": 0, "Flags": 8},
    "QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE_DATA": {"BidirectionalCount": 0, "UnidirectionalCount": 2},
    "QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS_DATA": {"Bidirectional": 0},
    "QUIC_CONNECTION_EVENT_IDEAL_PROCESSOR_CHANGED_DATA": {"IdealProcessor": 0, "PartitionIndex": 2},
    "QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED_DATA": {"SendEnabled": 0, "MaxSendLength": 2},
    "QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED_DATA": {"Buffer": 0, "Flags": 8},
    "QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED_DATA": {"ClientContext": 0, "State": 8},
    "QUIC_CONNECTION_EVENT_RESUMED_DATA": {"ResumptionStateLength": 0, "ResumptionState": 8},
    "QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED_DATA": {
        "ResumptionTicketLength": 0, "ResumptionTicket": 8
    },
    "QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED_DATA": {
        "Certificate": 0, "DeferredErrorFlags": 8, "DeferredStatus": 12, "Chain": 16
    },
    "_StreamEventUnion": {
        "START_COMPLETE": 0, "RECEIVE": 0, "SEND_COMPLETE": 0, "PEER_SEND_ABORTED": 0, "PEER_RECEIVE_ABORTED":
        0, "SEND_SHUTDOWN_COMPLETE": 0, "SHUTDOWN_COMPLETE": 0, "IDEAL_SEND_BUFFER_SIZE": 0, "CANCEL_ON_LOSS": 0
    },
    "QUIC_STREAM_EVENT_START_COMPLETE_DATA": {"Status": 0, "ID": 8},
    "QUIC_STREAM_EVENT_RECEIVE_DATA": {
        "AbsoluteOffset": 0, "TotalBufferLength": 8, "Buffers": 16, "BufferCount": 24, "Flags": 28
    },
    "QUIC_STREAM_EVENT_SEND_COMPLETE_DATA": {"Canceled": 0, "ClientContext": 8},
    "QUIC_STREAM_EVENT_PEER_SEND_ABORTED_DATA": {"ErrorCode": 0},
    "QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED_DATA": {"ErrorCode": 0},
    "QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE_DATA": {"Graceful": 0},
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA": {
        "ConnectionShutdown": 0, "ConnectionErrorCode": 8, "ConnectionCloseStatus": 16
    },
    "QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE_DATA": {"ByteCount": 0},
    "QUIC_STREAM_EVENT_CANCEL_ON_LOSS_DATA": {"ErrorCode": 0},
}

# Bitfields: (byte offset in the struct, that byte's value) with the field set to all ones.
BITFIELDS = {
    "QUIC_SETTINGS.SendBufferingEnabled": (106, 0x01),
    "QUIC_SETTINGS.PacingEnabled": (106, 0x02),
    "QUIC_SETTINGS.MigrationEnabled": (106, 0x04),
    "QUIC_SETTINGS.DatagramReceiveEnabled": (106, 0x08),
    "QUIC_SETTINGS.ServerResumptionLevel": (106, 0x30),
    "QUIC_SETTINGS.GreaseQuicBitEnabled": (106, 0x40),
    "QUIC_SETTINGS.EcnEnabled": (106, 0x80),
    "QUIC_LISTENER_EVENT_STOP_COMPLETE_DATA.AppCloseInProgress": (0, 0x01),
    "QUIC_LISTENER_EVENT_STOP_COMPLETE_DATA.RESERVED": (0, 0xfe),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA.HandshakeCompleted": (0, 0x01),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA.PeerAcknowledgedShutdown": (0, 0x02),
    "QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA.AppCloseInProgress": (0, 0x04),
    "QUIC_STREAM_EVENT_START_COMPLETE_DATA.PeerAccepted": (16, 0x01),
    "QUIC_STREAM_EVENT_START_COMPLETE_DATA.RESERVED": (16, 0xfe),
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA.AppCloseInProgress": (1, 0x01),
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA.ConnectionShutdownByApp": (1, 0x02),
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA.ConnectionClosedRemotely": (1, 0x04),
    "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA.RESERVED": (1, 0xf8),
}

# QUIC_SETTINGS.IsSet: the field whose IsSet bit is i (gcc, v2.3.5); with preview features the
# next four bits and Flags bits 1..4 follow, and HyStartEnabled is Flags bit 0.
IS_SET_BITS = """
    MaxBytesPerKey HandshakeIdleTimeoutMs IdleTimeoutMs MtuDiscoverySearchCompleteTimeoutUs
    TlsClientMaxSendBuffer TlsServerMaxSendBuffer StreamRecvWindowDefault StreamRecvBufferDefault
    ConnFlowControlWindow MaxWorkerQueueDelayUs MaxStatelessOperations InitialWindowPackets
    SendIdleTimeoutMs InitialRttMs MaxAckDelayMs DisconnectTimeoutMs KeepAliveIntervalMs
    CongestionControlAlgorithm PeerBidiStreamCount PeerUnidiStreamCount MaxBindingStatelessOperations
    StatelessOperationExpirationMs MinimumMtu MaximumMtu SendBufferingEnabled PacingEnabled MigrationEnabled
    DatagramReceiveEnabled ServerResumptionLevel MaxOperationsPerDrain MtuDiscoveryMissingProbeCount
    DestCidUpdateIdleTimeoutMs GreaseQuicBitEnabled EcnEnabled HyStartEnabled
    StreamRecvWindowBidiLocalDefault StreamRecvWindowBidiRemoteDefault StreamRecvWindowUnidiDefault
""".split()

PREVIEW_IS_SET_BITS = {"EncryptionOffloadAllowed": 38, "ReliableResetEnabled": 39, "OneWayDelayEnabled": 40,
                       "NetStatsEventEnabled": 41}
FLAGS_BITS = {"HyStartEnabled": 0, "EncryptionOffloadAllowed": 1, "ReliableResetEnabled": 2,
              "OneWayDelayEnabled": 3, "NetStatsEventEnabled": 4}

# Constant values (enum members and #defines) as gcc sees them in msquic.h / msquic_posix.h v2.3.5.
CONSTANTS = {
    "QUIC_LISTENER_EVENT_NEW_CONNECTION": 0, "QUIC_LISTENER_EVENT_STOP_COMPLETE": 1, "QUIC_CREDENTIAL_TYPE_NONE": 0,
    "QUIC_CREDENTIAL_TYPE_CERTIFICATE_HASH": 1, "QUIC_CREDENTIAL_TYPE_CERTIFICATE_HASH_STORE": 2,
    "QUIC_CREDENTIAL_TYPE_CERTIFICATE_CONTEXT": 3, "QUIC_CREDENTIAL_TYPE_CERTIFICATE_FILE": 4,
    "QUIC_CREDENTIAL_TYPE_CERTIFICATE_FILE_PROTECTED": 5, "QUIC_CREDENTIAL_TYPE_CERTIFICATE_PKCS12": 6,
    "QUIC_CREDENTIAL_FLAG_NONE": 0, "QUIC_CREDENTIAL_FLAG_CLIENT": 1, "QUIC_CREDENTIAL_FLAG_LOAD_ASYNCHRONOUS": 2,
    "QUIC_CREDENTIAL_FLAG_NO_CERTIFICATE_VALIDATION": 4, "QUIC_CREDENTIAL_FLAG_ENABLE_OCSP": 8,
    "QUIC_CREDENTIAL_FLAG_INDICATE_CERTIFICATE_RECEIVED": 16, "QUIC_CREDENTIAL_FLAG_DEFER_CERTIFICATE_VALIDATION":
    32, "QUIC_CREDENTIAL_FLAG_REQUIRE_CLIENT_AUTHENTICATION": 64,
    "QUIC_CREDENTIAL_FLAG_USE_TLS_BUILTIN_CERTIFICATE_VALIDATION": 128,
    "QUIC_CREDENTIAL_FLAG_REVOCATION_CHECK_END_CERT": 0x100, "QUIC_CREDENTIAL_FLAG_REVOCATION_CHECK_CHAIN": 0x200,
    "QUIC_CREDENTIAL_FLAG_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT": 0x400,
    "QUIC_CREDENTIAL_FLAG_IGNORE_NO_REVOCATION_CHECK": 0x800, "QUIC_CREDENTIAL_FLAG_IGNORE_REVOCATION_OFFLINE":
    0x1000, "QUIC_CREDENTIAL_FLAG_SET_ALLOWED_CIPHER_SUITES": 0x2000,
    "QUIC_CREDENTIAL_FLAG_USE_PORTABLE_CERTIFICATES": 0x4000, "QUIC_CREDENTIAL_FLAG_USE_SUPPLIED_CREDENTIALS":
    0x8000, "QUIC_CREDENTIAL_FLAG_USE_SYSTEM_MAPPER": 0x10000, "QUIC_CREDENTIAL_FLAG_CACHE_ONLY_URL_RETRIEVAL":
    0x20000, "QUIC_CREDENTIAL_FLAG_REVOCATION_CHECK_CACHE_ONLY": 0x40000,
    "QUIC_CREDENTIAL_FLAG_INPROC_PEER_CERTIFICATE": 0x80000, "QUIC_CREDENTIAL_FLAG_SET_CA_CERTIFICATE_FILE":
    0x100000, "QUIC_EXECUTION_PROFILE_LOW_LATENCY": 0, "QUIC_EXECUTION_PROFILE_TYPE_MAX_THROUGHPUT": 1,
    "QUIC_EXECUTION_PROFILE_TYPE_SCAVENGER": 2, "QUIC_EXECUTION_PROFILE_TYPE_REAL_TIME": 3,
    "QUIC_ADDRESS_FAMILY_UNSPEC": 0, "QUIC_ADDRESS_FAMILY_INET": 2, "QUIC_ADDRESS_FAMILY_INET6": 10,
    "QUIC_ALLOWED_CIPHER_SUITE_NONE": 0, "QUIC_ALLOWED_CIPHER_SUITE_AES_128_GCM_SHA256": 1,
    "QUIC_ALLOWED_CIPHER_SUITE_AES_256_GCM_SHA384": 2, "QUIC_ALLOWED_CIPHER_SUITE_CHACHA20_POLY1305_SHA256": 4,
    "QUIC_SERVER_NO_RESUME": 0, "QUIC_SERVER_RESUME_ONLY": 1, "QUIC_SERVER_RESUME_AND_ZERORTT": 2,
    "QUIC_SEND_RESUMPTION_FLAG_NONE": 0, "QUIC_SEND_RESUMPTION_FLAG_FINAL": 1, "QUIC_STREAM_EVENT_START_COMPLETE":
    0, "QUIC_STREAM_EVENT_RECEIVE": 1, "QUIC_STREAM_EVENT_SEND_COMPLETE": 2, "QUIC_STREAM_EVENT_PEER_SEND_SHUTDOWN":
    3, "QUIC_STREAM_EVENT_PEER_SEND_ABORTED": 4, "QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED": 5,
    "QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE": 6, "QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE": 7,
    "QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE": 8, "QUIC_STREAM_EVENT_PEER_ACCEPTED": 9,
    "QUIC_STREAM_EVENT_CANCEL_ON_LOSS": 10, "QUIC_CONNECTION_EVENT_CONNECTED": 0,
    "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT": 1, "QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER":
    2, "QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE": 3, "QUIC_CONNECTION_EVENT_LOCAL_ADDRESS_CHANGED": 4,
    "QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED": 5, "QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED": 6,
    "QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE": 7, "QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS": 8,
    "QUIC_CONNECTION_EVENT_IDEAL_PROCESSOR_CHANGED": 9, "QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED": 10,
    "QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED": 11, "QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED": 12,
    "QUIC_CONNECTION_EVENT_RESUMED": 13, "QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED": 14,
    "QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED": 15, "QUIC_DATAGRAM_SEND_UNKNOWN": 0,
    "QUIC_DATAGRAM_SEND_SENT": 1, "QUIC_DATAGRAM_SEND_LOST_SUSPECT": 2, "QUIC_DATAGRAM_SEND_LOST_DISCARDED": 3,
    "QUIC_DATAGRAM_SEND_ACKNOWLEDGED": 4, "QUIC_DATAGRAM_SEND_ACKNOWLEDGED_SPURIOUS": 5,
    "QUIC_DATAGRAM_SEND_CANCELED": 6, "QUIC_RECEIVE_FLAG_NONE": 0, "QUIC_RECEIVE_FLAG_0_RTT": 1,
    "QUIC_RECEIVE_FLAG_FIN": 2, "QUIC_API_VERSION_2": 2, "QUIC_MAX_ALPN_LENGTH": 255,
    "QUIC_PARAM_CONFIGURATION_SETTINGS": 0x3000000, "QUIC_PARAM_CONFIGURATION_TICKET_KEYS": 0x3000001,
    "QUIC_PARAM_CONN_CLOSE_REASON_PHRASE": 0x500000b, "QUIC_PARAM_CONN_DATAGRAM_RECEIVE_ENABLED": 0x500000d,
    "QUIC_PARAM_CONN_DATAGRAM_SEND_ENABLED": 0x500000e, "QUIC_PARAM_CONN_IDEAL_PROCESSOR": 0x5000003,
    "QUIC_PARAM_CONN_LOCAL_ADDRESS": 0x5000001, "QUIC_PARAM_CONN_LOCAL_BIDI_STREAM_COUNT": 0x5000008,
    "QUIC_PARAM_CONN_LOCAL_INTERFACE": 0x5000012, "QUIC_PARAM_CONN_LOCAL_UNIDI_STREAM_COUNT": 0x5000009,
    "QUIC_PARAM_CONN_MAX_STREAM_IDS": 0x500000a, "QUIC_PARAM_CONN_ORIG_DEST_CID": 0x5000018,
    "QUIC_PARAM_CONN_PEER_CERTIFICATE_VALID": 0x5000011, "QUIC_PARAM_CONN_QUIC_VERSION": 0x5000000,
    "QUIC_PARAM_CONN_REMOTE_ADDRESS": 0x5000002, "QUIC_PARAM_CONN_RESUMPTION_TICKET": 0x5000010,
    "QUIC_PARAM_CONN_SETTINGS": 0x5000004, "QUIC_PARAM_CONN_SHARE_UDP_BINDING": 0x5000007,
    "QUIC_PARAM_CONN_STATISTICS": 0x5000005, "QUIC_PARAM_CONN_STATISTICS_PLAT": 0x5000006,
    "QUIC_PARAM_CONN_STATISTICS_V2": 0x5000016, "QUIC_PARAM_CONN_STATISTICS_V2_PLAT": 0x5000017,
    "QUIC_PARAM_CONN_STREAM_SCHEDULING_SCHEME": 0x500000c, "QUIC_PARAM_CONN_TLS_SECRETS": 0x5000013,
    "QUIC_PARAM_GLOBAL_GLOBAL_SETTINGS": 0x1000006, "QUIC_PARAM_GLOBAL_LIBRARY_GIT_HASH": 0x1000008,
    "QUIC_PARAM_GLOBAL_LIBRARY_VERSION": 0x1000004, "QUIC_PARAM_GLOBAL_LOAD_BALACING_MODE": 0x1000002,
    "QUIC_PARAM_GLOBAL_PERF_COUNTERS": 0x1000003, "QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT": 0x1000000,
    "QUIC_PARAM_GLOBAL_SETTINGS": 0x1000005, "QUIC_PARAM_GLOBAL_STATELESS_RESET_KEY": 0x100000b,
    "QUIC_PARAM_GLOBAL_SUPPORTED_VERSIONS": 0x1000001, "QUIC_PARAM_GLOBAL_TLS_PROVIDER": 0x100000a,
    "QUIC_PARAM_LISTENER_LOCAL_ADDRESS": 0x4000000, "QUIC_PARAM_LISTENER_STATS": 0x4000001,
    "QUIC_PARAM_STREAM_0RTT_LENGTH": 0x8000001, "QUIC_PARAM_STREAM_ID": 0x8000000,
    "QUIC_PARAM_STREAM_IDEAL_SEND_BUFFER_SIZE": 0x8000002, "QUIC_PARAM_STREAM_PRIORITY": 0x8000003,
    "QUIC_PARAM_STREAM_STATISTICS": 0x8000004, "QUIC_PARAM_TLS_HANDSHAKE_INFO": 0x6000000,
    "QUIC_PARAM_TLS_NEGOTIATED_ALPN": 0x6000001, "QUIC_TLS_ALERT_CODE_SUCCESS": 0xffff, "QUIC_UINT62_MAX":
    0x3fffffffffffffff
}


def _measured_struct_names() -> set[str]:
    return set(SIZES)


def test_every_bound_struct_and_union_is_measured():
    bound = {name for name, obj in vars(b).items()
             if isinstance(obj, type) and issubclass(obj, (ctypes.Structure, ctypes.Union))
             and obj.__module__.startswith("quicsim.backends.msquic.")}
    assert bound == _measured_struct_names()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_size_and_alignment(name):
    cls = getattr(b, name)
    expected = SIZES[name]
    if isinstance(expected, tuple):
        assert (ctypes.sizeof(cls), ctypes.alignment(cls)) == expected
    else:
        assert ctypes.sizeof(cls) == expected


@pytest.mark.parametrize("name", sorted(OFFSETS))
def test_field_offsets_names_and_order(name):
    cls = getattr(b, name)
    plain = {f[0]: getattr(cls, f[0]).offset for f in cls._fields_ if len(f) == 2}
    assert plain == OFFSETS[name]
    assert list(plain) == list(OFFSETS[name])  # header order too
    bit_names = [f[0] for f in cls._fields_ if len(f) == 3]
    assert bit_names == [key.split(".")[1] for key in BITFIELDS if key.split(".")[0] == name]


def test_every_struct_with_fields_has_its_offsets_measured():
    with_fields = {n for n in SIZES if any(len(f) == 2 for f in getattr(b, n)._fields_)}
    assert with_fields <= set(OFFSETS)


@pytest.mark.parametrize("key", sorted(BITFIELDS))
def test_bitfields_land_on_gcc_bits(key):
    name, field = key.split(".")
    cls = getattr(b, name)
    width = next(f[2] for f in cls._fields_ if f[0] == field)
    value = cls()
    setattr(value, field, (1 << width) - 1)
    assert [(i, byte) for i, byte in enumerate(bytes(value)) if byte] == [BITFIELDS[key]]


def test_settings_is_set_and_flags_bits():
    assert list(b.SETTINGS_IS_SET_FIELDS) == IS_SET_BITS
    assert {n: b.QUIC_SETTINGS.is_set_bit(n) for n in PREVIEW_IS_SET_BITS} == PREVIEW_IS_SET_BITS
    assert dict(zip(b.SETTINGS_FLAGS_BITS, range(64))) == FLAGS_BITS
    s = b.QUIC_SETTINGS()
    s.set("IdleTimeoutMs", 5000).set("PeerBidiStreamCount", 16).set("SendBufferingEnabled", 1)
    s.set("HyStartEnabled", 1).set("StreamRecvWindowUnidiDefault", 4096)
    assert (s.IdleTimeoutMs, s.PeerBidiStreamCount, s.SendBufferingEnabled, s.Flags) == (5000, 16, 1, 1)
    assert s.IsSetFlags == sum(1 << IS_SET_BITS.index(n) for n in (
        "IdleTimeoutMs", "PeerBidiStreamCount", "SendBufferingEnabled", "HyStartEnabled",
        "StreamRecvWindowUnidiDefault"))
    assert s.is_set("HyStartEnabled") and not s.is_set("MaximumMtu")
    assert s.get("HyStartEnabled") == 1 and bytes(s)[106] == 0x01
    s.set("HyStartEnabled", 0)
    assert s.Flags == 0 and s.is_set("HyStartEnabled")
    with pytest.raises(AttributeError, match="NoSuchField"):
        s.set("NoSuchField", 1)


def _binding_constants() -> dict[str, int]:
    prefixes: list[tuple[str, type[enum.Enum]]] = [
        ("QUIC_LISTENER_EVENT_", b.ListenerEventType), ("QUIC_CREDENTIAL_TYPE_", b.CredentialType),
        ("QUIC_CREDENTIAL_FLAG_", b.CredentialFlags), ("QUIC_EXECUTION_PROFILE_", b.ExecutionProfile),
        ("QUIC_ADDRESS_FAMILY_", b.AddressFamily), ("QUIC_ALLOWED_CIPHER_SUITE_", b.AllowedCipherSuite),
        ("QUIC_SERVER_", b.ServerResumptionLevel), ("QUIC_SEND_RESUMPTION_FLAG_", b.SendResumptionFlags),
        ("QUIC_STREAM_EVENT_", b.StreamEventType), ("QUIC_CONNECTION_EVENT_", b.ConnectionEventType),
        ("QUIC_DATAGRAM_SEND_", b.DatagramSendState), ("QUIC_RECEIVE_FLAG_", b.ReceiveFlags),
    ]
    found = {prefix + name.replace("ZERO_RTT", "0_RTT"): int(member.value)
             for prefix, cls in prefixes for name, member in cls.__members__.items()}
    found.update({n: v for n, v in vars(b).items() if n.startswith("QUIC_") and type(v) is int})
    return found


def test_constants_equal_the_header():
    assert _binding_constants() == CONSTANTS


def test_addresses():
    addr = b.QUIC_ADDR.ipv4("127.0.0.1", 4433)
    assert bytes(addr)[:8] == bytes([2, 0, 0x11, 0x51, 127, 0, 0, 1])  # family LE, port and IP big-endian
    assert (addr.family, addr.host, addr.port) == (b.AddressFamily.INET, "127.0.0.1", 4433)
    addr6 = b.QUIC_ADDR.ipv6("::1", 65535)
    assert (addr6.family, addr6.host, addr6.port) == (b.AddressFamily.INET6, "::1", 65535)
    assert b.QUIC_ADDR.ipv4(port=0).port == 0


def test_buffers_keep_private_copies():
    chunk = bytearray(b"hello")
    bufs = b.Buffers([bytes(chunk), b"", b"!"])
    chunk[0] = ord("j")
    assert bufs.count == 3 and bufs.total_length == 6
    assert [bufs.array[i].Length for i in range(3)] == [5, 0, 1]
    assert all(bufs.array[i].Buffer for i in range(3))  # never NULL, even for an empty chunk
    assert b.buffers_bytes(bufs.array, bufs.count) == b"hello!"
    alpn = b.alpn_buffers("quicsim", b"h3")
    assert b.buffers_bytes(alpn.array, alpn.count) == b"quicsimh3" and alpn.count == 2


def test_status_helpers():
    assert b.status_value(0xFFFFFFFE) == b.Status.PENDING and b.status_value(0xFFFFFFFF) == b.Status.CONTINUE
    assert b.status_c(b.Status.PENDING) == 0xFFFFFFFE
    assert not b.status_failed(0xFFFFFFFE) and b.status_failed(int(b.Status.ABORTED))
    assert b.check(0, "X") == 0
    with pytest.raises(b.MsQuicError, match=r"StreamSend failed: INVALID_STATE \(1\)") as info:
        b.check(1, "StreamSend")
    assert info.value.status == b.Status.INVALID_STATE
    assert b.status_name(200000001) == "0xbebc201"


def test_a_missing_file_raises_oserror_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-libmsquic.so"
    with pytest.raises(OSError, match="no-such-libmsquic.so") as info:
        b.Library(missing)
    assert info.value.filename == str(missing)


def test_a_file_that_is_not_a_library_raises_oserror(tmp_path):
    text = tmp_path / "libmsquic.so"
    text.write_text("not an ELF file\n")
    with pytest.raises(OSError, match="cannot load an MsQuic library from .*libmsquic.so"):
        b.Library(text)


def test_a_library_that_is_not_msquic_raises_oserror():
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library found by ctypes.util.find_library")
    with pytest.raises(OSError, match="exports no MsQuicOpenVersion"):
        b.Library(libc)


_LIB = os.environ.get("QUICSIM_MSQUIC_LIB", "")


@pytest.mark.skipif(not os.path.isfile(_LIB), reason="set QUICSIM_MSQUIC_LIB to a libmsquic.so file to run it")
def test_smoke_the_real_library():
    with b.Library(_LIB) as lib:
        major, minor, patch, _build = lib.version()
        assert major == 2 and minor >= 0 and patch >= 0
        assert len(lib.git_hash()) in range(1, 64)
        registration = b.HQUIC()
        config = b.QUIC_REGISTRATION_CONFIG(b"quicsim-bindings-test", b.ExecutionProfile.LOW_LATENCY)
        b.check(lib.api.RegistrationOpen(ctypes.byref(config), ctypes.byref(registration)), "RegistrationOpen")
        assert registration.value
        lib.api.RegistrationClose(registration)
    assert lib.closed
    lib.close()  # a second close does nothing

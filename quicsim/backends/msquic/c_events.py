"""ctypes bindings of msquic.h's listener, connection and stream events (v2.3.5, Linux
x86_64): a Type and a union of every payload struct, as the header declares them."""

from __future__ import annotations

from ctypes import POINTER, Structure, Union, c_char, c_char_p, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p

from .structs import *  # noqa: F401,F403

# --- Listener events -----------------------------------------------------------------------


class QUIC_LISTENER_EVENT_NEW_CONNECTION_DATA(Structure):
    _fields_ = [("Info", POINTER(QUIC_NEW_CONNECTION_INFO)), ("Connection", HQUIC)]


class QUIC_LISTENER_EVENT_STOP_COMPLETE_DATA(Structure):
    _fields_ = [("AppCloseInProgress", BOOLEAN, 1), ("RESERVED", BOOLEAN, 7)]


class _ListenerEventUnion(Union):
    _fields_ = [
        ("NEW_CONNECTION", QUIC_LISTENER_EVENT_NEW_CONNECTION_DATA),
        ("STOP_COMPLETE", QUIC_LISTENER_EVENT_STOP_COMPLETE_DATA),
    ]


class QUIC_LISTENER_EVENT(Structure):
    _anonymous_ = ("u",)
    _fields_ = [("Type", QUIC_ENUM), ("u", _ListenerEventUnion)]


# --- Connection events ---------------------------------------------------------------------


class QUIC_CONNECTION_EVENT_CONNECTED_DATA(Structure):
    _fields_ = [("SessionResumed", BOOLEAN), ("NegotiatedAlpnLength", c_uint8),
                ("NegotiatedAlpn", POINTER(c_uint8))]


class QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT_DATA(Structure):
    _fields_ = [("Status", QUIC_STATUS), ("ErrorCode", QUIC_UINT62)]


class QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER_DATA(Structure):
    _fields_ = [("ErrorCode", QUIC_UINT62)]


class QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA(Structure):
    _fields_ = [("HandshakeCompleted", BOOLEAN, 1), ("PeerAcknowledgedShutdown", BOOLEAN, 1),
                ("AppCloseInProgress", BOOLEAN, 1)]


class QUIC_CONNECTION_EVENT_LOCAL_ADDRESS_CHANGED_DATA(Structure):
    _fields_ = [("Address", POINTER(QUIC_ADDR))]


class QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED_DATA(Structure):
    _fields_ = [("Address", POINTER(QUIC_ADDR))]


class QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED_DATA(Structure):
    _fields_ = [("Stream", HQUIC), ("Flags", QUIC_ENUM)]


class QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE_DATA(Structure):
    _fields_ = [("BidirectionalCount", c_uint16), ("UnidirectionalCount", c_uint16)]


class QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS_DATA(Structure):
    _fields_ = [("Bidirectional", BOOLEAN)]


class QUIC_CONNECTION_EVENT_IDEAL_PROCESSOR_CHANGED_DATA(Structure):
    _fields_ = [("IdealProcessor", c_uint16), ("PartitionIndex", c_uint16)]


class QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED_DATA(Structure):
    _fields_ = [("SendEnabled", BOOLEAN), ("MaxSendLength", c_uint16)]


class QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED_DATA(Structure):
    _fields_ = [("Buffer", POINTER(QUIC_BUFFER)), ("Flags", QUIC_ENUM)]


class QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED_DATA(Structure):
    _fields_ = [("ClientContext", c_void_p), ("State", QUIC_ENUM)]


class QUIC_CONNECTION_EVENT_RESUMED_DATA(Structure):
    _fields_ = [("ResumptionStateLength", c_uint16), ("ResumptionState", POINTER(c_uint8))]


class QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED_DATA(Structure):
    _fields_ = [("ResumptionTicketLength", c_uint32), ("ResumptionTicket", POINTER(c_uint8))]


class QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED_DATA(Structure):
    _fields_ = [("Certificate", c_void_p), ("DeferredErrorFlags", c_uint32), ("DeferredStatus", QUIC_STATUS),
                ("Chain", c_void_p)]


class _ConnectionEventUnion(Union):
    _fields_ = [
        ("CONNECTED", QUIC_CONNECTION_EVENT_CONNECTED_DATA),
        ("SHUTDOWN_INITIATED_BY_TRANSPORT", QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT_DATA),
        ("SHUTDOWN_INITIATED_BY_PEER", QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER_DATA),
        ("SHUTDOWN_COMPLETE", QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE_DATA),
        ("LOCAL_ADDRESS_CHANGED", QUIC_CONNECTION_EVENT_LOCAL_ADDRESS_CHANGED_DATA),
        ("PEER_ADDRESS_CHANGED", QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED_DATA),
        ("PEER_STREAM_STARTED", QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED_DATA),
        ("STREAMS_AVAILABLE", QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE_DATA),
        ("PEER_NEEDS_STREAMS", QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS_DATA),
        ("IDEAL_PROCESSOR_CHANGED", QUIC_CONNECTION_EVENT_IDEAL_PROCESSOR_CHANGED_DATA),
        ("DATAGRAM_STATE_CHANGED", QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED_DATA),
        ("DATAGRAM_RECEIVED", QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED_DATA),
        ("DATAGRAM_SEND_STATE_CHANGED", QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED_DATA),
        ("RESUMED", QUIC_CONNECTION_EVENT_RESUMED_DATA),
        ("RESUMPTION_TICKET_RECEIVED", QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED_DATA),
        ("PEER_CERTIFICATE_RECEIVED", QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED_DATA),
    ]


class QUIC_CONNECTION_EVENT(Structure):
    _anonymous_ = ("u",)
    _fields_ = [("Type", QUIC_ENUM), ("u", _ConnectionEventUnion)]


# --- Stream events -------------------------------------------------------------------------


class QUIC_STREAM_EVENT_START_COMPLETE_DATA(Structure):
    _fields_ = [("Status", QUIC_STATUS), ("ID", QUIC_UINT62), ("PeerAccepted", BOOLEAN, 1),
                ("RESERVED", BOOLEAN, 7)]


class QUIC_STREAM_EVENT_RECEIVE_DATA(Structure):
    _fields_ = [
        ("AbsoluteOffset", c_uint64),
        ("TotalBufferLength", c_uint64),  # in/out: a handler may lower it to consume less
        ("Buffers", POINTER(QUIC_BUFFER)),
        ("BufferCount", c_uint32),
        ("Flags", QUIC_ENUM),
    ]


class QUIC_STREAM_EVENT_SEND_COMPLETE_DATA(Structure):
    _fields_ = [("Canceled", BOOLEAN), ("ClientContext", c_void_p)]


class QUIC_STREAM_EVENT_PEER_SEND_ABORTED_DATA(Structure):
    _fields_ = [("ErrorCode", QUIC_UINT62)]


class QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED_DATA(Structure):
    _fields_ = [("ErrorCode", QUIC_UINT62)]


class QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE_DATA(Structure):
    _fields_ = [("Graceful", BOOLEAN)]


class QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA(Structure):
    _fields_ = [
        ("ConnectionShutdown", BOOLEAN),
        ("AppCloseInProgress", BOOLEAN, 1),
        ("ConnectionShutdownByApp", BOOLEAN, 1),
        ("ConnectionClosedRemotely", BOOLEAN, 1),
        ("RESERVED", BOOLEAN, 5),
        ("ConnectionErrorCode", QUIC_UINT62),
        ("ConnectionCloseStatus", QUIC_STATUS),
    ]


class QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE_DATA(Structure):
    _fields_ = [("ByteCount", c_uint64)]


class QUIC_STREAM_EVENT_CANCEL_ON_LOSS_DATA(Structure):
    _fields_ = [("ErrorCode", QUIC_UINT62)]  # out: the handler sets the abort code


class _StreamEventUnion(Union):
    _fields_ = [
        ("START_COMPLETE", QUIC_STREAM_EVENT_START_COMPLETE_DATA),
        ("RECEIVE", QUIC_STREAM_EVENT_RECEIVE_DATA),
        ("SEND_COMPLETE", QUIC_STREAM_EVENT_SEND_COMPLETE_DATA),
        ("PEER_SEND_ABORTED", QUIC_STREAM_EVENT_PEER_SEND_ABORTED_DATA),
        ("PEER_RECEIVE_ABORTED", QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED_DATA),
        ("SEND_SHUTDOWN_COMPLETE", QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE_DATA),
        ("SHUTDOWN_COMPLETE", QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE_DATA),
        ("IDEAL_SEND_BUFFER_SIZE", QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE_DATA),
        ("CANCEL_ON_LOSS", QUIC_STREAM_EVENT_CANCEL_ON_LOSS_DATA),
    ]


class QUIC_STREAM_EVENT(Structure):
    _anonymous_ = ("u",)
    _fields_ = [("Type", QUIC_ENUM), ("u", _StreamEventUnion)]



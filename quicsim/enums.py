"""MsQuic's status codes, flags and event types, with MsQuic's numeric values (Linux build)."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Status(IntEnum):
    """QUIC_STATUS values as MsQuic defines them on Linux (errno-based)."""

    SUCCESS = 0
    PENDING = -2
    CONTINUE = -1
    OUT_OF_MEMORY = 12
    INVALID_PARAMETER = 22
    INVALID_STATE = 1
    NOT_SUPPORTED = 95
    ABORTED = 125
    CONNECTION_IDLE = 62
    CONNECTION_TIMEOUT = 110
    CONNECTION_REFUSED = 111
    PROTOCOL_ERROR = 71
    STREAM_LIMIT_REACHED = 86
    USER_CANCELED = 130
    INTERNAL_ERROR = 5  # EIO
    HANDSHAKE_FAILURE = 103  # ECONNABORTED
    ALPN_NEG_FAILURE = 92  # ENOPROTOOPT

    @property
    def failed(self) -> bool:
        """QUIC_FAILED: a status is a failure when it is greater than zero."""
        return self.value > 0

    @property
    def succeeded(self) -> bool:
        """QUIC_SUCCEEDED: SUCCESS, PENDING and CONTINUE all count as success."""
        return self.value <= 0


class StreamOpenFlags(IntFlag):
    NONE = 0
    UNIDIRECTIONAL = 1
    ZERO_RTT = 2
    DELAY_ID_FC_UPDATES = 4


class StreamStartFlags(IntFlag):
    NONE = 0
    IMMEDIATE = 1
    FAIL_BLOCKED = 2
    SHUTDOWN_ON_FAIL = 4
    INDICATE_PEER_ACCEPT = 8
    PRIORITY_WORK = 0x10


class SendFlags(IntFlag):
    NONE = 0
    ALLOW_0_RTT = 1
    START = 2
    FIN = 4
    DGRAM_PRIORITY = 8
    DELAY_SEND = 0x10
    CANCEL_ON_LOSS = 0x20
    PRIORITY_WORK = 0x40
    CANCEL_ON_BLOCKED = 0x80


class StreamShutdownFlags(IntFlag):
    NONE = 0
    GRACEFUL = 1
    ABORT_SEND = 2
    ABORT_RECEIVE = 4
    ABORT = 6
    IMMEDIATE = 8
    INLINE = 0x10


class ConnectionShutdownFlags(IntFlag):
    NONE = 0
    SILENT = 1


class ReceiveFlags(IntFlag):
    NONE = 0
    ZERO_RTT = 1
    FIN = 2


class StreamEventType(IntEnum):
    START_COMPLETE = 0
    RECEIVE = 1
    SEND_COMPLETE = 2
    PEER_SEND_SHUTDOWN = 3
    PEER_SEND_ABORTED = 4
    PEER_RECEIVE_ABORTED = 5
    SEND_SHUTDOWN_COMPLETE = 6
    SHUTDOWN_COMPLETE = 7
    IDEAL_SEND_BUFFER_SIZE = 8
    PEER_ACCEPTED = 9
    CANCEL_ON_LOSS = 10


class ConnectionEventType(IntEnum):
    CONNECTED = 0
    SHUTDOWN_INITIATED_BY_TRANSPORT = 1
    SHUTDOWN_INITIATED_BY_PEER = 2
    SHUTDOWN_COMPLETE = 3
    LOCAL_ADDRESS_CHANGED = 4
    PEER_ADDRESS_CHANGED = 5
    PEER_STREAM_STARTED = 6
    STREAMS_AVAILABLE = 7
    PEER_NEEDS_STREAMS = 8
    IDEAL_PROCESSOR_CHANGED = 9
    DATAGRAM_STATE_CHANGED = 10
    DATAGRAM_RECEIVED = 11
    DATAGRAM_SEND_STATE_CHANGED = 12
    RESUMED = 13
    RESUMPTION_TICKET_RECEIVED = 14
    PEER_CERTIFICATE_RECEIVED = 15


class DatagramSendState(IntEnum):
    UNKNOWN = 0
    SENT = 1
    LOST_SUSPECT = 2
    LOST_DISCARDED = 3
    ACKNOWLEDGED = 4
    ACKNOWLEDGED_SPURIOUS = 5
    CANCELED = 6


#: The largest QUIC variable-length integer; larger error codes are INVALID_PARAMETER.
MAX_VARINT = (1 << 62) - 1
#: MsQuic rejects a single StreamSend whose buffers add up to more than this.
MAX_SEND_LENGTH = 0xFFFFFFFF

"""Stream and connection events: small frozen dataclasses with MsQuic's fields in snake_case.

Each event has a ``type`` (its :class:`StreamEventType` / :class:`ConnectionEventType`)
so handlers can switch on it the way MsQuic callbacks switch on ``Event->Type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

from .enums import ConnectionEventType, DatagramSendState, ReceiveFlags, Status, StreamEventType

if TYPE_CHECKING:  # the handle type only; this module stays free of the API layer at run time
    from .api import Stream


@dataclass(frozen=True, slots=True)
class StreamEvent:
    type: ClassVar[StreamEventType]


@dataclass(frozen=True, slots=True)
class StartComplete(StreamEvent):
    type: ClassVar[Literal[StreamEventType.START_COMPLETE]] = StreamEventType.START_COMPLETE
    status: Status
    id: int | None
    peer_accepted: bool


@dataclass(frozen=True, slots=True)
class Receive(StreamEvent):
    type: ClassVar[Literal[StreamEventType.RECEIVE]] = StreamEventType.RECEIVE
    absolute_offset: int
    total_buffer_length: int
    buffers: tuple[bytes, ...]
    flags: ReceiveFlags

    @property
    def data(self) -> bytes:
        """All received bytes of this event joined."""
        return b"".join(self.buffers)


@dataclass(frozen=True, slots=True)
class SendComplete(StreamEvent):
    type: ClassVar[Literal[StreamEventType.SEND_COMPLETE]] = StreamEventType.SEND_COMPLETE
    canceled: bool
    client_context: Any
    #: quicsim's own id for the send (1-based per connection), for correlating traces.
    send_id: int = field(default=0, compare=False)


# The per-send events are built without calling the class: a frozen dataclass's __init__
# assigns each field through object.__setattr__, which costs more than the rest of a
# SEND_COMPLETE's delivery. These set the same slots directly (same object, same fields).
_new = object.__new__
_set_canceled = SendComplete.__dict__["canceled"].__set__
_set_client_context = SendComplete.__dict__["client_context"].__set__
_set_send_id = SendComplete.__dict__["send_id"].__set__
_set_absolute_offset = Receive.__dict__["absolute_offset"].__set__
_set_total_buffer_length = Receive.__dict__["total_buffer_length"].__set__
_set_buffers = Receive.__dict__["buffers"].__set__
_set_receive_flags = Receive.__dict__["flags"].__set__


def send_complete(canceled: bool, client_context: Any, send_id: int) -> SendComplete:
    """``SendComplete(canceled, client_context, send_id)``, built for the hot path."""
    event = _new(SendComplete)
    _set_canceled(event, canceled)
    _set_client_context(event, client_context)
    _set_send_id(event, send_id)
    return event


def receive(absolute_offset: int, data: bytes, flags: ReceiveFlags) -> Receive:
    """``Receive`` of one buffer, built for the hot path."""
    event = _new(Receive)
    _set_absolute_offset(event, absolute_offset)
    _set_total_buffer_length(event, len(data))
    _set_buffers(event, (data,))
    _set_receive_flags(event, flags)
    return event


def receive_buffers(absolute_offset: int, buffers: tuple[bytes, ...], total: int, flags: ReceiveFlags) -> Receive:
    """``Receive`` of ``buffers`` (``total`` bytes; none at all for a FIN alone)."""
    event = _new(Receive)
    _set_absolute_offset(event, absolute_offset)
    _set_total_buffer_length(event, total)
    _set_buffers(event, buffers)
    _set_receive_flags(event, flags)
    return event


@dataclass(frozen=True, slots=True)
class PeerSendShutdown(StreamEvent):
    type: ClassVar[Literal[StreamEventType.PEER_SEND_SHUTDOWN]] = StreamEventType.PEER_SEND_SHUTDOWN


@dataclass(frozen=True, slots=True)
class PeerSendAborted(StreamEvent):
    type: ClassVar[Literal[StreamEventType.PEER_SEND_ABORTED]] = StreamEventType.PEER_SEND_ABORTED
    error_code: int


@dataclass(frozen=True, slots=True)
class PeerReceiveAborted(StreamEvent):
    type: ClassVar[Literal[StreamEventType.PEER_RECEIVE_ABORTED]] = StreamEventType.PEER_RECEIVE_ABORTED
    error_code: int


@dataclass(frozen=True, slots=True)
class SendShutdownComplete(StreamEvent):
    type: ClassVar[Literal[StreamEventType.SEND_SHUTDOWN_COMPLETE]] = StreamEventType.SEND_SHUTDOWN_COMPLETE
    graceful: bool


@dataclass(frozen=True, slots=True)
class ShutdownComplete(StreamEvent):
    type: ClassVar[Literal[StreamEventType.SHUTDOWN_COMPLETE]] = StreamEventType.SHUTDOWN_COMPLETE
    connection_shutdown: bool = False
    app_close_in_progress: bool = False
    connection_shutdown_by_app: bool = False
    connection_closed_remotely: bool = False
    connection_error_code: int = 0
    connection_close_status: Status = Status.SUCCESS


@dataclass(frozen=True, slots=True)
class IdealSendBufferSize(StreamEvent):
    type: ClassVar[Literal[StreamEventType.IDEAL_SEND_BUFFER_SIZE]] = StreamEventType.IDEAL_SEND_BUFFER_SIZE
    byte_count: int


@dataclass(frozen=True, slots=True)
class PeerAccepted(StreamEvent):
    type: ClassVar[Literal[StreamEventType.PEER_ACCEPTED]] = StreamEventType.PEER_ACCEPTED


@dataclass(slots=True)
class CancelOnLoss:  # not a (frozen) StreamEvent subclass: its handler writes error_code
    """Data of a CANCEL_ON_LOSS stream was lost. The one mutable event: as in MsQuic, the
    handler may set ``error_code``, which the stream is then aborted with."""

    type: ClassVar[Literal[StreamEventType.CANCEL_ON_LOSS]] = StreamEventType.CANCEL_ON_LOSS
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    type: ClassVar[ConnectionEventType]


@dataclass(frozen=True, slots=True)
class Connected(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.CONNECTED]] = ConnectionEventType.CONNECTED
    session_resumed: bool
    negotiated_alpn: str | None


@dataclass(frozen=True, slots=True)
class ShutdownInitiatedByTransport(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT]] = (
        ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT)
    status: Status
    error_code: int


@dataclass(frozen=True, slots=True)
class ShutdownInitiatedByPeer(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER]] = (
        ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER)
    error_code: int


@dataclass(frozen=True, slots=True)
class ConnectionShutdownComplete(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.SHUTDOWN_COMPLETE]] = ConnectionEventType.SHUTDOWN_COMPLETE
    handshake_completed: bool
    peer_acknowledged_shutdown: bool
    app_close_in_progress: bool


@dataclass(frozen=True, slots=True)
class PeerStreamStarted(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.PEER_STREAM_STARTED]] = ConnectionEventType.PEER_STREAM_STARTED
    stream: Stream
    flags: int


@dataclass(frozen=True, slots=True)
class StreamsAvailable(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.STREAMS_AVAILABLE]] = ConnectionEventType.STREAMS_AVAILABLE
    bidirectional_count: int
    unidirectional_count: int


@dataclass(frozen=True, slots=True)
class DatagramStateChanged(ConnectionEvent):
    """Whether datagrams can be sent, and how long one may be (QuicDatagramOnSendStateChanged):
    raised when the peer's transport parameters arrive."""
    type: ClassVar[Literal[ConnectionEventType.DATAGRAM_STATE_CHANGED]] = ConnectionEventType.DATAGRAM_STATE_CHANGED
    send_enabled: bool
    max_send_length: int


@dataclass(frozen=True, slots=True)
class DatagramSendStateChanged(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED]] = (
        ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED)
    client_context: Any
    state: DatagramSendState
    #: quicsim's own id for the datagram (1-based per connection), for correlating traces.
    datagram_id: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class DatagramReceived(ConnectionEvent):
    type: ClassVar[Literal[ConnectionEventType.DATAGRAM_RECEIVED]] = ConnectionEventType.DATAGRAM_RECEIVED
    buffer: bytes
    flags: ReceiveFlags = ReceiveFlags.NONE


#: Every stream event a handler can receive: ``event.type`` tells which, and type checkers
#: narrow on it (``if event.type is StreamEventType.SEND_COMPLETE: event.canceled``).
AnyStreamEvent = Union[StartComplete, Receive, SendComplete, PeerSendShutdown, PeerSendAborted,
                       PeerReceiveAborted, SendShutdownComplete, ShutdownComplete, IdealSendBufferSize,
                       PeerAccepted, CancelOnLoss]

#: Every connection event a handler can receive, narrowed on ``event.type`` the same way.
AnyConnectionEvent = Union[Connected, ShutdownInitiatedByTransport, ShutdownInitiatedByPeer,
                           ConnectionShutdownComplete, PeerStreamStarted, StreamsAvailable,
                           DatagramStateChanged, DatagramSendStateChanged, DatagramReceived]

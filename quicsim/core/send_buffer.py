"""Send buffering and the ideal send buffer size (MsQuic's ``src/core/send_buffer.c``).

With buffering on, a send completes (canceled=False) as soon as it is copied into the
connection's send buffer, while the buffered bytes are below the ideal size; the other
sends wait in their stream's queue and are buffered as acknowledgements free space (or
complete on their own acknowledgement, or are canceled on abort).

The ideal size is kept whether or not buffering is on: it starts at 128 KiB and only
grows, on a 1.5x ladder up to 128 MiB, with the bytes the path can have in flight
(MsQuic's BytesInFlightMax; aioquic's congestion window stands in for it). Each stream
is told min(connection ideal, the ladder step above its send window) with
IDEAL_SEND_BUFFER_SIZE whenever that value changes: when the connection's ideal grows,
and when the peer's MAX_STREAM_DATA moves the stream's window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from aioquic.quic.packet import QuicFrameType

from .. import events as ev
from . import aioquic_adapter as aq

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore
    from .stream import StreamCore

MIN_IDEAL = 128 * 1024  # QUIC_DEFAULT_IDEAL_SEND_BUFFER_SIZE
MAX_IDEAL = 128 * 1024 * 1024  # QUIC_MAX_IDEAL_SEND_BUFFER_SIZE
_UINT32_MAX = 0xFFFFFFFF
_NEVER = 1 << 62  # above any congestion window


def ideal_for(base: int) -> int:
    """QuicGetNextIdealBytes: the first step of the ladder (128 KiB, then 1.5x each step,
    capped at 128 MiB) above ``base``; a value on a step rounds up to the next one."""
    threshold = MIN_IDEAL
    while threshold <= base:
        following = threshold + threshold // 2
        if following > MAX_IDEAL:
            return MAX_IDEAL
        threshold = following
    return threshold


class _StreamIdeal:
    """What QUIC_STREAM keeps for the ideal size: LastIdealSendBuffer and SendWindow."""

    __slots__ = ("last", "window")

    def __init__(self) -> None:
        self.last = 0  # nothing announced yet: the first adjustment always announces
        #: SendWindow as the last MAX_STREAM_DATA set it (limit minus UnAckedOffset);
        #: None until then, when it is the stream's initial limit
        self.window: int | None = None


class SendBuffer:
    """The connection-wide buffer: how much is buffered, the ideal, who waits for room."""

    __slots__ = ("buffered_bytes", "ideal_bytes", "waiting", "_conn", "cc", "_streams", "_moved", "_had_streams",
                 "settled_below")

    def __init__(self) -> None:
        self.buffered_bytes = 0
        self.ideal_bytes = MIN_IDEAL
        #: started streams with unbuffered sends, in the order they started waiting
        self.waiting: dict[StreamCore, None] = {}
        self._conn: ConnectionCore | None = None
        self.cc: Any = None  # the connection's congestion controller, once adjusted
        self._streams: WeakKeyDictionary[StreamCore, _StreamIdeal] = WeakKeyDictionary()
        #: streams whose window a MAX_STREAM_DATA moved since the last adjustment
        self._moved: dict[StreamCore, None] = {}
        self._had_streams = False  # MsQuic's StreamTable exists
        #: :meth:`adjust` has nothing to do while the congestion window stays below this
        #: (0: it must look; set when it last found nothing to do, cleared by a moved
        #: stream window): poll tests it inline, per datagram, instead of calling adjust
        self.settled_below = 0

    def fill(self) -> None:
        """QuicSendBufferFill: buffer whole sends, oldest stream first, while there is room."""
        waiting = self.waiting
        while waiting and self.buffered_bytes < self.ideal_bytes:
            stream = next(iter(waiting))
            if not stream.buffer_next_send():
                del waiting[stream]
        if waiting and self._conn is not None and self._conn.delivery.probing:
            self._conn.delivery.probe(None, "send-buffer-full")

    def wait(self, stream: StreamCore) -> None:
        """``stream`` has sends waiting for room in the buffer (the next fill takes them)."""
        self.waiting[stream] = None

    def hold(self, length: int) -> None:
        """A send of ``length`` bytes was copied into the buffer."""
        self.buffered_bytes += length

    def release(self, length: int) -> None:
        self.buffered_bytes -= length

    def has_space(self) -> bool:
        """QuicSendBufferHasSpace: BufferedBytes < IdealBytes."""
        return self.buffered_bytes < self.ideal_bytes

    # ------------------------------------------------------------ the ideal size

    def adjust(self, conn: ConnectionCore) -> None:
        """After aioquic processed datagrams or timers: QuicSendBufferStreamAdjust for the
        streams a MAX_STREAM_DATA moved, then QuicSendBufferConnectionAdjust."""
        if self._conn is None:  # the first adjustment: bind to the connection
            self.cc = aq.congestion_control(conn.quic)
            self._watch_max_stream_data(conn)
        if self._moved:
            moved, self._moved = self._moved, {}
            for stream in moved:
                if not stream.shutdown_complete:
                    self.stream_adjust(stream)
        if not self._had_streams and conn.streams:
            self._had_streams = True
        ideal = self.ideal_bytes
        # The ladder value above the window exceeds ``ideal`` exactly when the window has
        # reached it: an O(1) test per poll, the ladder walked only when it grows.
        if ideal == MAX_IDEAL or not self._had_streams or self.cc.congestion_window < ideal:
            if self._had_streams and not self._moved:
                # Until a stream's window moves (or, short of the top step, the window
                # reaches the next step) the same test returns here again.
                self.settled_below = _NEVER if ideal == MAX_IDEAL else ideal
            return
        self.settled_below = 0
        self.ideal_bytes = ideal_for(self.cc.congestion_window)  # only ever grows
        for stream in list(conn.streams.values()):
            quic_stream = stream.quic_stream
            # The stream table holds streams the peer's stream limit lets through.
            if stream.send_enabled and quic_stream is not None and not quic_stream.is_blocked:
                self.stream_adjust(stream)
        if conn.settings.send_buffering:
            self.fill()

    def stream_adjust(self, stream: StreamCore) -> None:
        """QuicSendBufferStreamAdjust: min(connection ideal, the ladder step above the
        stream's send window), announced when it differs from the last announced value."""
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _StreamIdeal()
        window = state.window
        if window is None:  # QuicStreamStart: SendWindow = min(MaxAllowedSendOffset, UINT32_MAX)
            assert stream.quic_stream is not None  # only started streams are adjusted
            window = min(stream.quic_stream.max_stream_data_remote, _UINT32_MAX)
        byte_count = self.ideal_bytes
        if window < byte_count:
            byte_count = min(byte_count, ideal_for(window))
        if state.last != byte_count:
            state.last = byte_count
            stream.indicate(ev.IdealSendBufferSize(byte_count=byte_count))

    def _watch_max_stream_data(self, conn: ConnectionCore) -> None:
        """Wrap aioquic's MAX_STREAM_DATA frame handler (per connection) to note, as
        MsQuic's QuicStreamRecv does, each raise of a stream's limit and its new window."""
        self._conn = conn

        def wrap(handle: Any) -> Any:
            def on_max_stream_data(context: Any, frame_type: int, buf: Any) -> None:
                self._on_max_stream_data(conn, handle, context, frame_type, buf)
            return on_max_stream_data

        aq.wrap_frame_handler(conn.quic, QuicFrameType.MAX_STREAM_DATA, wrap)

    def _on_max_stream_data(self, conn: ConnectionCore, handle: Any, context: Any, frame_type: int,
                            buf: Any) -> None:
        """aioquic's MAX_STREAM_DATA handler, then what MsQuic's QuicStreamRecv does with a
        raised limit: note the stream's new send window for the next adjustment."""
        start = buf.tell()
        stream_id = buf.pull_uint_var()
        buf.seek(start)
        quic_stream = aq.quic_stream(conn.quic, stream_id)
        before = None if quic_stream is None else quic_stream.max_stream_data_remote
        handle(context, frame_type, buf)
        if before is None:
            return
        assert quic_stream is not None  # ``before`` was read from it
        if quic_stream.max_stream_data_remote <= before:
            return
        stream = conn.streams.get(stream_id)
        if stream is None or stream.quic_stream is not quic_stream:
            return
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _StreamIdeal()
        # SendWindow = min(MaxAllowedSendOffset - UnAckedOffset, UINT32_MAX)
        state.window = min(quic_stream.max_stream_data_remote - aq.acked_offset(quic_stream.sender),
                           _UINT32_MAX)
        self._moved[stream] = None
        self.settled_below = 0  # the next poll adjusts

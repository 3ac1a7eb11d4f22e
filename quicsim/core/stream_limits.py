"""Stream limits of one connection: ours (PeerBidiStreamCount / PeerUnidiStreamCount,
announced to the peer) and the peer's, as MsQuic reports them (STREAMS_AVAILABLE at the
peer's transport parameters and when its MAX_STREAMS raises them; PEER_ACCEPTED for a
stream that asked for it once the limit lets it through), and the RESET_STREAM and
STOP_SENDING frames held for streams the peer has not allowed yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import events as ev
from . import aioquic_adapter as aq

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore
    from .stream import StreamCore


class StreamLimits:
    """Both sides' stream limits of ``conn`` (set up with it, before the handshake)."""

    def __init__(self, conn: "ConnectionCore") -> None:
        self.conn = conn
        #: the peer's limits last told to the application
        self.told: tuple[int, int] | None = None
        #: the peer's stream limits may have moved since the last look (transport
        #: parameters at first, then each MAX_STREAMS frame): poll looks only then
        self.moved = True
        #: started streams blocked by the peer's stream limit whose RESET_STREAM or
        #: STOP_SENDING waits until the peer allows the stream (aioquic_adapter.hold_abort_frames)
        self.held_aborts: dict[StreamCore, None] = {}
        #: started streams blocked by the peer's stream limit that asked for PEER_ACCEPTED
        self.awaiting_accept: dict[StreamCore, None] = {}
        aq.set_local_stream_limits(conn.quic, conn.settings.peer_bidi_stream_count,
                                   conn.settings.peer_unidi_stream_count)
        aq.watch_stream_limits(conn.quic, self._on_moved)

    def _on_moved(self) -> None:
        self.moved = True

    def on_peer_transport_parameters(self) -> None:
        """QuicConnProcessPeerTransportParameters, before CONNECTED: STREAMS_AVAILABLE with
        the peer's stream limits, then DATAGRAM_STATE_CHANGED. A client's application is
        told; a server's has no handler yet when the client's parameters arrive (they come
        with its first flight), so nothing reaches it."""
        conn = self.conn
        quic = conn.quic
        limits = aq.peer_stream_limits(quic)
        self.told = limits  # the limits told now: later MAX_STREAMS frames move them
        self.moved = False
        if not conn.is_client:
            return
        conn.delivery.connection_event(ev.StreamsAvailable(
            bidirectional_count=max(0, limits[0] - quic.get_next_available_stream_id(False) // 4),
            unidirectional_count=max(0, limits[1] - quic.get_next_available_stream_id(True) // 4)))
        send_enabled, max_send_length = conn.datagrams.state()
        conn.delivery.connection_event(ev.DatagramStateChanged(send_enabled=send_enabled,
                                                               max_send_length=max_send_length))

    def check(self) -> None:
        """PEER_ACCEPTED for streams the peer's MAX_STREAMS let through (when they asked
        with INDICATE_PEER_ACCEPT), STREAMS_AVAILABLE when the peer's limits grow."""
        conn = self.conn
        quic = conn.quic
        self.moved = False
        limits = aq.peer_stream_limits(quic)
        if limits != self.told:
            self.told = limits
            conn.delivery.connection_event(ev.StreamsAvailable(
                bidirectional_count=max(0, limits[0] - quic.get_next_available_stream_id(False) // 4),
                unidirectional_count=max(0, limits[1] - quic.get_next_available_stream_id(True) // 4)))
        if self.held_aborts:
            for stream in list(self.held_aborts):
                assert stream.quic_stream is not None  # only a started stream holds frames
                if aq.release_abort_frames(stream.quic_stream):
                    del self.held_aborts[stream]
        if self.awaiting_accept:
            for stream in list(self.awaiting_accept):
                assert stream.quic_stream is not None  # only a started stream awaits PEER_ACCEPTED
                if not stream.quic_stream.is_blocked:
                    del self.awaiting_accept[stream]
                    stream.indicate(ev.PeerAccepted())

    def would_block(self, unidirectional: bool) -> bool:
        """Opening a stream of this kind now would exceed the peer's limit (FAIL_BLOCKED)."""
        return aq.stream_would_block(self.conn.quic, unidirectional)

    def hold_abort_frames(self, stream: "StreamCore") -> None:
        """A started stream asked aioquic for RESET_STREAM or STOP_SENDING: held while the
        peer's stream limit blocks it (the peer may not see frames of a stream it has not
        allowed), sent once the limit lets it through."""
        assert stream.quic_stream is not None
        if aq.hold_abort_frames(stream.quic_stream):
            self.held_aborts[stream] = None

    def await_peer_accept(self, stream: "StreamCore") -> None:
        """A started stream blocked by the peer's stream limit asked for PEER_ACCEPTED."""
        self.awaiting_accept[stream] = None

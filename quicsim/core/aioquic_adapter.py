"""The one module that reads aioquic's private state or patches it.

aioquic raises no event when stream data is acknowledged, keeps no per-datagram delivery
state and has no setting for the peer's stream limits, so quicsim reads and wraps a few
private fields. They all live here, each behind a function named for what the core needs:
the core's, the driver's (its asyncio protocol's loop, transport and timer) and seeded
runs' (streams hashed by id, aioquic's randomness swapped while seeded). Every private
name used below is listed in ``tests/test_aioquic_contract.py`` (``PRIVATE_NAMES``), which
fails first, naming the field, when an aioquic release moves one; the same test reads the
syntax tree of every other module of quicsim and fails on any touch of aioquic's insides
there. Patches are per instance: no aioquic class is changed.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, cast

from aioquic import tls
from aioquic.quic import events as qe
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.packet import QuicFrameType, QuicStreamFrame
from aioquic.quic.packet_builder import QuicDeliveryState
from aioquic.quic.stream import QuicStream, QuicStreamSender

ACKED = QuicDeliveryState.ACKED

# ---------------------------------------------------------------- connection state


def is_client(quic: QuicConnection) -> bool:
    return quic._is_client


def close_event(quic: QuicConnection) -> qe.ConnectionTerminated | None:
    """The close aioquic has decided on (by the peer, a timer or a local close), if any."""
    return quic._close_event


def closed_by_peer(quic: QuicConnection) -> bool:
    """The peer's CONNECTION_CLOSE arrived (aioquic is draining)."""
    return quic._state is QuicConnectionState.DRAINING


def end_now(quic: QuicConnection) -> None:
    """End aioquic's side of the connection at once, sending nothing more: a silent close
    (the peer will only time out), or a closing or draining period cut short. A close
    aioquic has not been told of is recorded as a silent one."""
    if quic._state is QuicConnectionState.TERMINATED:
        return
    if quic._close_event is None:
        quic._close_event = qe.ConnectionTerminated(error_code=0, frame_type=None, reason_phrase="silent shutdown")
    quic._close_end()


def is_closing(quic: QuicConnection) -> bool:
    """In the closing period of a close this side started (aioquic drops every datagram
    that arrives then)."""
    return quic._state is QuicConnectionState.CLOSING


#: MsQuic's draining period after the peer's close: max(15 ms, 2 * smoothed RTT)
#: (QuicConnTryClose); aioquic's is 3 PTO
DRAIN_MIN = 0.015


def close_as_msquic(quic: QuicConnection) -> None:
    """Close as MsQuic does where aioquic differs, on this connection: when the peer's
    CONNECTION_CLOSE arrives, answer it with one CONNECTION_CLOSE of our own (error 0, a
    transport close, as QuicConnTryClose queues it: aioquic sends nothing while draining)
    and drain for max(15 ms, 2 * smoothed RTT) instead of 3 PTO."""
    close_begin = quic._close_begin

    def close_begin_msquic(is_initiator: bool, now: float) -> None:
        close_begin(is_initiator, now)
        if not is_initiator:
            quic._close_at = now + max(DRAIN_MIN, 2 * quic._loss._rtt_smoothed)
            _answer_once(quic)

    # A per-instance patch (mypy forbids assigning to a method).
    quic._close_begin = close_begin_msquic  # type: ignore[method-assign]


def _answer_once(quic: QuicConnection) -> None:
    """The next datagrams_to_send writes one CONNECTION_CLOSE although draining (only
    then is the method wrapped: the usual transmit pays nothing for it)."""
    datagrams_to_send = quic.datagrams_to_send

    def datagrams_with_answer(now: float) -> list[tuple[bytes, Any]]:
        quic.datagrams_to_send = datagrams_to_send  # type: ignore[method-assign]
        if quic._state is not QuicConnectionState.DRAINING:
            return datagrams_to_send(now)
        # aioquic writes a close only from a live state: build the one answer as if live,
        # then put the draining period back as it was.
        peer_close, close_at = quic._close_event, quic._close_at
        quic._close_event = qe.ConnectionTerminated(error_code=0, frame_type=0, reason_phrase="")
        quic._state, quic._close_pending = QuicConnectionState.CONNECTED, True
        try:
            return datagrams_to_send(now)
        finally:
            quic._state, quic._close_event, quic._close_at = QuicConnectionState.DRAINING, peer_close, close_at

    quic.datagrams_to_send = datagrams_with_answer  # type: ignore[method-assign]


def take_reset_queued_first(quic: QuicConnection, stream_id: int) -> int | None:
    """aioquic writes STOP_SENDING before RESET_STREAM (MsQuic the other way round): when
    the next queued event is that stream's reset, take it and return its error code."""
    pending = quic._events
    if pending and type(pending[0]) is qe.StreamReset and pending[0].stream_id == stream_id:
        return cast(qe.StreamReset, pending.popleft()).error_code
    return None


# ---------------------------------------------------------------- streams and limits


def peer_stream_limits(quic: QuicConnection) -> tuple[int, int]:
    """How many bidirectional and unidirectional streams the peer lets us open."""
    return quic._remote_max_streams_bidi, quic._remote_max_streams_uni


def set_local_stream_limits(quic: QuicConnection, bidi: int, uni: int) -> None:
    """PeerBidiStreamCount / PeerUnidiStreamCount (aioquic has no setting for them).
    ``sent`` too: the transport parameters announce it and MAX_STREAMS is computed from it."""
    for limit, value in ((quic._local_max_streams_bidi, bidi), (quic._local_max_streams_uni, uni)):
        limit.value = limit.sent = value


def stream_would_block(quic: QuicConnection, unidirectional: bool) -> bool:
    next_id = quic.get_next_available_stream_id(is_unidirectional=unidirectional)
    limit = quic._remote_max_streams_uni if unidirectional else quic._remote_max_streams_bidi
    return next_id // 4 >= limit


def open_stream(quic: QuicConnection, unidirectional: bool) -> tuple[int, QuicStream]:
    """Allocate the next stream id and aioquic's state for it; the caller keeps its own
    reference (aioquic forgets finished streams on the next ``datagrams_to_send``)."""
    stream_id = quic.get_next_available_stream_id(is_unidirectional=unidirectional)
    quic.send_stream_data(stream_id, b"")
    return stream_id, quic._streams[stream_id]


def send_open_frame(stream: QuicStream) -> None:
    """StreamStart(IMMEDIATE): MsQuic opens the stream on the wire at once (an empty
    STREAM frame, QUIC_STREAM_SEND_FLAG_OPEN); aioquic writes no frame without data. Until
    the stream has data or a FIN of its own, its sender hands out one empty frame at
    offset 0 (acknowledged or lost, it changes nothing of the stream's bytes)."""
    sender = stream.sender
    get_frame = sender.get_frame

    def get_open_frame(max_size: int, max_offset: int | None = None) -> QuicStreamFrame | None:
        if len(sender._pending) or sender._pending_eof or sender._reset_error_code is not None:
            sender.get_frame = get_frame  # type: ignore[method-assign]
            return get_frame(max_size, max_offset)
        if max_size < 0:
            return None  # no room in this packet: the next one
        sender.get_frame = get_frame  # type: ignore[method-assign]
        return QuicStreamFrame(data=b"", offset=0)

    sender.get_frame = get_open_frame  # type: ignore[method-assign]
    sender.buffer_is_empty = False


def watch_peer_stream_opens(quic: QuicConnection, on_open: Callable[[int], None]) -> None:
    """Call ``on_open(stream_id)`` when a frame of the peer opens a new stream (and, as
    RFC 9000 has it, every lower-numbered stream of its type), whether or not the frame
    raises an event (an empty STREAM frame, a MAX_STREAM_DATA, a STOP_SENDING)."""
    get_or_create = quic._get_or_create_stream
    streams = quic._streams

    def get_or_create_noting(frame_type: int, stream_id: int) -> QuicStream:
        stream = streams.get(stream_id)
        if stream is not None:
            return stream  # the usual case: a stream already open
        stream = get_or_create(frame_type, stream_id)
        on_open(stream_id)
        return stream

    quic._get_or_create_stream = get_or_create_noting  # type: ignore[method-assign]


def quic_stream(quic: QuicConnection, stream_id: int) -> QuicStream | None:
    return quic._streams.get(stream_id)


def piggyback_ack(quic: QuicConnection) -> None:
    """Stream data was just written: let a pending 1-RTT ACK ride in the packet that
    carries it. MsQuic writes pending ACKs into every packet it sends; aioquic waits for
    its ACK delay, so a reply (a FIN, say) would reach the peer before the ACK of what it
    answers, and the peer would see the reply's events before its own completions."""
    space = quic._spaces.get(tls.Epoch.ONE_RTT)
    if space is not None and space.ack_at is not None:
        space.ack_at = 0.0  # due: the next packet built writes it


def congestion_control(quic: QuicConnection) -> Any:
    """The connection's congestion controller (made once, with the connection): its
    ``congestion_window`` is aioquic's stand-in for MsQuic's BytesInFlightMax. Read per
    datagram, so the core keeps the object rather than going through two properties."""
    return quic._loss._cc


# ---------------------------------------------------------------- the ACK path


def acked_offset(sender: QuicStreamSender) -> int:
    """The contiguous acknowledged prefix of the stream."""
    return sender._buffer_start


def fin_acked(sender: QuicStreamSender) -> bool:
    """The FIN was acknowledged (possibly before the data before it is contiguous)."""
    return sender._acked_fin


def sender_reset(sender: QuicStreamSender) -> bool:
    """The send side was reset (by us, or by aioquic itself on a peer STOP_SENDING)."""
    return sender._reset_error_code is not None


def hold_abort_frames(stream: QuicStream) -> bool:
    """aioquic writes RESET_STREAM and STOP_SENDING even for a stream the peer's
    MAX_STREAMS does not allow yet, and the peer then closes the connection with
    STREAM_LIMIT_ERROR (RFC 9000 section 4.6). While ``stream`` is blocked, keep them
    back (True: held; :func:`release_abort_frames` sends them once it is not)."""
    if not stream.is_blocked:
        return False
    stream.sender.reset_pending = False
    stream.receiver.stop_pending = False
    return True


def release_abort_frames(stream: QuicStream) -> bool:
    """Send the RESET_STREAM / STOP_SENDING held for a stream no longer blocked (False:
    still blocked, nothing released)."""
    if stream.is_blocked:
        return False
    stream.sender.reset_pending = stream.sender._reset_error_code is not None and not stream.sender.is_finished
    stream.receiver.stop_pending = stream.receiver._stop_error_code is not None
    return True


_on_data_delivery = QuicStreamSender.on_data_delivery
_on_reset_delivery = QuicStreamSender.on_reset_delivery


def _data_delivered(sender: QuicStreamSender, on_verdict: Callable[[bool], None], delivery: QuicDeliveryState,
                    start: int, stop: int, fin: bool) -> None:
    _on_data_delivery(sender, delivery, start, stop, fin)
    # Any STREAM frame lost counts: data, a FIN alone, or the empty opening frame.
    on_verdict(delivery is not ACKED)


def _reset_delivered(sender: QuicStreamSender, on_verdict: Callable[[bool], None],
                     delivery: QuicDeliveryState) -> None:
    _on_reset_delivery(sender, delivery)
    on_verdict(False)


def watch_deliveries(sender: QuicStreamSender, on_verdict: Callable[[bool], None]) -> None:
    """Call ``on_verdict(lost)`` after each delivery verdict on one of the stream's STREAM
    frames, and ``on_verdict(False)`` after one on its RESET_STREAM: ACKs reach a stream
    only through these callbacks, so the core marks the stream then and never scans idle
    streams."""
    # Per-instance patches of the two methods (mypy forbids assigning to a method), read by
    # aioquic per frame it writes: one partial each (C-level, no closure cells per stream).
    sender.on_data_delivery = functools.partial(_data_delivered, sender, on_verdict)  # type: ignore[method-assign]
    sender.on_reset_delivery = functools.partial(_reset_delivered, sender, on_verdict)  # type: ignore[method-assign]


def wrap_frame_handler(quic: QuicConnection, frame_type: int,
                       wrap: Callable[[Callable[..., None]], Callable[..., None]]) -> None:
    """Replace this connection's handler for ``frame_type`` with ``wrap(original)``."""
    handlers = quic._QuicConnection__frame_handlers  # type: ignore[attr-defined]
    handle, epochs = handlers[frame_type]
    handlers[frame_type] = (wrap(handle), epochs)


def watch_stream_limits(quic: QuicConnection, on_moved: Callable[[], None]) -> None:
    """Call ``on_moved()`` after each MAX_STREAMS frame (bidirectional or unidirectional):
    the peer's stream limits move only through those and the transport parameters."""
    def wrap(handle: Callable[..., None]) -> Callable[..., None]:
        def on_max_streams(context: Any, frame_type: int, buf: Any) -> None:
            handle(context, frame_type, buf)
            on_moved()
        return on_max_streams

    for frame_type in (QuicFrameType.MAX_STREAMS_BIDI, QuicFrameType.MAX_STREAMS_UNI):
        wrap_frame_handler(quic, frame_type, wrap)


# ---------------------------------------------------------------- datagrams


def replace_datagram_writer(quic: QuicConnection, write: Callable[[Any, bytes, Any], bool]) -> None:
    """aioquic keeps no per-datagram delivery state: its DATAGRAM frame writer is replaced
    (on this connection) by one that registers a delivery callback per frame."""
    # A per-instance patch: mypy forbids assigning to a method and checks the value
    # against the unbound signature (with ``self``), which no replacement can match.
    quic._write_datagram_frame = write  # type: ignore[method-assign, assignment]


def datagram_limits(quic: QuicConnection) -> tuple[int | None, int]:
    """(the peer's max_datagram_frame_size, or None when not negotiated; our packet size)."""
    return quic._remote_max_datagram_frame_size, quic._max_datagram_size


def quic_logger(quic: QuicConnection) -> Any:
    return quic._quic_logger


def packet_being_built(builder: Any) -> Any:
    """The packet a frame is being written into (its number and sent time)."""
    return builder._packet


def recovery(quic: QuicConnection) -> Any:
    """aioquic's loss recovery (its ACK and loss-timer entry points get wrapped)."""
    return quic._loss


def drop_pending_datagrams(quic: QuicConnection) -> None:
    """Nothing queued may be written any more."""
    quic._datagrams_pending.clear()


def watch_recovery(quic: QuicConnection, on_ack_received: Callable[..., None],
                   on_loss_detection_timeout: Callable[..., None]) -> tuple[Callable[..., None], Callable[..., None]]:
    """Route this connection's ACK and loss-timer entry points of aioquic's recovery
    through the two given callables (per instance: aioquic looks them up at each call);
    returns the originals, which the callables must call on."""
    loss = quic._loss
    originals = loss.on_ack_received, loss.on_loss_detection_timeout
    loss.on_ack_received = on_ack_received  # type: ignore[method-assign]
    loss.on_loss_detection_timeout = on_loss_detection_timeout  # type: ignore[method-assign]
    return originals


# ---------------------------------------------------------------- streams served in a repeatable order


class _StreamHashedById(QuicStream):
    """A QuicStream that hashes by its stream id: aioquic builds each packet's stream
    service order from a ``set`` of streams, which then repeats from run to run."""

    def __hash__(self) -> int:
        return cast(int, self.stream_id)


def _hash_by_id(stream: QuicStream) -> None:
    # Only a stream not hashed yet (just made by aioquic) may change class: a hash must
    # not change during an object's life.
    if type(stream) is QuicStream and stream.stream_id is not None:
        stream.__class__ = _StreamHashedById


def serve_streams_by_id(quic: QuicConnection) -> None:
    """Make every stream this connection creates from now on hash by stream id (per
    connection: no aioquic class is changed), so that seeded runs repeat byte for byte."""
    get_or_create = quic._get_or_create_stream
    get_or_create_for_send = quic._get_or_create_stream_for_send
    streams = quic._streams

    def get_or_create_by_id(frame_type: int, stream_id: int) -> QuicStream:
        if stream_id in streams:
            return streams[stream_id]
        stream = get_or_create(frame_type, stream_id)
        # the peer's frame may open lower-numbered streams of its type too
        lower = stream_id
        while lower >= 0 and type(streams.get(lower)) is QuicStream:
            _hash_by_id(streams[lower])
            lower -= 4
        return stream

    def get_or_create_for_send_by_id(stream_id: int) -> QuicStream:
        stream = get_or_create_for_send(stream_id)
        _hash_by_id(stream)
        return stream

    quic._get_or_create_stream = get_or_create_by_id  # type: ignore[method-assign]
    quic._get_or_create_stream_for_send = get_or_create_for_send_by_id  # type: ignore[method-assign]


# ---------------------------------------------------------------- the asyncio protocol (transport/udp.py)
#
# quicsim's connection driver is aioquic's QuicConnectionProtocol, trimmed: it reads the
# protocol's loop, transport and timer, and replaces its timer handler and event routing.
# ``protocol`` below is such a driver (typed Any: the core does not import asyncio).


def protocol_loop(protocol: Any) -> Any:
    """The event loop the protocol was made on."""
    return protocol._loop


def protocol_event_processor(protocol: Any) -> Callable[[], None]:
    """The protocol's own loop over aioquic's pending events (bound, to be kept)."""
    return cast(Callable[[], None], protocol._process_events)


def route_quic_events(protocol: Any, handle: Callable[[qe.QuicEvent], None]) -> None:
    """aioquic's event loop hands each event to ``handle`` instead of the protocol's
    stream readers and writers (which would fight the core)."""
    protocol.quic_event_received = handle


def replace_timer_handler(protocol: Any, handle: Callable[[], None]) -> None:
    """The protocol arms its timer with ``handle`` instead of its own handler (looked up
    per instance each time the timer is armed)."""
    protocol._handle_timer = handle


def take_timer(protocol: Any) -> float | None:
    """The timer fired: forget it (as aioquic's handler does first); returns its due time."""
    timer_at = protocol._timer_at
    protocol._timer = None
    protocol._timer_at = None
    return cast("float | None", timer_at)


def watch_loss_timeouts(on_timeout: Callable[[], None]) -> None:
    """Call ``on_timeout`` at every loss-detection timeout of every connection in this
    process from now on (the benchmarks count them: a timeout changes a run's work)."""
    from aioquic.quic.recovery import QuicPacketRecovery

    fire = QuicPacketRecovery.on_loss_detection_timeout

    def counted(self: QuicPacketRecovery, *args: Any, **kwargs: Any) -> Any:
        on_timeout()
        return fire(self, *args, **kwargs)

    QuicPacketRecovery.on_loss_detection_timeout = counted  # type: ignore[method-assign]


def protocol_quic(protocol: Any) -> QuicConnection:
    """The QuicConnection an aioquic QuicConnectionProtocol drives (the benchmarks' bare
    baseline sends on it directly)."""
    return cast(QuicConnection, protocol._quic)


def protocol_transport(protocol: Any) -> Any:
    """The datagram transport the protocol sends on (None before it is connected)."""
    return protocol._transport


def forget_transmit(protocol: Any) -> None:
    """No transmission is scheduled any more (the transport is closing)."""
    protocol._transmit_task = None


def stop_protocol(protocol: Any) -> None:
    """Cancel the protocol's timer and mark it closed (its ``wait_closed`` returns)."""
    if protocol._timer is not None:
        protocol._timer.cancel()
        protocol._timer = None
    protocol._closed.set()


def server_transport(server: Any) -> Any:
    """The listening transport of aioquic's QuicServer."""
    return server._transport


# ---------------------------------------------------------------- module globals (transport/seeded.py)


def swap_module_globals(replacements: list[tuple[str, str, Any]]) -> list[tuple[Any, str, Any]]:
    """Set ``module.name = value`` for each (aioquic module name, name, value); returns
    what :func:`restore_module_globals` needs to put the old values back."""
    saved: list[tuple[Any, str, Any]] = []
    for module_name, name, value in replacements:
        module = importlib.import_module(module_name)
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, value)
    return saved


def restore_module_globals(saved: list[tuple[Any, str, Any]]) -> None:
    """Undo :func:`swap_module_globals`, last swap first."""
    while saved:
        module, name, value = saved.pop()
        setattr(module, name, value)


# ---------------------------------------------------------------- timers


_EPOCH_NAMES = {tls.Epoch.INITIAL: "Initial", tls.Epoch.HANDSHAKE: "Handshake", tls.Epoch.ONE_RTT: "1-RTT"}


def timer_name(quic: QuicConnection, at: float) -> str:
    """Which of aioquic's timers is due at ``at`` (its ``get_timer()``): the name a hang
    report gives the timer that stopped the clock."""
    names = []
    if quic._close_at == at:
        names.append("idle timeout" if quic._state not in (QuicConnectionState.CLOSING, QuicConnectionState.DRAINING)
                     else "closing period")
    names += [f"ACK timer ({_EPOCH_NAMES.get(epoch, epoch)})" for epoch, space in quic._spaces.items()
              if space.ack_at == at]
    if quic._loss_at == at:
        names.append("loss detection timer")
    if quic._pacing_at == at:
        names.append("pacing timer")
    return " and ".join(names) or "path validation timer"


def timer_armed(protocol: Any) -> bool:
    """The protocol's timer is armed."""
    return protocol._timer is not None


def timer_due(protocol: Any) -> float | None:
    """When the protocol's timer is due (aioquic's ``get_timer()`` at the last transmit)."""
    return cast("float | None", protocol._timer_at)


def rearm_timer(protocol: Any, when: float) -> None:
    """Move the protocol's armed timer to ``when`` (its handler unchanged)."""
    protocol._timer.cancel()
    protocol._timer = protocol._loop.call_at(when, protocol._handle_timer)

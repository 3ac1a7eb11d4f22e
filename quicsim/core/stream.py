"""One MsQuic stream over one aioquic stream: the send, shutdown and completion rules.

Sans-I/O: no asyncio, no sockets, no clock. The connection core owns the operation
queue and calls the ``apply_*`` methods when its worker applies an operation; what the
application calls (checks, then queue or run inline) is in core/stream_api.py.
Branches name the MsQuic function whose rule they implement (``src/core/stream*.c``).
It is longer than most modules on purpose: every path that completes a send (flush,
shutdown, abort, close, ACK) and both inputs of QuicStreamTryCompleteShutdown stay in one
file, so the exactly-once argument can be read in one place.

The exactly-once invariant. An accepted send (StreamSend returned PENDING) is in exactly
one of these places until its SEND_COMPLETE, and leaves each only as said:

- ``sends.api_requests`` (MsQuic's ApiSendRequests): accepted, not yet seen by the worker.
  Left only by being taken, whole, into ``sends.taken`` (flush, shutdown, abort, close).
- ``sends.taken``: taken by the worker and being applied right now. Left by being queued
  into ``sends.requests`` (a flush) or by :meth:`StreamCore._complete` (a late send
  canceled, an abort, a close); every path that takes drains it, so a StreamClose from a
  completion raised in the middle of one drains the rest.
- ``sends.requests`` (SendRequests): queued at a stream offset. Left only by
  :meth:`StreamCore._complete`: on its ACK, when copied into the send buffer, or canceled
  by an abort or a close.

``_complete`` raises the one SEND_COMPLETE (delivered, or discarded if the handler is
already detached, which only a fault allows while a send is pending). Only faults take
another exit (through the stream's ``drop_send`` / ``forget_sends``, see quicsim.faults),
each counted as dropped, and one more place (``_deferred``: ``park_send`` holds a send
there until SHUTDOWN_COMPLETE). So per connection, at every moment the worker is idle:
accepted = completed + dropped + pending in those places. :meth:`ConnectionCore.check_exactly_once` checks it
after every operation, poll and close when ``QUICSIM_CHECK_INVARIANTS`` is set (the tests
and the fuzzer set it).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, cast

from .. import events as ev
from ..enums import (
    SendFlags,
    Status,
    StreamEventType,
    StreamOpenFlags,
    StreamShutdownFlags,
    StreamStartFlags,
)
from .. import faults as fl
from . import aioquic_adapter as aq
from . import rules, state
from .protocols import StreamConnection
from .state import StreamState
from .send_queue import Buffer, SendQueue, SendRequest
from .stream_api import StreamApi
from .stream_recv import StreamReceive

if TYPE_CHECKING:  # pragma: no cover
    from aioquic.quic.stream import QuicStream


StreamHandler = Callable[["StreamCore", ev.StreamEvent], Any]

_ABORT_SEND = StreamShutdownFlags.ABORT_SEND
_ABORT_RECEIVE = StreamShutdownFlags.ABORT_RECEIVE
_GRACEFUL = StreamShutdownFlags.GRACEFUL
_IMMEDIATE = StreamShutdownFlags.IMMEDIATE
_INLINE = StreamShutdownFlags.INLINE
_FIN = int(SendFlags.FIN)
_START = int(SendFlags.START)
_DELAY_SEND = int(SendFlags.DELAY_SEND)
_UNIDIRECTIONAL = int(StreamOpenFlags.UNIDIRECTIONAL)
_START_FAIL_BLOCKED = int(StreamStartFlags.FAIL_BLOCKED)
_START_SHUTDOWN_ON_FAIL = int(StreamStartFlags.SHUTDOWN_ON_FAIL)
_START_IMMEDIATE = int(StreamStartFlags.IMMEDIATE)
_START_INDICATE_PEER_ACCEPT = int(StreamStartFlags.INDICATE_PEER_ACCEPT)
_CANCEL_ON_LOSS = int(SendFlags.CANCEL_ON_LOSS)


class StreamCore(StreamApi):
    """A stream handle: what StreamOpen returns, with StreamStart/Send/Shutdown/Close."""

    def __init__(
        self,
        connection: StreamConnection,
        flags: StreamOpenFlags = StreamOpenFlags.NONE,
        handler: StreamHandler | None = None,
        context: Any = None,
        *,
        peer_stream_id: int | None = None,
    ) -> None:
        self.connection = connection
        #: the connection's event delivery (indicate rules, observers, handler call)
        self.delivery = connection.delivery
        #: the connection's exactly-once book, counted into per send
        self.counts = connection.send_counts
        self.open_flags = rules.flag_member(StreamOpenFlags, int(flags))
        self.handler = handler
        self.context = context
        #: what handlers receive as the stream: the API handle wrapping this core
        #: (the core itself when used bare)
        self.owner: Any = self
        #: called with every event delivered, after the handler (the API's waiters)
        self.event_hook: Callable[[ev.StreamEvent], None] | None = None
        #: the connection-local handle number (stream ids exist only once started)
        self.handle = connection.next_handle()
        self.id: int | None = peer_stream_id
        self.is_local = peer_stream_id is None
        if self.is_local:
            self.unidirectional = bool(int(flags) & _UNIDIRECTIONAL)
        else:
            assert peer_stream_id is not None  # a peer's stream: is_local is False
            self.unidirectional = bool(peer_stream_id & 2)
        #: our own reference (aioquic forgets finished streams), set when the stream starts
        self.quic_stream: QuicStream | None = None
        self.sends = SendQueue()
        #: the receive path: what the peer sent, held until the application takes it
        self.recv = StreamReceive(self)
        self.send_error_code = 0
        #: the send side has a direction at all (a peer's unidirectional stream has none)
        self.has_send_side = self.is_local or not self.unidirectional
        #: MsQuic's QUIC_STREAM_FLAGS, all in one place (see core/state.py)
        self.state = StreamState(started=not self.is_local, has_send_side=self.has_send_side,
                                 has_receive_side=not (self.is_local and self.unidirectional))
        self._fin_written = False
        #: sends a fault parked until SHUTDOWN_COMPLETE (a list once one is; empty tuple:
        #: none, and no container allocated per stream for the usual case)
        self._deferred: list[SendRequest] | tuple[()] = ()
        #: the last flush queued only DELAY_SEND data: the connection need not flush for it
        self.flush_delayed = False
        #: CANCEL_ON_LOSS was used on this stream; data of it was reported lost
        self._cancel_on_loss = False
        self.data_lost = False
        #: (end offset, length) of sends completed into the send buffer, awaiting their ACK
        #: (made at the first such send: without send buffering it stays an empty tuple)
        self._buffered: deque[tuple[int, int]] | tuple[()] = ()

    # Read-only views of the state others ask about (the state itself is in self.state).
    started = state.view("started")
    send_enabled = state.view("send_enabled")
    send_shutdown_indicated = state.view("local_close_acked",
                                         "SEND_SHUTDOWN_COMPLETE was raised (or there is no send direction)")
    shutdown_complete = state.view("shutdown_complete")
    handle_closed = state.view("handle_closed")

    @property
    def core(self) -> "StreamCore":
        """This core; the API handle has the same attribute, so an observer handed either
        (``event.stream`` of PEER_STREAM_STARTED is the handle) reaches the core."""
        return self

    def __repr__(self) -> str:
        return (
            f"<Stream {self.connection.label} handle={self.handle} id={self.id} "
            f"{'started' if self.state.started else 'unstarted'}>"
        )

    def set_handler(self, handler: StreamHandler | None, context: Any = None) -> None:
        """SetCallbackHandler: route this stream's events to ``handler``."""
        self.handler = handler
        if context is not None:
            self.context = context

    def pending_sends(self) -> int:
        """Accepted sends of this stream still waiting for their SEND_COMPLETE."""
        return self.sends.pending_count() + len(self._deferred)

    # ---------------------------------------------------------- what a fault may do (faults.FaultTarget)

    def complete_send(self, request: SendRequest, canceled: bool) -> None:
        self._complete(request, canceled)

    def drop_send(self, request: SendRequest) -> None:
        self.counts.dropped += 1

    def on_delivery_verdict(self, lost: bool) -> None:
        """aioquic's verdict on one of this stream's frames (core/aioquic_adapter.watch_deliveries):
        the stream is marked for the poll's completions; a lost one counts for CANCEL_ON_LOSS."""
        if lost:
            self.data_lost = True
        self.connection.dirty[self] = None  # poll swaps the dict: look it up each time

    def park_send(self, request: SendRequest) -> None:
        if isinstance(self._deferred, tuple):
            self._deferred = []
        self._deferred.append(request)

    def detach_handler(self) -> None:
        self.state.move("close_handle")

    def strand_taken(self) -> int:
        return self.sends.strand_taken()

    def forget_sends(self) -> int:
        dropped = self.sends.forget_all()
        self.counts.dropped += dropped
        return dropped

    def send_name(self, request: SendRequest) -> str:
        return f"{self.connection.label}:{request.send_id}"

    def fault_hit(self, fault: str, what: str) -> None:
        self.delivery.fault_hit(fault, self, what)

    # ---------------------------------------------------------- worker operations

    def apply_start(self, flags: StreamStartFlags) -> None:
        """QuicStreamStart, as the worker applies it."""
        conn = self.connection
        if self.state.started or self.state.shutdown_complete:
            return  # already started (or shut down): INVALID_STATE internally, no event
        iflags = int(flags)  # int tests: an IntFlag's & builds a new member each time
        failure = state.status(state.START_APPLY_STATUS, conn.state)
        if failure is None and iflags & _START_FAIL_BLOCKED and conn.stream_would_block(self.unidirectional):
            failure = Status.STREAM_LIMIT_REACHED
        if failure is not None:
            if not self.state.start_indicated:
                self._indicate_start_complete(failure)
            if iflags & _START_SHUTDOWN_ON_FAIL:
                # QuicStreamShutdown(ABORT | IMMEDIATE): cancel, then both completions now.
                self.apply_shutdown(StreamShutdownFlags.ABORT | _IMMEDIATE, 0)
            return
        quic_stream = conn.create_quic_stream(self)
        self.state.move("start")
        if iflags & _START_IMMEDIATE and not self.sends.requests:
            aq.send_open_frame(quic_stream)  # QUIC_STREAM_SEND_FLAG_OPEN: on the wire at once
        # Sends queued before the start are written now, before START_COMPLETE, so a
        # send made inline from that callback lands after them.
        if self.sends.requests:
            self._write(self.sends.requests)
        if self.state.local_close_fin and not self._fin_written:
            self._write_fin()
        if self.state.local_close_reset:
            quic_stream.sender.reset(self.send_error_code)
            self.connection.abort_frames_queued(self)
        if not self.state.start_indicated:  # START_COMPLETE fires once, even after a failed try
            self._indicate_start_complete(Status.SUCCESS, peer_accepted=not quic_stream.is_blocked)
        if quic_stream.is_blocked and iflags & _START_INDICATE_PEER_ACCEPT:
            conn.await_peer_accept(self)  # PEER_ACCEPTED once the peer's limit allows it
        if conn.settings.send_buffering:
            # QuicStreamStart queues the stream for sending but fills no buffer: its sends
            # are buffered at the next fill (another flush, an acknowledged send).
            self.join_buffer_queue()
        conn.mark_dirty(self)

    def apply_send_flush(self) -> None:
        """QuicStreamSendFlush: move accepted sends onto the stream, or cancel late ones."""
        conn = self.connection
        taken = self.sends.take_api_requests(conn.lock)
        state = self.state
        queue = self.sends.queue
        start = False
        delayed = True
        send_buffer = conn.send_buffer if conn.settings.send_buffering else None
        #: requests queued by this flush that observers have not been told of and aioquic
        #: has not been given: both happen in one go, before anything that can call back
        #: into the application (which could complete one of them)
        batch: list[SendRequest] = []
        while taken:
            request = taken.popleft()
            if not state.send_enabled:
                # Accepted before, applied after the send side was shut down (a queued FIN
                # send or shutdown took effect first): canceled now, MsQuic rule 5's exception.
                if batch:
                    self._queued(batch)
                    batch = []
                self._cancel_late(request)
                continue
            queue(request)
            batch.append(request)
            flags = request.flags
            if flags & _CANCEL_ON_LOSS:
                self._cancel_on_loss = True
            # DELAY_SEND (QuicSendQueueFlushForStream): the data joins the stream either way;
            # the flag only spares the connection a flush, so the next one for any reason
            # (another send, an ACK, a timer) writes it.
            if not flags & _DELAY_SEND or request.fin:
                delayed = False
            elif self.delivery.probing:
                self.delivery.probe(self, "delay-send-held")
            if not state.started and flags & _START:
                start = True  # SendFlags.START starts the stream after the flush
            if request.fin:
                self._queued(batch)
                batch = []
                self._send_shutdown_graceful()
            if send_buffer is not None and send_buffer.has_space():
                # QuicStreamSendFlush fills the send buffer after each request, inside its
                # loop: a request completes on copy before the next one is looked at.
                if state.started:
                    if batch:
                        self._queued(batch)
                        batch = []
                    self.join_buffer_queue()
                send_buffer.fill()  # connection-wide (QuicSendBufferFill walks every stream)
        if batch:
            self._queued(batch)
        self.flush_delayed = delayed and not start
        if start and not self.state.handle_closed:
            # QuicStreamSendFlush: QuicStreamStart(IMMEDIATE | SHUTDOWN_ON_FAIL) after the
            # loop (a failed implicit start shuts the stream down at once); a handler may
            # have closed the stream from a completion raised inside it.
            self.apply_start(StreamStartFlags.IMMEDIATE | StreamStartFlags.SHUTDOWN_ON_FAIL)
        if self.state.started:
            if send_buffer is not None:
                self.join_buffer_queue()
            if not self.flush_delayed:
                self.connection.mark_dirty(self)

    def apply_shutdown(self, flags: StreamShutdownFlags, error_code: int,
                        app_close_in_progress: bool = False) -> None:
        """QuicStreamShutdown."""
        if self.state.shutdown_complete:
            return
        if flags & _ABORT_SEND:
            self._send_shutdown_abort(error_code)
        elif flags & _GRACEFUL:
            self._send_shutdown_graceful()
        if flags & _ABORT_RECEIVE:
            self.recv.shutdown_abort(error_code)
        if flags & _IMMEDIATE:
            # IMMEDIATE: indicate completion now instead of waiting for the peer's ACKs;
            # QuicStreamShutdown does this for a never-started stream too.
            self._indicate_send_shutdown_complete(graceful=False, force=True, silent=True)
            self.try_complete_shutdown(force=True, app_close_in_progress=app_close_in_progress)
        else:
            self.try_complete_shutdown(app_close_in_progress=app_close_in_progress)
        if self.state.started:
            self.connection.mark_dirty(self)

    # ---------------------------------------------------------- send-side rules

    def _queued(self, batch: list[SendRequest]) -> None:
        """Tell observers of a flush's newly queued requests, then write them if started."""
        conn = self.connection
        if self.delivery.observers:
            queued = [(r.send_id, r.offset, r.end, r.fin) for r in batch]
            observers = self.delivery.observers
            try:
                for observer in observers:
                    observer.sends_queued(conn, self, queued)
            except Exception as exc:
                self.delivery.observer_failed(observer, exc, "sends_queued", (conn, self, queued))
        if self.state.started:
            self._write(batch)

    def _write(self, requests: Iterable[SendRequest]) -> None:
        """Hand queued requests' bytes (and a FIN, which only the last can carry) to aioquic
        in one write: the stream's bytes are the same, and aioquic's per-write work (a
        range added to its pending set) is paid once per flush instead of once per send."""
        assert self.quic_stream is not None  # only a started stream writes
        sender = self.quic_stream.sender
        if aq.sender_reset(sender):
            # aioquic resets the sender itself on a peer STOP_SENDING, before we see the
            # event: from then on nothing may be written (the event cancels the sends).
            return
        parts: list[Buffer] = []
        fin = False
        for request in requests:
            bufs = request.buffers
            assert bufs is not None  # a request is written once: only here are its buffers dropped
            request.buffers = None  # aioquic copies them; MsQuic would still hold them
            parts.extend(bufs)
            fin = request.fin
        # aioquic annotates write's data as bytes but only takes its len() and appends it to
        # a bytearray: any contiguous byte buffer works (ignored below: arg-type).
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if data or fin:
            sender.write(data, fin)  # type: ignore[arg-type]
            aq.piggyback_ack(self.connection.quic)
        if fin:
            self._fin_written = True

    def _write_fin(self) -> None:
        assert self.quic_stream is not None  # only a started stream writes
        if not aq.sender_reset(self.quic_stream.sender):
            self.quic_stream.sender.write(b"", True)
            aq.piggyback_ack(self.connection.quic)
        self._fin_written = True

    def _send_shutdown_graceful(self) -> None:
        """QuicStreamSendShutdown(Graceful)."""
        if self.state.local_close_acked:
            return  # LocalCloseAcked: "nothing else to be done"
        with self.connection.lock:
            self.state.move_send("disable")  # SendEnabled = FALSE, under ApiSendRequestLock
            late = self.sends.detach_api_requests(self.connection.lock)
        if late and self.delivery.probing:
            self.delivery.probe(self, "graceful-shutdown-cancels-batch")
        taken = self.sends.taken
        while late and taken:
            # "These sends were queued by the app after queueing a graceful shutdown."
            # Only those it detached: a flush this runs inside (a FIN send, or an INLINE
            # shutdown from one of its completions) cancels the rest of its own batch.
            late -= 1
            self._cancel_late(taken.popleft())
        # (a no-op row when the FIN or a reset was already recorded)
        if self.state.move_send("graceful") and self.state.started and not self._fin_written:
            self._write_fin()

    def _send_shutdown_abort(self, error_code: int, *, silent: bool = False) -> None:
        """QuicStreamSendShutdown(!Graceful): cancel every send, oldest first, then reset."""
        if self.state.local_close_acked:
            return  # LocalCloseAcked: "nothing else to be done"
        with self.connection.lock:
            self.state.move_send("disable")  # SendEnabled = FALSE, under ApiSendRequestLock
            api_requests = self.sends.take_api_requests(self.connection.lock)
        # Record the reset (and its code) before any callback can run (a no-op row when a
        # reset was already recorded).
        if self.state.move_send("abort"):
            self.send_error_code = error_code
            if self.state.started and not silent:
                assert self.quic_stream is not None  # a started stream has its aioquic stream
                self.quic_stream.sender.reset(error_code)
                self.connection.abort_frames_queued(self)
        self._release_buffered()
        requests = self.sends.requests
        seams = self.connection.seams
        if seams is fl.CORRECT:
            while requests:
                self._complete(requests.popleft(), canceled=True)
            while api_requests:
                self._complete(api_requests.popleft(), canceled=True)
        else:
            while requests:
                seams.cancel_send(self, requests.popleft(), fl.ABORT)
            while api_requests:
                seams.cancel_send(self, api_requests.popleft(), fl.ABORT_UNFLUSHED)
        if silent and self.state.started:
            self._indicate_send_shutdown_complete(graceful=False, silent=True)

    def join_buffer_queue(self) -> None:
        """With send buffering on: this started stream's unbuffered sends wait for room in
        the send buffer (MsQuic: the stream is in the connection's SendStreams, which
        QuicSendBufferFill walks); the next fill, for whatever reason, buffers them."""
        if self.sends.requests and not self.state.local_close_reset:
            self.connection.send_buffer.wait(self)

    def buffer_next_send(self) -> bool:
        """QuicStreamSendBufferRequest: copy the oldest unbuffered send into the buffer and
        complete it now. False when this stream has nothing (more) to buffer."""
        requests = self.sends.requests
        if not requests or not self.state.started or self.state.local_close_reset:
            return False
        request = requests.popleft()
        if isinstance(self._buffered, tuple):
            self._buffered = deque()
        self._buffered.append((request.end, request.length))
        self.connection.send_buffer.hold(request.length)
        self._complete(request, canceled=False)
        return True

    def _release_buffered(self) -> None:
        """An aborted stream's buffered bytes will never be acknowledged: free them."""
        if self._buffered:
            send_buffer = self.connection.send_buffer
            while self._buffered:
                assert isinstance(self._buffered, deque)  # made by the first buffered send
                send_buffer.release(self._buffered.popleft()[1])
            send_buffer.fill()

    def _complete(self, request: SendRequest, canceled: bool) -> None:
        """QuicStreamCompleteSendRequest: the one SEND_COMPLETE of ``request``."""
        if canceled and request.flags & _START and not self.state.start_indicated and self.is_local:
            # A canceled send that was to start the stream first tells the start failed.
            if self.delivery.probing:
                self.delivery.probe(self, "start-send-start-complete-aborted")
            # Until its own SEND_COMPLETE the request is still pending: a StreamClose from
            # the START_COMPLETE handler must find it (and complete it) like any other.
            taken = self.sends.taken
            taken.appendleft(request)
            self._indicate_start_complete(Status.ABORTED)
            if not taken or taken[0] is not request:
                return  # that close completed it
            taken.popleft()
        self.counts.completed += 1
        self.delivery.stream_event(self, ev.send_complete(canceled, request.client_context, request.send_id))

    def _cancel_late(self, request: SendRequest) -> None:
        """Accepted before the send side's shutdown, applied after: canceled (a seam)."""
        self.connection.seams.cancel_send(self, request, fl.LATE)

    def on_acks(self) -> None:
        """The ACK path: complete acknowledged sends (head of the queue only), then
        SEND_SHUTDOWN_COMPLETE once the FIN or the reset is acknowledged."""
        assert self.quic_stream is not None  # ACKs reach only a registered (started) stream
        sender = self.quic_stream.sender
        acked = aq.acked_offset(sender)
        # After a peer STOP_SENDING aioquic stops moving the acknowledged prefix, so it is
        # still exactly what was acknowledged before it: gate on our own reset only.
        refill = False
        if self.sends.requests and not self.state.local_close_reset:
            for request in self.sends.pop_acknowledged(acked, aq.fin_acked(sender)):
                self._complete(request, canceled=False)
                refill = True
        buffered = self._buffered
        if buffered and buffered[0][0] <= acked:
            assert isinstance(buffered, deque)  # made by the first buffered send
            send_buffer = self.connection.send_buffer
            while buffered and buffered[0][0] <= acked:
                send_buffer.release(buffered.popleft()[1])
            refill = True
        if refill and self.connection.settings.send_buffering:
            # Acknowledged bytes left the buffer, or a send posted before it had room was
            # acknowledged (QuicStreamCompleteSendRequest, PreviouslyPosted): fill again.
            self.connection.send_buffer.fill()
        if self.data_lost:
            # After the ACKs (MsQuic handles the ACK before it detects the loss), so sends
            # already acknowledged completed normally.
            self.data_lost = False
            if self._cancel_on_loss and not self.state.local_close_reset and not self.state.local_close_acked:
                self._on_cancel_on_loss()
                return
        if (not self.state.local_close_acked and sender.is_finished
                and (self.state.local_close_fin or self.state.local_close_reset)):
            self._indicate_send_shutdown_complete(graceful=not aq.sender_reset(sender))
            self.try_complete_shutdown()

    def _on_cancel_on_loss(self) -> None:
        """QuicStreamOnLoss: a frame of a CANCEL_ON_LOSS stream was lost (data, the FIN or
        the opening frame): CANCEL_ON_LOSS (the handler may set the error code), then
        QuicStreamShutdown(ABORT, code), both directions, so the peer sees
        PEER_SEND_ABORTED and PEER_RECEIVE_ABORTED."""
        event = ev.CancelOnLoss(error_code=0)
        # Delivered like any stream event; not a StreamEvent subclass only as it is mutable.
        self.indicate(cast(ev.StreamEvent, event))
        self.apply_shutdown(StreamShutdownFlags.ABORT, event.error_code)

    def _indicate_send_shutdown_complete(self, graceful: bool, force: bool = False, silent: bool = False) -> None:
        """SEND_SHUTDOWN_COMPLETE once the FIN or reset is acknowledged, or at once for a
        silent or IMMEDIATE abort (QuicStreamIndicateSendShutdownComplete)."""
        if self.state.local_close_acked or not (force or self.state.started or self.state.start_indicated):
            return
        self.state.move_send("silent" if silent else "acked")
        self.indicate(ev.SendShutdownComplete(graceful=graceful))

    # ---------------------------------------------------------- receive side

    @property
    def recv_offset(self) -> int:
        """Bytes of the stream taken in from the peer (taken by the application or held)."""
        return self.recv.base_offset + self.recv.held

    def on_stop_sending(self, error_code: int) -> None:
        """QuicStreamProcessStopSendingFrame: PEER_RECEIVE_ABORTED, then abort the send side."""
        # ACKs that came in the same datagram, before the STOP_SENDING, complete first.
        self.on_acks()
        if self.state.send_direction() in ("reset", "closed"):
            return  # already aborted (or over): nothing left to cancel
        self.state.move("receive_stop_sending")
        self.indicate(ev.PeerReceiveAborted(error_code=error_code))
        self._send_shutdown_abort(error_code)
        self.connection.mark_dirty(self)

    # ---------------------------------------------------------- shutdown and delivery

    def abort_for_connection(self) -> None:
        """The connection closed: abort silently, then SHUTDOWN_COMPLETE(connection_shutdown)."""
        if not self.state.started or self.state.shutdown_complete:
            return
        self._send_shutdown_abort(0, silent=True)
        if self.state.move_receive("end"):
            self.recv.stop()
        self.try_complete_shutdown(force=True)

    def try_complete_shutdown(self, force: bool = False, **fields: Any) -> None:
        """QuicStreamTryCompleteShutdown: SHUTDOWN_COMPLETE once both directions are done."""
        if self.state.shutdown_complete or not (force or self.state.started or self.state.start_indicated):
            return
        if not force and not (self.state.local_close_acked and self.state.remote_closed):
            return
        gone = self.state.handle_closed
        # MsQuic sets HandleShutdown before indicating: a handler that closes the stream
        # from this very event must find it already shut down.
        self.state.move("complete_shutdown")
        self.connection.stream_done(self)
        # QuicStreamIndicateShutdownComplete reads the connection's close state now.
        event = ev.ShutdownComplete(**self.connection.shutdown_fields(), **fields)
        if gone:
            self.delivery.discarded(self, event)
        else:
            self.delivery.dispatch_stream(self, event)
        deferred, self._deferred = self._deferred, ()
        for request in deferred:
            self._complete(request, canceled=True)  # fault: arrives after SHUTDOWN_COMPLETE

    def _indicate_start_complete(self, status: Status, peer_accepted: bool = False) -> None:
        """QuicStreamIndicateStartComplete: START_COMPLETE once per stream, a failure too
        (judged by the phase the stream was in when it started or failed to)."""
        phase = self.state.phase()
        self.state.move("indicate_start")
        self.delivery.stream_event_in(self, phase, ev.StartComplete(status=status, id=self.id if status is Status.SUCCESS else None,
                                                  peer_accepted=peer_accepted))

    def indicate(self, event: ev.StreamEvent) -> Any:
        """QuicStreamIndicateEvent (see EventDelivery.stream_event); returns what the
        handler returned."""
        return self.delivery.stream_event(self, event)

    def default_peer_handler(self, event: ev.StreamEvent) -> None:
        """A peer stream nobody handles: consume everything, and once the peer is done
        sending (FIN or reset) finish our side gracefully so both directions can close.
        A peer STOP_SENDING still aborts our side, as MsQuic does on its own."""
        t = event.type
        if t is StreamEventType.PEER_SEND_SHUTDOWN or t is StreamEventType.PEER_SEND_ABORTED:
            self.delivery.call_handler(_graceful_inline, self, event)


def _graceful_inline(stream: StreamCore, event: ev.StreamEvent) -> None:
    stream.shutdown(_GRACEFUL | _INLINE)

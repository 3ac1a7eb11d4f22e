"""One MsQuic connection over one aioquic ``QuicConnection``: the operation queue
("worker"), aioquic events turned into MsQuic events, and connection shutdown.

Sans-I/O like aioquic: a driver feeds it aioquic events (:meth:`handle_quic_event`),
calls :meth:`poll` after every ``receive_datagram``/``handle_timer`` (that is when ACKs
are processed), runs :meth:`process_operations` when :attr:`wakeup` asks for it, and
sends whatever aioquic then has to send.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any, Callable, cast

from aioquic.quic import events as qe
from aioquic.quic.connection import QuicConnection
from aioquic.quic.stream import QuicStream

from ..errors import QuicsimError
from .. import events as ev
from ..enums import ConnectionShutdownFlags, MAX_VARINT, Status, StreamOpenFlags
from ..faults import seams_for
from ..settings import Settings
from . import aioquic_adapter as aq
from . import rules, state
from .rules import QUIC_ERROR_INTERNAL_ERROR, error_code_to_status
from .state import ConnectionState
from . import operations as ops
from .datagram import DatagramSender
from .delivery import EventDelivery
from .operations import OperationQueue
from .protocols import SendCounts
from .send_buffer import SendBuffer
from .stream_limits import StreamLimits
from .stream import StreamCore

ConnectionHandler = Callable[["ConnectionCore", ev.ConnectionEvent], Any]


class StatusError(QuicsimError):
    """A call that returns a handle in MsQuic (StreamOpen) failed with ``status``."""

    def __init__(self, status: Status, message: str = "") -> None:
        super().__init__(message or f"{status.name} ({int(status)})")
        self.status = status


class ConnectionCore:
    """A connection handle: StreamOpen, ConnectionShutdown, and the worker behind them."""

    def __init__(
        self,
        quic: QuicConnection,
        *,
        settings: Settings | None = None,
        handler: ConnectionHandler | None = None,
        context: Any = None,
        observers: list[Any] | tuple[Any, ...] = (),
        label: str = "",
    ) -> None:
        self.quic = quic
        self.is_client = aq.is_client(quic)
        self.settings = settings or Settings()
        #: the seams where MsQuic could lose a completion, with this connection's faults
        self.seams = seams_for(self.settings.faults)
        self.handler = handler
        self.context = context
        #: event delivery: the indicate rules, the observers, the handler call (core/delivery.py)
        self.delivery = EventDelivery(self, observers)
        self.probing = self.delivery.probing
        self.label = label or ("client" if self.is_client else "server")
        #: what handlers receive as the connection: the API handle wrapping this core
        #: (the core itself when used bare)
        self.owner: Any = self
        #: called with every event delivered, after the handler (the API's waiters)
        self.event_hook: Callable[[ev.ConnectionEvent], None] | None = None
        #: makes the API handle of each new stream (opened or the peer's); None: bare core
        self.wrap_stream: Callable[[StreamCore], Any] | None = None
        #: called (no arguments) when operations are queued or data waits to be sent
        self.wakeup: Callable[[], None] | None = None
        #: guards what API calls from any thread share with the worker: the operation
        #: queue, each stream's accepted sends and its SendEnabled flag
        self.lock = threading.RLock()
        #: the thread the worker (the event loop) runs on; None: whoever calls (sans-I/O)
        self.worker_thread: int | None = None
        #: how to run a callable on the worker and wait for it (set by the driver)
        self.call_on_worker: Callable[[Callable[[], Any]], None] | None = None
        self.ops = OperationQueue()
        #: the last worker pass applied only DELAY_SEND flushes: the driver need not send now
        self.flush_delayed = False
        self._peer_streams_seen: set[int] = set()  # a peer stream is indicated once, ever
        self.streams: dict[int, StreamCore] = {}  # started and peer streams, by stream id
        self.unstarted: dict[StreamCore, None] = {}  # opened, not (yet) started
        self.dirty: dict[StreamCore, None] = {}  # streams that saw ACKs or losses
        #: ``next(send_ids)``: the connection's send ids, 1, 2, ... (a C-level counter: per send)
        self.send_ids = itertools.count(1)
        #: the exactly-once bookkeeping (see core/stream.py): accepted = completed +
        #: dropped (by faults) + pending, checked after every operation when asked
        self.send_counts = SendCounts()
        self.check_invariants = bool(os.environ.get("QUICSIM_CHECK_INVARIANTS"))
        #: broken core rules found by :meth:`check_exactly_once` (a quicsim bug if any)
        self.state_errors: list[str] = []
        self._handles = 0
        self.negotiated_alpn: str | None = None
        #: MsQuic's connection state flags, all in one place (see core/state.py)
        self.state = ConnectionState()
        self.close_error_code = 0
        self.close_status = Status.SUCCESS
        #: what handlers raised, and the faults that changed what happened (the delivery's)
        self.handler_errors = self.delivery.handler_errors
        self.fault_hits = self.delivery.fault_hits
        self.send_buffer = SendBuffer()
        #: both sides' stream limits (core/stream_limits.py)
        self.limits = StreamLimits(self)
        aq.close_as_msquic(quic)
        #: ids of streams the peer's frames opened since the last look (see receive_datagram)
        self._opened_by_peer: list[int] = []
        #: per stream type (id & 3): the next peer stream id not yet indicated
        self._peer_next: dict[int, int] = {}
        aq.watch_peer_stream_opens(quic, self._opened_by_peer.append)
        self.datagrams = DatagramSender(self)

    def __repr__(self) -> str:
        return f"<Connection {self.label}>"

    # Read-only views of the state others ask about (the state itself is in self.state).
    connected = state.view("connected")
    shutdown_initiated = state.view("shutdown_initiated")
    closed_locally = state.view("closed_locally")
    closed_remotely = state.view("closed_remotely")
    shutdown_complete = state.view("shutdown_complete")
    handle_closed = state.view("handle_closed")

    def set_handler(self, handler: ConnectionHandler | None, context: Any = None) -> None:
        """SetCallbackHandler for the connection."""
        self.handler = handler
        if context is not None:
            self.context = context

    # ------------------------------------------------------------------ API calls

    def open_stream(
        self,
        flags: StreamOpenFlags = StreamOpenFlags.NONE,
        handler: Callable[..., Any] | None = None,
        context: Any = None,
    ) -> StreamCore:
        """StreamOpen. Raises :class:`StatusError` where MsQuic returns a failure."""
        iflags = rules.flag_value(flags, StreamOpenFlags)
        status = state.status(state.OPEN_STATUS, self.state)
        if status is None and not rules.flags_ok(iflags, rules.all_flags(StreamOpenFlags)):
            status = Status.INVALID_PARAMETER
        if status is not None:
            self.delivery.api_call(None, "open_stream", status, flags=int(flags) if isinstance(flags, int) else flags)
            raise StatusError(status, f"StreamOpen failed: {status.name}")
        stream = self._new_stream(rules.flag_member(StreamOpenFlags, iflags), handler, context)
        self.unstarted[stream] = None
        self.delivery.api_call(stream, "open_stream", Status.SUCCESS, flags=int(flags))
        return stream

    def shutdown(self, flags: ConnectionShutdownFlags = ConnectionShutdownFlags.NONE,
                 error_code: int = 0) -> Status:
        """ConnectionShutdown: queued ahead of every operation already queued."""
        iflags = rules.flag_value(flags, ConnectionShutdownFlags)
        if (not isinstance(error_code, int) or not 0 <= error_code <= MAX_VARINT
                or not rules.flags_ok(iflags, rules.all_flags(ConnectionShutdownFlags))):
            status = Status.INVALID_PARAMETER
        else:
            self.queue_operation(ops.ConnectionShutdown(self, ConnectionShutdownFlags(iflags), error_code))
            status = Status.PENDING
        self.delivery.api_call(None, "connection_shutdown", status, flags=flags, error_code=error_code)
        return status

    def send_datagram(self, data: Any, client_context: Any = None) -> Status:
        """ConnectionSendDatagram: PENDING, then DATAGRAM_SEND_STATE_CHANGED events ending in
        exactly one of ACKNOWLEDGED, ACKNOWLEDGED_SPURIOUS, LOST_DISCARDED or CANCELED
        (see core/datagram.py). INVALID_STATE unless the peer enabled receiving
        datagrams; INVALID_PARAMETER if it cannot fit a packet."""
        with self.lock:
            status, payload = self.datagrams.check(data)
            if status is not None:
                self.delivery.api_call(None, "send_datagram", status, datagram_id=None, bytes=len(payload),
                                   client_context=client_context)
                return status
            request = self.datagrams.new_request(payload, client_context)
            # Observed before aioquic can send it, so its states never precede its call.
            self.delivery.api_call(None, "send_datagram", Status.PENDING, datagram_id=request.datagram_id,
                               bytes=len(payload), client_context=client_context)
            self.datagrams.enqueue(request)
        if self.wakeup is not None:
            self.wakeup()
        return Status.PENDING

    # ------------------------------------------------------------------ the worker

    def attach_worker(self, wakeup: Callable[[], None], worker_thread: int,
                      call_on_worker: Callable[[Callable[[], Any]], None]) -> None:
        """A driver runs the worker: ``wakeup()`` when operations are queued, on the thread
        ``worker_thread``; ``call_on_worker(fn)`` runs fn there and waits."""
        self.wakeup = wakeup
        self.worker_thread = worker_thread
        self.call_on_worker = call_on_worker

    def on_worker_thread(self) -> bool:
        return self.worker_thread is None or threading.get_ident() == self.worker_thread

    def inline(self) -> bool:
        """Called from inside one of this connection's callbacks, on its worker thread:
        where MsQuic runs StreamSend (and INLINE shutdowns) inline."""
        return bool(self.delivery.depth) and self.on_worker_thread()

    def run_on_worker(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the worker and wait for it (MsQuic's blocking calls)."""
        if self.on_worker_thread() or self.call_on_worker is None:
            fn()
        else:
            self.call_on_worker(fn)

    def queue_operation(self, op: ops.Operation, priority: bool = False) -> None:
        """QuicConnQueueOper: hand ``op`` to the worker and wake it."""
        with self.lock:
            if self.delivery.probing and self.ops and (priority or op.kind == "conn_shutdown"):
                self.delivery.probe(op.stream, "queued-ahead-of-work")
            self.ops.push(op, priority)
        if self.wakeup is not None:
            self.wakeup()

    def process_operations(self) -> None:
        """Apply queued operations in order (the worker's operation loop)."""
        queue = self.ops
        lock = self.lock
        delayed_only = None
        while queue:
            with lock:
                op = queue.pop()
            if op is None:
                break
            stream = op.stream
            if stream is not None and stream.handle_closed:
                continue  # StreamClose already ran: nothing queued before it may revive it
            op.apply()
            if delayed_only is not False:
                delayed_only = op.kind == "send" and stream is not None and stream.flush_delayed
            self.delivery.applied(stream, op.kind)
        self.flush_delayed = bool(delayed_only)
        if self.check_invariants and not self.delivery.depth:  # (a loop outside may hold sends)
            self.check_exactly_once()

    def check_exactly_once(self) -> None:
        """Record in :attr:`state_errors` when an accepted send is neither completed,
        dropped by a fault nor pending in one of the places core/stream.py lists (a core
        bug: recorded, never raised into the application's call)."""
        pending = sum(stream.pending_sends() for stream in (*self.streams.values(), *self.unstarted))
        counts = self.send_counts
        if counts.accepted != counts.completed + counts.dropped + pending:
            self.state_errors.append(
                f"{self.label}: exactly-once bookkeeping broken: {counts.accepted} sends accepted, "
                f"{counts.completed} completed, {counts.dropped} dropped by faults, {pending} pending")
            self.check_invariants = False  # the first break is the finding; the rest follow from it

    def apply_shutdown(self, flags: ConnectionShutdownFlags, error_code: int, *, by_app: bool = True) -> None:
        """QuicConnShutdown by the application (QuicConnCloseLocally with APPLICATION):
        on the first close, abort every stream, then close. ``by_app=False`` is a bare
        ConnectionClose: ``SILENT | QUIC_STATUS`` with ABORTED and no APPLICATION flag.
        After the peer's close it still sets ClosedLocally (QuicConnTryClose), so StreamOpen
        says INVALID_STATE from then on."""
        silent = bool(flags & ConnectionShutdownFlags.SILENT)
        if self.state.try_close("close_locally", silent=silent, application=by_app, by_app=by_app):
            if by_app:
                self.close_error_code, self.close_status = error_code, error_code_to_status(error_code)
            else:
                self.close_error_code, self.close_status = QUIC_ERROR_INTERNAL_ERROR, Status.ABORTED
            self._abort_streams()
            if not silent:
                self.quic.close(error_code=error_code)
            # (silent: no CONNECTION_CLOSE on the wire; the peer will only time out)
        self._shutdown_complete_if_due()

    def close(self) -> None:
        """MsQuicConnectionClose (QuicConnCloseHandle): HandleClosed first, then a silent
        close (QuicConnCloseLocally(SILENT | QUIC_STATUS, ABORTED)): the first close shuts
        every started stream down; a close already under way ends now, as answered. Then
        SHUTDOWN_COMPLETE (app_close_in_progress) at once, inline. From the application
        thread the close is processed after what was queued before it; from a callback it
        runs inline and what is queued is applied later. Streams keep their handles: a
        stream holds its connection until StreamClose, so their calls and events go on."""
        if self.state.handle_closed:
            return
        if not self.on_worker_thread():
            self.run_on_worker(self.close)  # ConnectionClose blocks until the worker ran it
            return
        if not self.delivery.depth:
            self.process_operations()
        self.state.move("close_handle")
        self.apply_shutdown(ConnectionShutdownFlags.SILENT, 0, by_app=False)

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        """A datagram from the peer, before its events are delivered (the driver delivers
        them next): aioquic takes it in, then what its frames did comes in the order MsQuic
        handles a packet's frames (ACK first): the completions its ACKs brought, then
        PEER_STREAM_STARTED for each stream its frames opened, lower-numbered ones too
        (QuicStreamSetGetStreamForPeer), whether or not a frame carries data.

        During our closing period a datagram is the peer's answer to our CONNECTION_CLOSE
        (a peer that closes as MsQuic does answers with one of its own; aioquic drops the
        datagram unread, so its arrival is what counts): both sides are closed,
        SHUTDOWN_COMPLETE comes at once with peer_acknowledged_shutdown True
        (QuicConnTryClose)."""
        state = self.state
        if (state.closed_locally and not state.closed_remotely and not state.shutdown_complete
                and aq.is_closing(self.quic)):
            state.try_close("close_remotely")
            self._shutdown_complete_if_due()
        self.quic.receive_datagram(data, addr, now)
        if self.dirty:
            self.complete_acknowledged()
        if self._opened_by_peer:
            self._open_peer_streams()

    def _shutdown_complete_if_due(self) -> None:
        """QuicConnOnShutdownComplete once ProcessShutdownComplete is set: aioquic's side
        of the connection ends at once (no closing or draining period left)."""
        if self.state.process_shutdown_complete and not self.state.shutdown_complete:
            aq.end_now(self.quic)
            self._complete_shutdown()

    @property
    def observers(self) -> list[Any]:
        """The observers still watching (the delivery's; read-only)."""
        return self.delivery.observers

    @property
    def observer_errors(self) -> list[tuple[Any, Exception, str]]:
        """Observers that raised and watch no more: (observer, what it raised, as text)."""
        return self.delivery.observer_errors

    # ------------------------------------------------------------ aioquic events

    def handle_quic_event(self, event: qe.QuicEvent) -> None:
        """Translate one aioquic event into MsQuic events."""
        # One type() and identity tests: this runs per datagram. Each branch casts to
        # the type it just tested (mypy cannot narrow through ``t``); the per-packet one
        # by annotation, as typing.cast is a Python call at run time.
        t = type(event)
        if t is qe.StreamDataReceived:
            data_event: qe.StreamDataReceived = event  # type: ignore[assignment]
            stream = self.streams.get(data_event.stream_id)  # _stream_for's usual case, inline (per packet)
            if stream is None:
                stream = self._stream_for(data_event.stream_id)
            observers = self.delivery.observers
            if observers:  # per packet: the loop inline (EventDelivery.tell's guard, by hand)
                stream_id, length, fin = data_event.stream_id, len(data_event.data), data_event.end_stream
                try:
                    for observer in observers:
                        observer.stream_data_received(self, stream, stream_id, length, fin)
                except Exception as exc:
                    self.delivery.observer_failed(observer, exc, "stream_data_received",
                                                  (self, stream, stream_id, length, fin))
            if stream is not None:
                stream.recv.on_frame(data_event.data, data_event.end_stream)
        elif t is qe.StreamReset:
            reset_event = cast(qe.StreamReset, event)
            stream = self._stream_for(reset_event.stream_id)
            if stream is not None:
                stream.recv.on_reset(reset_event.error_code)
        elif t is qe.StopSendingReceived:
            stop_event = cast(qe.StopSendingReceived, event)
            stream = self._stream_for(stop_event.stream_id)
            if stream is not None:
                # When both came together, PEER_SEND_ABORTED first, as MsQuic orders them.
                reset_code = aq.take_reset_queued_first(self.quic, stop_event.stream_id)
                if reset_code is not None:
                    stream.recv.on_reset(reset_code)
                stream.on_stop_sending(stop_event.error_code)
        elif t is qe.HandshakeCompleted:
            handshake = cast(qe.HandshakeCompleted, event)
            self.limits.on_peer_transport_parameters()
            self.state.move("connect")
            self.negotiated_alpn = handshake.alpn_protocol
            self.delivery.connection_event(ev.Connected(session_resumed=handshake.session_resumed,
                                        negotiated_alpn=handshake.alpn_protocol))
        elif t is qe.DatagramFrameReceived:
            self.delivery.connection_event(ev.DatagramReceived(buffer=cast(qe.DatagramFrameReceived, event).data))
        elif t is qe.ConnectionTerminated:
            self._on_terminated(cast(qe.ConnectionTerminated, event))

    def poll(self) -> None:
        """After aioquic processed datagrams or timers: complete acknowledged sends,
        then notice a close the peer or the transport started."""
        # Runs after every datagram and timer: plain attribute tests before any call.
        datagrams = self.datagrams
        if datagrams.changes:
            datagrams.deliver()
        if self.dirty:
            self.complete_acknowledged()
        state = self.state
        if not (state.closed_locally or state.closed_remotely):  # not shutdown_initiated
            # QuicSendBufferConnectionAdjust and QuicSendBufferStreamAdjust, whether or not
            # buffering is on (core/send_buffer.py); skipped while it has said it has
            # nothing to do below the current window (the usual case, per datagram)
            send_buffer = self.send_buffer
            if not send_buffer.settled_below or send_buffer.cc.congestion_window >= send_buffer.settled_below:
                send_buffer.adjust(self)
            # (each step raises events whose handlers may shut the connection down)
            limits = self.limits
            if ((limits.moved or limits.held_aborts or limits.awaiting_accept) and state.connected
                    and not (state.closed_locally or state.closed_remotely)):
                limits.check()
            if not (state.closed_locally or state.closed_remotely):
                close = aq.close_event(self.quic)
                if close is not None:
                    self._initiate_remote_shutdown(close)
        if self.check_invariants and not self.delivery.depth:
            self.check_exactly_once()

    def _open_peer_streams(self) -> None:
        """PEER_STREAM_STARTED for the streams the peer's frames opened, in order."""
        opened, self._opened_by_peer[:] = sorted(self._opened_by_peer), []
        for stream_id in opened:
            kind = stream_id & 3
            next_id = self._peer_next.get(kind, kind)
            while next_id <= stream_id:
                self._stream_for(next_id)
                next_id += 4
            self._peer_next[kind] = next_id

    def complete_acknowledged(self) -> None:
        """The ACK path: complete what acknowledgements (or losses) changed on the streams
        that saw them. A driver calls it right after ``receive_datagram``, before the
        datagram's other events: MsQuic handles a packet's frames in order, its ACK frames
        first, so those completions (and SEND_SHUTDOWN_COMPLETE) come before the peer's
        data and FIN events of the same datagram."""
        while self.dirty:
            dirty, self.dirty = self.dirty, {}
            for stream in dirty:
                if stream.quic_stream is not None:
                    stream.on_acks()

    def _initiate_remote_shutdown(self, close: qe.ConnectionTerminated) -> None:
        """A close this application did not ask for: SHUTDOWN_INITIATED_BY_PEER /
        _BY_TRANSPORT, then abort every stream."""
        by_peer = aq.closed_by_peer(self.quic)
        if by_peer:
            # QuicConnRecvClose: the peer's CONNECTION_CLOSE. An APPLICATION_CLOSE (aioquic
            # reports no frame type for it) sets AppClosed on this side too.
            self.state.try_close("close_remotely", application=close.frame_type is None)
            self.close_error_code, self.close_status = close.error_code, error_code_to_status(close.error_code)
        else:
            # Idle timeout (QuicConnProcessIdleTimerOperation), handshake timeout or a
            # transport error found here: QuicConnCloseLocally, so only ClosedLocally.
            idle = close.reason_phrase == "Idle timeout"
            self.state.try_close("close_locally", silent=idle)
            if idle:
                # INTERNAL_SILENT | QUIC_STATUS: the status itself, error INTERNAL_ERROR.
                self.close_status = Status.CONNECTION_IDLE if self.state.connected else Status.CONNECTION_TIMEOUT
                self.close_error_code = QUIC_ERROR_INTERNAL_ERROR
            else:
                self.close_error_code, self.close_status = close.error_code, error_code_to_status(close.error_code)
        if by_peer and self.state.app_closed:
            self.delivery.connection_event(ev.ShutdownInitiatedByPeer(error_code=close.error_code))
        else:
            self.delivery.connection_event(ev.ShutdownInitiatedByTransport(status=self.close_status, error_code=self.close_error_code))
        self._abort_streams()
        self._shutdown_complete_if_due()  # an idle timeout ends at once (a silent close)

    def shutdown_fields(self) -> dict[str, Any]:
        """The connection's part of a stream's SHUTDOWN_COMPLETE, read when it is raised
        (QuicStreamIndicateShutdownComplete)."""
        return dict(
            connection_shutdown=self.state.closed_locally or self.state.closed_remotely,
            connection_shutdown_by_app=self.state.app_closed,
            connection_closed_remotely=self.state.closed_remotely,
            connection_error_code=self.close_error_code,
            connection_close_status=self.close_status,
        )

    def _abort_streams(self) -> None:
        for stream in list(self.streams.values()):
            stream.abort_for_connection()

    def _on_terminated(self, close: qe.ConnectionTerminated) -> None:
        """aioquic's side ended (its closing or draining period ran out, a timeout): the
        connection's SHUTDOWN_COMPLETE, after every stream's."""
        if self.state.shutdown_complete:
            return
        if not self.state.shutdown_initiated:
            self._initiate_remote_shutdown(close)
        elif self.state.closed_locally and not self.state.silent:
            # A non-silent local close's closing period ran out: MsQuic sets ClosedRemotely
            # (QuicConnProcessShutdownTimerOperation), so later calls see ABORTED.
            self.state.try_close("shutdown_timer")
        if not self.state.shutdown_complete:
            self._complete_shutdown()

    def _complete_shutdown(self) -> None:
        """The connection's SHUTDOWN_COMPLETE, after which its handler is detached. Its
        started streams were shut down at the first close; never-started streams are not
        in MsQuic's stream table (QuicStreamSetShutdown skips them): their sends stay
        pending until StreamClose."""
        self.datagrams.cancel_all()
        self.state.move("complete_shutdown")
        self.delivery.dispatch_connection(ev.ConnectionShutdownComplete(
            handshake_completed=self.state.connected,
            peer_acknowledged_shutdown=not self.state.shutdown_timed_out,
            app_close_in_progress=self.state.handle_closed,
        ))

    # ------------------------------------------------------------ streams

    def next_handle(self) -> int:
        self._handles += 1
        return self._handles

    def stream_would_block(self, unidirectional: bool) -> bool:
        return self.limits.would_block(unidirectional)

    def abort_frames_queued(self, stream: StreamCore) -> None:
        self.limits.hold_abort_frames(stream)

    def await_peer_accept(self, stream: StreamCore) -> None:
        self.limits.await_peer_accept(stream)

    def create_quic_stream(self, stream: StreamCore) -> QuicStream:
        """Allocate the next stream id in aioquic and keep our own reference to it."""
        stream.id, quic_stream = aq.open_stream(self.quic, stream.unidirectional)
        self._register(stream, quic_stream)
        self.unstarted.pop(stream, None)
        return quic_stream  # now stream.quic_stream too

    def _register(self, stream: StreamCore, quic_stream: QuicStream) -> None:
        stream.quic_stream = quic_stream
        assert stream.id is not None  # registered once it has its id: started, or the peer's
        self.streams[stream.id] = stream

        aq.watch_deliveries(quic_stream.sender, stream.on_delivery_verdict)

    def _stream_for(self, stream_id: int) -> StreamCore | None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            return stream
        if bool(stream_id & 1) == (not self.is_client):
            return None  # one of ours that we no longer track
        if stream_id in self._peer_streams_seen:
            return None  # finished and gone: late frames for it reach nobody
        if self.state.closed_locally or self.state.closed_remotely:
            # QuicStreamSetGetStreamForPeer: no new peer stream once the connection is
            # closed (the shutdown walk has passed; nothing would ever end it).
            return None
        quic_stream = aq.quic_stream(self.quic, stream_id)
        if quic_stream is None:
            return None
        self._peer_streams_seen.add(stream_id)
        stream = self._new_stream(
            StreamOpenFlags.UNIDIRECTIONAL if stream_id & 2 else StreamOpenFlags.NONE, peer_stream_id=stream_id)
        self._register(stream, quic_stream)
        self.delivery.connection_event(ev.PeerStreamStarted(stream=stream.owner, flags=stream.open_flags))
        return stream

    def _new_stream(self, flags: StreamOpenFlags, handler: Callable[..., Any] | None = None, context: Any = None,
                    *, peer_stream_id: int | None = None) -> StreamCore:
        stream = StreamCore(self, flags, handler, context, peer_stream_id=peer_stream_id)
        if self.wrap_stream is not None:
            stream.owner = self.wrap_stream(stream)
        return stream

    def mark_dirty(self, stream: StreamCore) -> None:
        self.dirty[stream] = None
        if self.wakeup is not None:
            self.wakeup()

    def stream_done(self, stream: StreamCore) -> None:
        """SHUTDOWN_COMPLETE was indicated: the stream leaves the connection's table."""
        if stream.id is not None:  # a never-started stream has no id and was never in it
            self.streams.pop(stream.id, None)

    def stream_closed(self, stream: StreamCore) -> None:
        self.unstarted.pop(stream, None)
        if stream.shutdown_complete and stream.id is not None:  # no id: never in the table
            self.streams.pop(stream.id, None)
        if self.wakeup is not None:
            self.wakeup()

    # ------------------------------------------------------------ delivery (core/delivery.py)

    @property
    def callback_depth(self) -> int:
        """Callbacks of this connection running now (the delivery counts them)."""
        return self.delivery.depth

    def indicate(self, event: ev.ConnectionEvent) -> None:
        """QuicConnIndicateEvent (see EventDelivery.connection_event)."""
        self.delivery.connection_event(event)

    def call_handler(self, handler: Callable[..., Any], target: Any, event: Any) -> None:
        """Run one callback as the delivery runs handlers (a driver's or a test's own)."""
        self.delivery.call_handler(handler, target, event)

    def observe_preempted(self, stream: StreamCore | None, call: str) -> None:
        self.delivery.preempted(stream, call)

    def observe_window(self, stream: StreamCore | None, call: str, seconds: float, let_through: dict[str, Any]) -> None:
        self.delivery.network_window(stream, call, seconds, let_through)

    def observe_teardown(self) -> None:
        self.delivery.teardown()

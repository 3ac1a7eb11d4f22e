"""What the application calls on a stream: StreamStart, StreamSend, StreamShutdown,
StreamReceiveComplete / SetEnabled and StreamClose, as MsQuic's API functions do them:
the parameter and state checks (core/state.py's tables), then an operation queued for
the worker, or the work run inline where MsQuic runs it inline (on the worker, inside a
callback). The worker's side of each call, and every path that completes a send, is in
core/stream.py; StreamCore is both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..faults import CORRECT
from ..enums import MAX_SEND_LENGTH, SendFlags, Status, StreamShutdownFlags, StreamStartFlags
from . import operations as ops
from . import rules, state
from .send_queue import Buffer, SendRequest, normalize_buffers

if TYPE_CHECKING:  # pragma: no cover
    from .delivery import EventDelivery
    from .protocols import SendCounts, StreamConnection
    from .send_queue import SendQueue
    from .state import StreamState
    from .stream import StreamCore
    from .stream_recv import StreamReceive


_IMMEDIATE = StreamShutdownFlags.IMMEDIATE
_INLINE = StreamShutdownFlags.INLINE
_PRIORITY_WORK = int(SendFlags.PRIORITY_WORK)
_START_PRIORITY_WORK = int(StreamStartFlags.PRIORITY_WORK)
_PENDING = Status.PENDING


class StreamApi:
    """The API calls of StreamCore (a mixin: the state they check is StreamCore's)."""

    connection: "StreamConnection"
    delivery: "EventDelivery"
    counts: "SendCounts"
    sends: "SendQueue"
    state: "StreamState"
    recv: "StreamReceive"
    unidirectional: bool

    if TYPE_CHECKING:  # the worker's side, in core/stream.py
        def apply_send_flush(self) -> None: ...
        def apply_shutdown(self, flags: StreamShutdownFlags, error_code: int,
                           app_close_in_progress: bool = False) -> None: ...
        def pending_sends(self) -> int: ...

    def start(self, flags: StreamStartFlags = StreamStartFlags.NONE) -> Status:
        """StreamStart: PENDING; the result arrives in START_COMPLETE."""
        core = cast("StreamCore", self)  # (this mixin is StreamCore's)
        conn = self.connection
        iflags = rules.flag_value(flags, StreamStartFlags)
        status: Status | None
        if iflags < 0:
            status = Status.INVALID_PARAMETER  # no C flags value is negative
        else:
            status = state.status(state.START_STATUS, conn.state, self.state)  # a peer's stream is started
            if status is None:
                # Unknown bits are ignored, as MsQuicStreamStart ignores them.
                conn.queue_operation(ops.StreamStart(core, rules.flag_member(StreamStartFlags, iflags)),
                                     priority=bool(iflags & _START_PRIORITY_WORK))
                status = Status.PENDING
        self.delivery.api_call(core, "start", status, flags=iflags)
        return status

    def send(self, buffers: Any, flags: SendFlags = SendFlags.NONE, client_context: Any = None) -> Status:
        """StreamSend: PENDING when accepted (then exactly one SEND_COMPLETE follows)."""
        # The hot path: plain ints and a bytes fast path, no enum arithmetic.
        conn = self.connection
        send_id = next(conn.send_ids)
        iflags = (flags if type(flags) is int
                  else flags._value_ if type(flags) is SendFlags else rules.flag_value(flags, SendFlags))
        bufs: tuple[Buffer, ...] | None
        status: Status | None
        if type(buffers) is bytes:
            bufs, length = (buffers,), len(buffers)
        else:
            normalized = normalize_buffers(buffers)
            bufs, length = normalized if normalized is not None else (None, 0)
        # MsQuicStreamSend ignores unknown flag bits; a negative int is no C flags value.
        if bufs is None or iflags < 0 or length > MAX_SEND_LENGTH:
            status = Status.INVALID_PARAMETER
        else:
            # Checked and queued under the connection's lock (MsQuic's ApiSendRequestLock),
            # so a send from any thread and the worker's shutdown never interleave.
            # (acquire/release rather than `with`: half the cost, once per send)
            lock = conn.lock
            lock.acquire()
            try:
                status = state.send_status(conn.state, self.state)
                if status is None:
                    request = SendRequest(send_id, bufs, length, iflags, client_context)
                    self.counts.accepted += 1
                    api_requests = self.sends.api_requests
                    queue_oper = not api_requests  # one STRM_SEND operation flushes all queued sends
                    api_requests.append(request)
                    observers = self.delivery.observers
                    try:
                        for observer in observers:
                            observer.send_call(conn, self, send_id, _PENDING, length, iflags, client_context)
                    except Exception as exc:
                        self.delivery.observer_failed(observer, exc, "send_call", (
                            conn, self, send_id, _PENDING, length, iflags, client_context))
                    # (the depth first: outside callbacks, the usual case, that is all)
                    inline = bool(self.delivery.depth) and conn.inline() and not conn.settings.send_buffering
                    if queue_oper and not inline:
                        conn.queue_operation(ops.StreamSendFlush(cast("StreamCore", self)), priority=bool(iflags & _PRIORITY_WORK))
            finally:
                lock.release()
            if status is None:
                if inline:
                    # MsQuicStreamSend runs QuicStreamSendFlush inline on the worker thread.
                    self.apply_send_flush()
                return _PENDING
        self.delivery.tell("send_call", conn, self, send_id, status, length, iflags, client_context)
        return status

    def shutdown(self, flags: StreamShutdownFlags, error_code: int = 0) -> Status:
        """StreamShutdown: PENDING, or SUCCESS when INLINE is used inside a callback."""
        core = cast("StreamCore", self)  # (this mixin is StreamCore's)
        conn = self.connection
        iflags = rules.flag_value(flags, StreamShutdownFlags)
        reason = rules.shutdown_parameter_error(iflags, error_code)
        status: Status | None
        if reason is not None:
            status = Status.INVALID_PARAMETER
        else:
            status = state.status(state.SHUTDOWN_STATUS, conn.state, self.state)
        if status is None:
            if iflags & _INLINE and conn.inline():
                self.delivery.api_call(core, "shutdown", Status.SUCCESS, flags=iflags, error_code=error_code)
                self.apply_shutdown(StreamShutdownFlags(iflags), error_code)
                return Status.SUCCESS
            conn.queue_operation(ops.StreamShutdown(core, StreamShutdownFlags(iflags), error_code))
            status = Status.PENDING
        self.delivery.api_call(core, "shutdown", status, flags=iflags, error_code=error_code, reason=reason)
        return status

    def receive_complete(self, length: int) -> Status:
        """StreamReceiveComplete (see core/stream_recv.py)."""
        return self.recv.receive_complete(length)

    def receive_set_enabled(self, enabled: bool) -> Status:
        """StreamReceiveSetEnabled (see core/stream_recv.py)."""
        return self.recv.receive_set_enabled(enabled)

    def close(self) -> None:
        """StreamClose: a stream not yet shut down is aborted first; its pending sends
        complete (canceled) before this returns. No event reaches the handler afterwards."""
        core = cast("StreamCore", self)  # (this mixin is StreamCore's)
        if self.state.handle_closed:
            return
        conn = self.connection
        if not conn.on_worker_thread():
            conn.run_on_worker(self.close)  # StreamClose blocks until the worker ran it
            return
        if not self.delivery.depth:
            # The blocking close is processed after the operations queued before it.
            conn.process_operations()
        if self.delivery.probing and self.sends.taken and self.delivery.depth:
            self.delivery.probe(core, "close-inside-detached-batch")
        self._close_seams()
        if not self.state.shutdown_complete:
            # QuicStreamClose: QuicStreamShutdown(ABORT | IMMEDIATE), started or not.
            self.apply_shutdown(StreamShutdownFlags.ABORT | _IMMEDIATE, 0, app_close_in_progress=True)
        if not self.state.handle_closed:  # (a fault may have detached the handler already)
            self.state.move("close_handle")
        self.delivery.api_call(core, "close", None)
        conn.stream_closed(core)
        if conn.check_invariants and not self.delivery.depth:  # (a loop outside may hold sends)
            conn.check_exactly_once()

    def _close_seams(self) -> None:
        """The seams StreamClose passes (see quicsim.faults): correct, they do nothing."""
        core = cast("StreamCore", self)  # (this mixin is StreamCore's)
        conn = self.connection
        seams = conn.seams
        if seams is CORRECT:
            return
        if self.sends.pending_count():
            seams.stream_close(core)
        if self.sends.taken and self.delivery.depth:
            seams.close_inside_batch(core)
        if not self.state.started and self.sends.pending_count() and conn.state.shutdown_by_app:
            seams.unstarted_close(core)


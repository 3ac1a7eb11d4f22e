"""The receive path of one stream (MsQuic's ``stream_recv.c``): what the peer sent waits
here until the application takes it, one RECEIVE at a time.

A RECEIVE handler that returns SUCCESS (or CONTINUE, or nothing) took every byte of the
event. One that returns PENDING holds the stream's receive path: later data is taken in
by QUIC (acknowledged) but not indicated until the application calls
StreamReceiveComplete(n), inline from the handler or later. StreamReceiveSetEnabled
pauses and resumes the indications. A FIN is delivered with the event that reaches it,
or alone (zero buffers) when every byte was already taken, and PEER_SEND_SHUTDOWN follows
once the application took everything before it (QuicStreamReceiveComplete).

Not modelled: taking part of an event by shortening its TotalBufferLength from the
handler (quicsim's events are read-only), and flow control that follows what the
application consumed: aioquic grants stream and connection credit as data arrives, so
a peer is never flow-control blocked by a slow reader here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..enums import ReceiveFlags, Status
from . import operations as ops

if TYPE_CHECKING:  # pragma: no cover
    from .stream import StreamCore

_FIN = ReceiveFlags.FIN
_NONE = ReceiveFlags.NONE
_PENDING = Status.PENDING


class StreamReceive:
    """QUIC_RECV_BUFFER and the receive fields of QUIC_STREAM for one stream."""

    __slots__ = ("stream", "chunks", "held", "base_offset", "max_length", "pending_length", "inline_length",
                 "call_active")

    def __init__(self, stream: StreamCore) -> None:
        self.stream = stream
        self.chunks: list[bytes] = []  # taken in, not yet taken by the application
        self.held = 0  # bytes in ``chunks``
        self.base_offset = 0  # RecvBuffer.BaseOffset: every byte before it was taken
        self.max_length: int | None = None  # RecvMaxLength: the final size, once the FIN came
        self.pending_length = 0  # RecvPendingLength: what the RECEIVE being handled carries
        #: RecvInlineCompletionLength: StreamReceiveComplete called inside the handler
        self.inline_length: int | None = None
        self.call_active = False  # ReceiveCallActive: the RECEIVE handler is running now

    @property
    def fin_known(self) -> bool:
        return self.max_length is not None

    def data_pending(self) -> bool:
        """ReceiveDataPending: bytes to indicate, or a FIN not yet delivered."""
        return bool(self.held) or (self.max_length == self.base_offset and not self.stream.state.remote_closed)

    # ---------------------------------------------------------- what the peer sends

    def on_frame(self, data: bytes, fin: bool) -> None:
        """In-order data (and the FIN) of the peer, taken in by QUIC."""
        state = self.stream.state
        if state.remote_closed or state.sent_stop_sending:  # the direction is not open
            # After our ABORT_RECEIVE nothing more is indicated; a FIN is taken as the
            # reset that answers it ("Treating FIN after receive abort as reset").
            if fin and state.move_receive("fin"):
                self.stream.try_complete_shutdown()
            return
        if not (data and not self.held and state.receive_enabled and not state.receive_call_pending):
            self.on_data(data, fin)
            return
        # The usual case, per packet: flush for one event when nothing is held and the
        # application takes what comes; the data is held only if the handler holds it.
        stream = self.stream
        offset, length = self.base_offset, len(data)
        if fin:
            self.max_length = offset + length
        state.move_receive_call("indicate")
        self.pending_length = length
        self.inline_length = None
        self.call_active = True  # (a handler's exception never leaves indicate: the delivery keeps it)
        status = stream.delivery.stream_event(stream, ev.receive(offset, data, _FIN if fin else _NONE))
        self.call_active = False
        if state.sent_stop_sending or state.remote_closed:
            return  # the application aborted its receive path from the handler
        if status is _PENDING or self.chunks:
            # Held (or something came in meanwhile): the general path from here on.
            self.chunks.insert(0, data)
            self.held += length
            if status is _PENDING:
                if self.inline_length is None:
                    return  # held until StreamReceiveComplete
                length = self.inline_length
            if self.complete(length):
                self.flush()
            return
        # QuicStreamReceiveComplete of all of it, as complete() would do it
        self.base_offset = offset + length
        state.move_receive_call("complete_all")
        if fin and not state.remote_closed:
            self._peer_send_shutdown()

    def on_reset(self, error_code: int) -> None:
        """QuicStreamProcessResetFrame: PEER_SEND_ABORTED, unless it only answers our own
        ABORT_RECEIVE."""
        stream = self.stream
        answer = stream.state.sent_stop_sending
        if not stream.state.move_receive("reset"):
            return  # the direction was already closed: a late frame
        self.stop()
        if not answer:
            stream.delivery.stream_event(stream, ev.PeerSendAborted(error_code=error_code))
        stream.try_complete_shutdown()

    def on_data(self, data: bytes, fin: bool) -> None:
        """QuicStreamProcessStreamFrame: in-order data (and the FIN) taken in by QUIC."""
        if data:
            self.chunks.append(data)
            self.held += len(data)
        if fin:
            self.max_length = self.base_offset + self.held
        if self.data_pending():
            self.flush()

    def flush(self) -> None:
        """QuicStreamRecvFlush: indicate RECEIVE while receiving is enabled, nothing is held
        by the application and there is something to indicate."""
        stream = self.stream
        state = stream.state
        while state.receive_enabled and not state.receive_call_pending and self.data_pending():
            chunks, length, offset = tuple(self.chunks), self.held, self.base_offset
            if length:
                flags = _FIN if offset + length == self.max_length else _NONE
            else:
                flags = _FIN  # FIN only: no buffers at all
                assert self.max_length is not None
                offset = self.max_length
            state.move_receive_call("indicate")
            self.pending_length = length
            self.inline_length = None
            self.call_active = True
            status = stream.delivery.stream_event(stream, ev.receive_buffers(offset, chunks, length, flags))
            self.call_active = False
            if state.sent_stop_sending or state.remote_closed:
                break  # the application aborted its receive path from the handler
            if status is _PENDING:
                if self.inline_length is None:
                    return  # held until StreamReceiveComplete
                length = self.inline_length  # completed inline: as if returned synchronously
            if not self.complete(length):
                return

    def complete(self, length: int) -> bool:
        """QuicStreamReceiveComplete: the application took ``length`` bytes of the RECEIVE
        it was given. True: indicate again (more is pending and receiving is enabled)."""
        stream = self.stream
        state = stream.state
        if not state.receive_call_pending:
            return False
        self._drain(length)
        state.move_receive_call("complete_all" if length == self.pending_length else "complete_part")
        if not state.receive_enabled:
            return False  # paused until StreamReceiveSetEnabled(True)
        if self.held:
            return True
        if self.max_length == self.base_offset and not state.remote_closed:
            self._peer_send_shutdown()
        return False

    def _peer_send_shutdown(self) -> None:
        """Every byte before the FIN was taken: RemoteCloseFin, the graceful close event."""
        stream = self.stream
        stream.state.move_receive("fin")
        stream.delivery.stream_event(stream, ev.PeerSendShutdown())
        stream.try_complete_shutdown()

    def _drain(self, length: int) -> None:
        self.base_offset += length
        self.held -= length
        chunks = self.chunks
        while length and chunks:
            head = chunks[0]
            if len(head) <= length:
                length -= len(head)
                chunks.pop(0)
            else:
                chunks[0] = head[length:]
                length = 0

    # ---------------------------------------------------------- the application's calls

    def receive_complete(self, length: int) -> Status:
        """StreamReceiveComplete: the application took ``length`` bytes of the RECEIVE it
        held (its handler returned PENDING). Inside that handler it is taken at once;
        otherwise queued for the worker. MsQuic's call returns nothing; quicsim says what
        happened: SUCCESS (inline), PENDING (queued), INVALID_STATE (no RECEIVE is held:
        MsQuic ignores the call) or INVALID_PARAMETER (more than the RECEIVE carried, which
        MsQuic treats as a fatal application bug)."""
        stream = self.stream
        conn = stream.connection
        status: Status
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            status = Status.INVALID_PARAMETER
        elif not stream.state.started or not stream.state.receive_call_pending:
            status = Status.INVALID_STATE
        elif length > self.pending_length:
            status = Status.INVALID_PARAMETER  # "App overflowed read buffer!"
        elif conn.inline() and self.call_active:
            self.inline_length = length  # QuicStreamReceiveCompleteInline
            status = Status.SUCCESS
        else:
            conn.queue_operation(ops.StreamReceiveComplete(stream, length))
            status = Status.PENDING
        stream.delivery.api_call(stream, "receive_complete", status, length=length)
        return status

    def receive_set_enabled(self, enabled: bool) -> Status:
        """StreamReceiveSetEnabled: pause (False) or resume (True) RECEIVE indications;
        PENDING, applied by the worker (resuming indicates what is held at once)."""
        stream = self.stream
        stream.connection.queue_operation(ops.StreamReceiveSetEnabled(stream, bool(enabled)))
        stream.delivery.api_call(stream, "receive_set_enabled", Status.PENDING, enabled=bool(enabled))
        return Status.PENDING

    def apply_complete(self, length: int) -> None:
        """QuicStreamReceiveCompletePending."""
        if self.complete(length):
            self.flush()

    def apply_set_enabled(self, enabled: bool) -> None:
        """QuicStreamRecvSetEnabledState: nothing once the receive direction is over."""
        state = self.stream.state
        if state.receive_direction() != "open" or state.sent_stop_sending:
            return  # INVALID_STATE internally
        if state.move_receive_call("enable" if enabled else "disable") and enabled and state.started:
            self.flush()

    def shutdown_abort(self, error_code: int) -> None:
        """ABORT_RECEIVE (QuicStreamRecvShutdown): ask the peer to stop (STOP_SENDING); no
        receive events after. The direction closes when the peer's RESET_STREAM (or FIN)
        arrives, so SHUTDOWN_COMPLETE waits for it."""
        stream = self.stream
        state = stream.state
        if not state.started:
            state.move_receive("abort_unstarted")  # nothing was ever received: nothing to wait for
            return
        if state.receive_direction() != "open":
            return  # the peer already closed it, or we already aborted it
        self.stop()  # no receive events after this
        if self.fin_known:
            # The peer already finished, the application just had not taken it all: as if
            # the reset were acknowledged, no STOP_SENDING and no event.
            state.move_receive("abort_after_fin")
            stream.try_complete_shutdown()
            return
        state.move_receive("abort")
        quic_stream = stream.quic_stream
        assert quic_stream is not None  # a started stream has its aioquic stream
        quic_stream.receiver.stop(error_code)
        stream.connection.abort_frames_queued(stream)

    def stop(self) -> None:
        """The receive path was aborted (or is over): nothing more is indicated."""
        self.chunks.clear()
        self.held = 0
        self.stream.state.move_receive_call("stop")

    def describe(self) -> dict[str, Any]:
        return {"held": self.held, "base_offset": self.base_offset, "max_length": self.max_length}

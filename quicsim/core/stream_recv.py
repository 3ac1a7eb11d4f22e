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
            try:
                status = stream.indicate_receive(ev.receive_buffers(offset, chunks, length, flags))
            finally:
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
            # Every byte before the FIN was taken: the graceful close event now.
            stream.peer_send_shutdown()
        return False

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

    def stop(self) -> None:
        """The receive path was aborted (or is over): nothing more is indicated."""
        self.chunks.clear()
        self.held = 0
        self.stream.state.move_receive_call("stop")

    def describe(self) -> dict[str, Any]:
        return {"held": self.held, "base_offset": self.base_offset, "max_length": self.max_length}

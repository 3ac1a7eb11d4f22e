"""``abort-drops-unflushed-send``: an abort forgets the sends the worker had not flushed."""

from __future__ import annotations

from typing import Any

from . import ABORT_UNFLUSHED, Fault, FaultTarget


class AbortDropsUnflushedSend(Fault):
    name = "abort-drops-unflushed-send"
    description = ("an abortive send shutdown (StreamShutdown ABORT_SEND, StreamClose, or a "
                   "connection shutdown that overtook the flush) cancels the sends queued on "
                   "the stream but drops, with no completion, those accepted and not yet "
                   "flushed by the worker")
    msquic = ("hypothetical: QuicStreamSendShutdown(!Graceful) completing Stream->SendRequests "
              "but forgetting the ApiSendRequests list it detached under ApiSendRequestLock")

    def cancel_send(self, stream: FaultTarget, request: Any, where: str) -> None:
        if where != ABORT_UNFLUSHED:
            return super().cancel_send(stream, request, where)
        stream.drop_send(request)
        stream.fault_hit(self.name, f"send {stream.send_name(request)} dropped by the abort")

"""``drop-send-after-shutdown``: a late send vanishes instead of completing canceled."""

from __future__ import annotations

from typing import Any

from . import LATE, Fault, FaultTarget


class DropSendAfterShutdown(Fault):
    name = "drop-send-after-shutdown"
    description = ("a send accepted before the send-side shutdown took effect is dropped, "
                   "with no canceled completion, when the worker applies it")
    msquic = "hypothetical: QuicStreamSendFlush / QuicStreamSendShutdown forgetting a detached request"

    def cancel_send(self, stream: FaultTarget, request: Any, where: str) -> None:
        if where != LATE:
            return super().cancel_send(stream, request, where)
        stream.drop_send(request)
        stream.fault_hit(self.name, f"send {stream.send_name(request)} dropped")

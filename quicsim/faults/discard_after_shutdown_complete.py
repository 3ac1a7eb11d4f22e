"""``discard-after-shutdown-complete``: completions raised once the handler is gone."""

from __future__ import annotations

from typing import Any

from . import LATE, Fault, FaultTarget


class DiscardAfterShutdownComplete(Fault):
    name = "discard-after-shutdown-complete"
    description = ("completions raised after the stream's SHUTDOWN_COMPLETE (or after "
                   "StreamClose) are discarded because the handler is already detached")
    msquic = "QuicStreamIndicateEvent with ClientCallbackHandler == NULL (\"Event silently discarded\")"

    def cancel_send(self, stream: FaultTarget, request: Any, where: str) -> None:
        if where != LATE:
            return super().cancel_send(stream, request, where)
        stream.park_send(request)  # raised only after SHUTDOWN_COMPLETE, when the handler is gone

    def stream_close(self, stream: FaultTarget) -> None:
        # The handler is detached before the canceled completions are raised.
        stream.fault_hit(self.name, "handler detached before close's completions")
        stream.detach_handler()

"""``unstarted-stream-leak``: StreamClose leaves a never-started stream's sends pending."""

from __future__ import annotations

from . import Fault, FaultTarget


class UnstartedStreamLeak(Fault):
    name = "unstarted-stream-leak"
    description = ("sends on an opened but never started stream of a connection the "
                   "application shut down are not canceled at StreamClose either (MsQuic "
                   "cancels them only there: the connection's end does not touch such a stream)")
    msquic = ("hypothetical: QuicStreamClose skipping the send requests of a stream that "
              "QuicStreamSetShutdown never saw")

    def unstarted_close(self, stream: FaultTarget) -> None:
        stream.fault_hit(self.name, "sends on a never-started stream left pending at close")
        stream.forget_sends()

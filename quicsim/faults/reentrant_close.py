"""``reentrant-close``: MsQuic's own lost completions (issue 4307's mechanism)."""

from __future__ import annotations

from . import Fault, FaultTarget


class ReentrantClose(Fault):
    name = "reentrant-close"
    description = ("StreamClose from a SEND_COMPLETE raised while the worker completes a "
                   "detached batch of sends (a graceful shutdown's late sends, an abort's "
                   "canceled sends, a connection shutdown that overtook a pending send, or, "
                   "with send buffering on, a flush whose sends complete on copy one by one, "
                   "no shutdown needed) detaches the handler; the rest of the batch is "
                   "completed into nothing. MsQuic's StreamClose documentation allows the "
                   "call from any callback, yet also calls closing a stream before its "
                   "SHUTDOWN_COMPLETE undefined behaviour")
    msquic = ("QuicStreamSendShutdown and QuicStreamSendFlush complete their local list of "
              "detached requests one by one (the flush fills the send buffer after each); "
              "QuicStreamClose inline from one of those callbacks sets ClientCallbackHandler "
              "to NULL, and QuicStreamIndicateEvent discards the rest")
    in_library = True

    def close_inside_batch(self, stream: FaultTarget) -> None:
        # MsQuic's QuicStreamClose cannot see the list QuicStreamSendShutdown (or
        # QuicStreamSendFlush) detached: the loop that owns it completes the rest after
        # this close detached the handler, and those completions go nowhere.
        stranded = stream.strand_taken()
        stream.fault_hit(self.name, f"{stranded} send(s) of a detached batch left to a closed handle")

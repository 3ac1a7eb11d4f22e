"""Injectable faults: each one loses a SEND_COMPLETE one way MsQuic can, at one named seam.

The core calls a seam at the point where MsQuic's code could go wrong and does what the
answer says; with no fault switched on every seam answers "behave correctly". A fault is
one object here: its name, the seam it hooks, what it does, and the MsQuic path it
reproduces. Adding a fault means adding a class below (and its test): the core does not
change unless the fault needs a seam that does not exist yet.

Seams (what the core asks, and where):

- ``late_send``: a send accepted before its stream's send side was shut down is applied
  after it (QuicStreamSendFlush / QuicStreamSendShutdown's detached list). Answer
  ``CANCEL`` (correct), ``DROP`` (no completion at all) or ``DEFER`` (complete it only
  after the stream's SHUTDOWN_COMPLETE, when the handler is gone).
- ``stream_close``: StreamClose on a stream that still has pending sends. True: detach the
  handler before the canceled completions are raised.
- ``unstarted_close``: StreamClose on a never-started stream that still holds accepted
  sends, on a connection the application shut down. True: leave them pending.
- ``close_inside_batch``: StreamClose runs inside a SEND_COMPLETE raised while the worker
  completes a detached batch of sends. True: the close leaves that batch to the loop that
  detached it, which then completes the rest into a detached handler (MsQuic's own path).
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, Iterable


class LateSend(Enum):
    CANCEL = "cancel"
    DROP = "drop"
    DEFER = "defer"


class Fault:
    """One injectable fault. Subclasses override the seam methods they hook."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: the MsQuic function or path the fault reproduces
    msquic: ClassVar[str]
    #: the real library loses completions this way by itself (seen running it): on the
    #: msquic backend the fault needs no injecting, it is what the library does
    in_library: ClassVar[bool] = False

    def late_send(self) -> LateSend:
        return LateSend.CANCEL

    def stream_close(self) -> bool:
        return False

    def unstarted_close(self) -> bool:
        return False

    def close_inside_batch(self) -> bool:
        return False


class DropSendAfterShutdown(Fault):
    name = "drop-send-after-shutdown"
    description = ("a send accepted before the send-side shutdown took effect is dropped, "
                   "with no canceled completion, when the worker applies it")
    msquic = "hypothetical: QuicStreamSendFlush / QuicStreamSendShutdown forgetting a detached request"

    def late_send(self) -> LateSend:
        return LateSend.DROP


class DiscardAfterShutdownComplete(Fault):
    name = "discard-after-shutdown-complete"
    description = ("completions raised after the stream's SHUTDOWN_COMPLETE (or after "
                   "StreamClose) are discarded because the handler is already detached")
    msquic = "QuicStreamIndicateEvent with ClientCallbackHandler == NULL (\"Event silently discarded\")"

    def late_send(self) -> LateSend:
        return LateSend.DEFER

    def stream_close(self) -> bool:
        return True


class UnstartedStreamLeak(Fault):
    name = "unstarted-stream-leak"
    description = ("sends on an opened but never started stream of a connection the "
                   "application shut down are not canceled at StreamClose either (MsQuic "
                   "cancels them only there: the connection's end does not touch such a stream)")
    msquic = ("hypothetical: QuicStreamClose skipping the send requests of a stream that "
              "QuicStreamSetShutdown never saw")

    def unstarted_close(self) -> bool:
        return True


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

    def close_inside_batch(self) -> bool:
        return True


#: every fault by name
FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (DropSendAfterShutdown(), DiscardAfterShutdownComplete(), UnstartedStreamLeak(), ReentrantClose())
}


def check_faults(faults: Iterable[str] | None) -> frozenset[str]:
    """Return ``faults`` as a frozenset, or raise ValueError naming the valid fault names."""
    if faults is None:
        return frozenset()
    if isinstance(faults, str):
        faults = [faults]
    chosen = frozenset(faults)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise ValueError(
            f"unknown fault {', '.join(map(repr, unknown))}; "
            f"valid faults: {', '.join(sorted(FAULTS))}"
        )
    return chosen


class FaultSet:
    """The faults switched on for one connection, asked seam by seam by the core.

    Each seam returns the fault that changes what happens (or None): the core then does
    what that fault says and reports it as a fault hit."""

    __slots__ = ("_faults",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._faults = tuple(FAULTS[name] for name in sorted(names))

    def __bool__(self) -> bool:
        return bool(self._faults)

    def late_send(self) -> tuple[Fault | None, LateSend]:
        for fault in self._faults:
            action = fault.late_send()
            if action is not LateSend.CANCEL:
                return fault, action
        return None, LateSend.CANCEL

    def _first(self, seam: str) -> Fault | None:
        for fault in self._faults:
            if getattr(fault, seam)():
                return fault
        return None

    def stream_close(self) -> Fault | None:
        return self._first("stream_close")

    def unstarted_close(self) -> Fault | None:
        return self._first("unstarted_close")

    def close_inside_batch(self) -> Fault | None:
        return self._first("close_inside_batch")


__all__ = ["FAULTS", "Fault", "FaultSet", "LateSend", "check_faults"]

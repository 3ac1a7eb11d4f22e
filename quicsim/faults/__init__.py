"""Injectable faults: each one loses a SEND_COMPLETE one way MsQuic can, at one named seam.

A seam is a method of :class:`Seams` that the core calls where MsQuic's code could go
wrong; the method does what MsQuic does right, so with no fault switched on the core
behaves correctly. A fault is a subclass, one module of this package, that overrides the
seams it hooks, does its damage through the stream's :class:`FaultTarget` view and says
so with ``fault_hit``; where it has nothing to change it hands the call on (``super()``),
to the next fault switched on and in the end to the correct behaviour. Every module here
is loaded and every :class:`Fault` it defines is registered by its ``name``: adding a
fault is adding a module (and its test).

Seams (where the core calls them):

- ``cancel_send(stream, request, where)``: an accepted send is canceled. ``where`` names
  MsQuic's path: :data:`LATE` (accepted before its stream's send side was shut down,
  applied after: QuicStreamSendFlush / QuicStreamSendShutdown's detached list),
  :data:`ABORT` (queued on the stream when QuicStreamSendShutdown(!Graceful) runs) or
  :data:`ABORT_UNFLUSHED` (accepted, not yet flushed by the worker, when it runs).
  Correct: complete it, canceled.
- ``stream_close(stream)``: StreamClose on a stream that still has pending sends.
- ``close_inside_batch(stream)``: StreamClose inside a SEND_COMPLETE raised while the
  worker completes a detached batch of sends.
- ``unstarted_close(stream)``: StreamClose on a never-started stream that still holds
  accepted sends, on a connection the application shut down.

The last three are correct when they do nothing: StreamClose goes on and cancels.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, ClassVar, Iterable, Protocol

#: cancel_send's ``where``: a send accepted before the send-side shutdown, applied after it
LATE = "late"
#: cancel_send's ``where``: a send queued on the stream when it is aborted
ABORT = "abort"
#: cancel_send's ``where``: a send accepted but not yet flushed when the stream is aborted
ABORT_UNFLUSHED = "abort_unflushed"


class FaultTarget(Protocol):
    """What a seam may do to the stream it is called for (StreamCore)."""

    def complete_send(self, request: Any, canceled: bool) -> None:
        """QuicStreamCompleteSendRequest: the send's one SEND_COMPLETE."""

    def drop_send(self, request: Any) -> None:
        """Let the send go without a completion (counted as dropped by a fault)."""

    def park_send(self, request: Any) -> None:
        """Complete the send (canceled) only after the stream's SHUTDOWN_COMPLETE."""

    def detach_handler(self) -> None:
        """Detach the handler now (StreamClose's ClientCallbackHandler = NULL)."""

    def strand_taken(self) -> int:
        """Leave the detached batch being completed to the loop that took it; its size."""

    def forget_sends(self) -> int:
        """Drop every pending send without completing it; how many (counted as dropped)."""

    def send_name(self, request: Any) -> str:
        """The send as messages name it: ``<connection label>:<send id>``."""

    def fault_hit(self, fault: str, what: str) -> None:
        """Report that ``fault`` changed what happened (observers, the connection's hits)."""


class Seams:
    """The seams, each doing what MsQuic does right."""

    def cancel_send(self, stream: FaultTarget, request: Any, where: str) -> None:
        stream.complete_send(request, canceled=True)

    def stream_close(self, stream: FaultTarget) -> None:
        pass

    def close_inside_batch(self, stream: FaultTarget) -> None:
        pass

    def unstarted_close(self, stream: FaultTarget) -> None:
        pass


#: the seams with no fault switched on
CORRECT = Seams()


class Fault(Seams):
    """One injectable fault: a module of this package defines a subclass overriding the
    seams it hooks; each seam it leaves alone (or calls through ``super()``) goes on to
    the next fault switched on, then to the correct behaviour."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: the MsQuic function or path the fault reproduces
    msquic: ClassVar[str]
    #: the real library loses completions this way by itself (seen running it): on the
    #: msquic backend the fault needs no injecting, it is what the library does
    in_library: ClassVar[bool] = False

    def __init__(self, inner: Seams = CORRECT) -> None:
        self.inner = inner

    def cancel_send(self, stream: FaultTarget, request: Any, where: str) -> None:
        self.inner.cancel_send(stream, request, where)

    def stream_close(self, stream: FaultTarget) -> None:
        self.inner.stream_close(stream)

    def close_inside_batch(self, stream: FaultTarget) -> None:
        self.inner.close_inside_batch(stream)

    def unstarted_close(self, stream: FaultTarget) -> None:
        self.inner.unstarted_close(stream)


def _load() -> dict[str, type[Fault]]:
    """Every Fault subclass defined in this package's modules, by name."""
    faults: dict[str, type[Fault]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Fault) and value.__module__ == module.__name__:
                if value.name in faults:
                    raise ImportError(f"two faults named {value.name!r}")
                faults[value.name] = value
    return dict(sorted(faults.items()))


#: every fault by name
FAULTS: dict[str, type[Fault]] = _load()


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


def seams_for(names: Iterable[str]) -> Seams:
    """The seams of a connection with the faults ``names`` switched on: the first by name
    is asked first, and hands on what it leaves alone."""
    seams: Seams = CORRECT
    for name in sorted(names, reverse=True):
        seams = FAULTS[name](seams)
    return seams


__all__ = ["ABORT", "ABORT_UNFLUSHED", "CORRECT", "FAULTS", "Fault", "FaultTarget", "LATE", "Seams",
           "check_faults", "seams_for"]

"""An asyncio event loop on a virtual clock: when nothing is runnable it jumps straight to
the next timer instead of waiting. With the in-memory link (no sockets) a run is a pure
function of its seed, and a 30 s idle timeout takes no wall time at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import selectors
from asyncio import events

#: Each jump lands this far past the timer it wakes for: aioquic's loss detection can
#: re-arm the same deadline forever when called exactly at it (float rounding).
STEP_PAST = 1e-6


class _VirtualSelector(selectors.DefaultSelector):
    """Polls the real file descriptors (the loop's self-pipe) without blocking; a wait
    with a timeout becomes a jump of the loop's virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeEventLoop | None = None

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled: only another thread (call_soon_threadsafe) can wake us.
            return super().select(None)
        assert self.loop is not None
        self.loop._advance(timeout)
        return []


class _OrderedTimer(events.TimerHandle):
    """A timer that, due at the same instant as another, runs in the order it was
    scheduled (asyncio's own heap breaks such ties by heap shape)."""

    __slots__ = ("_seq",)

    def __init__(self, seq: int, *args) -> None:
        super().__init__(*args)
        self._seq = seq

    def __lt__(self, other):
        if isinstance(other, _OrderedTimer):
            return (self._when, self._seq) < (other._when, other._seq)
        return super().__lt__(other)


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` is virtual and starts at 0; idle time costs nothing."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0
        self._timer_seq = itertools.count()

    def time(self) -> float:
        return self._virtual_now

    def call_at(self, when, callback, *args, context=None):
        # BaseEventLoop.call_at, with timers ordered by (deadline, scheduling order).
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = _OrderedTimer(next(self._timer_seq), when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds + STEP_PAST


def run_virtual(coro, seed: int | None = None):
    """Run ``coro`` to completion on a fresh virtual-time loop; with ``seed``, aioquic's
    randomness in the run is drawn from it (:mod:`quicsim.transport.seeded`)."""
    from .seeded import seeded

    with seeded(seed) if seed is not None else contextlib.nullcontext():
        with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
            return runner.run(coro)

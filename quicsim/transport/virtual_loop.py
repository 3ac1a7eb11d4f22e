"""An asyncio event loop on a virtual clock: when nothing is runnable it jumps straight to
the next timer instead of waiting. With the in-memory link (no sockets) a run is a pure
function of its seed, and a 30 s idle timeout takes no wall time at all.
"""

from __future__ import annotations

import asyncio
import selectors

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


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` is virtual and starts at 0; idle time costs nothing."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds + STEP_PAST


def run_virtual(coro):
    """Run ``coro`` to completion on a fresh virtual-time loop."""
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(coro)

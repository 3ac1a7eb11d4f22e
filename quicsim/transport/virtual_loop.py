"""An asyncio event loop on a virtual clock: when nothing is runnable it jumps straight to
the next timer instead of waiting. With the in-memory link (no sockets) a run is a pure
function of its seed, and a 30 s idle timeout takes no wall time at all.

Except while another thread is at work for the run: then idle is not idle (the thread may
call the API at any moment), so the clock runs at the real rate instead of jumping. That is
the case while a job handed to a thread (``run_in_executor``, ``asyncio.to_thread``) has not
finished, and while a thread started after the loop was made (other than a thread pool's
idle worker) is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import concurrent.futures
import contextvars
import functools
import heapq
import itertools
import operator
import selectors
import threading
import time
from asyncio import events, format_helpers
from concurrent.futures import thread as _pool_thread
from typing import Any, Callable, Coroutine, TypeVar, TypeVarTuple, Unpack
from ..errors import VirtualClockStopped, VirtualTimeExceeded

#: Each jump lands this far past the timer it wakes for: aioquic's loss detection can
#: re-arm the same deadline forever when called exactly at it (float rounding).
STEP_PAST = 1e-6
#: While another thread is at work, how often the loop checks whether it still is.
HOLD_SLICE = 0.005
#: After the budget ran out, virtual time the cleanup (task cancellation) may still use.
CLEANUP_SECONDS = 60.0
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

#: Timers run one after another at one virtual instant, at most: past this the clock has
#: stopped (something re-arms a timer at the current instant forever) and the run is a hang.
TIMERS_AT_ONE_INSTANT = 100_000


_read_virtual_now = operator.attrgetter("_virtual_now")


class _VirtualSelector(selectors.DefaultSelector):
    """Polls the real file descriptors (the loop's self-pipe) without blocking; a wait
    with a timeout becomes a jump of the loop's virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeEventLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        assert self.loop is not None
        if self.loop._other_thread_at_work():
            return self._select_real_time(timeout)
        if timeout is None:
            # Nothing scheduled: only another thread (call_soon_threadsafe) can wake us.
            return super().select(None)
        self.loop._advance(timeout)
        return []

    def _select_real_time(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for real, moving the virtual clock by the real time waited (never past the
        next timer), until something is ready, the timer is due, or no thread is at work."""
        loop = self.loop
        assert loop is not None
        waited = 0.0
        while True:
            step = HOLD_SLICE if timeout is None else min(HOLD_SLICE, timeout - waited)
            start = time.monotonic()
            ready = super().select(step)
            spent = time.monotonic() - start
            if timeout is not None and waited + spent >= timeout:
                loop._advance(timeout - waited)  # the next timer is due
                return ready
            loop._virtual_now += spent
            waited += spent
            if ready:
                return ready
            if not loop._other_thread_at_work():
                if timeout is not None:
                    loop._advance(timeout - waited)  # idle again: jump as usual
                return []


#: set (True) on a thread that only watches the loop (loop_watchdog): it never hands the
#: loop work, so virtual time keeps jumping while it lives
WATCHES_ONLY = "quicsim_watches_only"


class _OrderedTimer(events.TimerHandle):
    """A timer that, due at the same instant as another, runs in the order it was
    scheduled (asyncio's own heap breaks such ties by heap shape). Each run is counted
    against the instant it runs at, so a clock that stopped is noticed."""

    __slots__ = ("_seq",)

    def __init__(self, seq: int, *args: Any) -> None:
        super().__init__(*args)
        self._seq = seq

    def _run(self) -> None:
        loop = self._loop
        if loop._virtual_now != loop._timer_instant:
            loop._timer_instant, loop._timers_at_instant = loop._virtual_now, 0
        loop._timers_at_instant += 1
        if loop._timers_at_instant >= TIMERS_AT_ONE_INSTANT:
            if loop._stopped_by is not None:
                return  # the run is a hang already: its cleanup must not spin here too
            loop.clock_stopped(f"{TIMERS_AT_ONE_INSTANT} timers ran at one instant, the last one "
                               f"{format_helpers._format_callback_source(self._callback, self._args)}")
        super()._run()

    def __lt__(self, other: events.TimerHandle) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self._when, self._seq) < (other._when, other._seq)
        return super().__lt__(other)


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` is virtual and starts at 0; idle time costs nothing."""

    def __init__(self, budget: float | None = None) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0
        #: virtual seconds the run may last; past them the loop raises VirtualTimeExceeded
        self.budget = budget
        self.exceeded = False
        self._timer_seq = itertools.count()
        self._jobs_in_flight = 0  # run_in_executor jobs not finished
        self._threads_before = {t.ident for t in threading.enumerate()}
        self._timer_instant = -1.0  # the instant the last timer ran at
        self._timers_at_instant = 0  # timers run one after another at that instant
        self._stopped_by: str | None = None  # what saw the clock stop (clock_stopped)
        self._hang: VirtualTimeExceeded | None = None  # the first, raised again if the cleanup overruns

    def time(self) -> float:
        return self._virtual_now

    def time_reader(self) -> Callable[[], float]:
        """What :meth:`time` returns, read without a Python call: for readers of the clock
        once per record (the tracer)."""
        return functools.partial(_read_virtual_now, self)

    def run_in_executor(self, executor: concurrent.futures.Executor | None, func: Callable[[Unpack[_Ts]], _T],
                        *args: Unpack[_Ts]) -> asyncio.Future[_T]:
        future = super().run_in_executor(executor, func, *args)
        self._jobs_in_flight += 1
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, future: asyncio.Future[Any]) -> None:
        self._jobs_in_flight -= 1

    def _other_thread_at_work(self) -> bool:
        """A job handed to a thread is in flight, or a thread started since the loop was
        made is alive (idle thread-pool workers excepted: their jobs are counted)."""
        if self._jobs_in_flight:
            return True
        if threading.active_count() == 1:
            return False  # the common case: only this thread
        me = threading.get_ident()
        for t in threading.enumerate():
            if t.ident == me or t.ident in self._threads_before:
                continue
            if getattr(t, "_target", None) is _pool_thread._worker:
                continue
            if getattr(t, WATCHES_ONLY, False):
                continue  # a watchdog that only beats through the loop does no work for it
            return True
        return False

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                context: contextvars.Context | None = None) -> events.TimerHandle:
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

    def run_window(self, seconds: float, network: Callable[[events.Handle], bool],
                   before: Callable[[events.Handle], None]) -> None:
        """Move the clock ``seconds`` forward *now*, inside the callback that runs, and run
        what ``network`` claims of what falls due in that time, in order: callbacks ready
        now, then timers by deadline (each run at its own instant, ``before(handle)`` told
        first). The rest (the application's tasks, its timeouts) stays queued for the loop,
        as a thread that was not scheduled meanwhile.

        The loop's own pass over its ready queue is in progress: handles run here are
        cancelled in place once run, never removed, so that pass skips them."""
        until = self._virtual_now + seconds
        while self._stopped_by is None:  # (a clock that stopped ends the window too)
            handle = next((h for h in self._ready if not h._cancelled and network(h)), None)
            if handle is None:
                due = [h for h in self._scheduled if not h._cancelled and h._when <= until and network(h)]
                if not due:
                    break
                handle = min(due)  # by (deadline, scheduling order)
                self._virtual_now = max(self._virtual_now, handle._when)
            before(handle)
            handle._run()
            handle.cancel()  # done: the loop skips it when it comes to it
        self._virtual_now = max(self._virtual_now, until)

    def clock_stopped(self, what: str) -> None:
        """``what`` (a timer, named) fired again and again without the clock moving: the
        run is stuck. It stops at the loop's next turn with :class:`VirtualClockStopped`."""
        if self._stopped_by is None:
            self._stopped_by = f"the virtual clock stopped moving at t = {self._virtual_now:.6f} s: {what}"

    def _run_once(self) -> None:
        super()._run_once()  # type: ignore[misc]
        if self._stopped_by is not None and not self.exceeded:
            self.exceeded = True
            self.budget = self._virtual_now + CLEANUP_SECONDS  # the cleanup's time, as after a budget
            # Out of run_forever: the run stops here, a hang that names the timer.
            self._hang = VirtualClockStopped(self._stopped_by)
            raise self._hang

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds + STEP_PAST
        if self.budget is not None and self._virtual_now > self.budget:
            budget, self.budget = self.budget, self._virtual_now + CLEANUP_SECONDS
            self.exceeded = True
            # Out of run_forever: the run stops here; the cleanup gets a little more time.
            self._hang = self._hang or VirtualTimeExceeded(f"the run passed its budget of {budget:g} s of virtual time")
            raise self._hang


def run_virtual(coro: Coroutine[Any, Any, _T], seed: int | None = None, budget: float | None = None) -> _T:
    """Run ``coro`` to completion on a fresh virtual-time loop; with ``seed``, aioquic's
    randomness in the run is drawn from it (:mod:`quicsim.transport.seeded`); past
    ``budget`` virtual seconds, raise :class:`VirtualTimeExceeded`."""
    from .seeded import seeded

    def make_loop() -> VirtualTimeEventLoop:
        loop = VirtualTimeEventLoop(budget)
        if budget is not None:
            # A run stopped by its budget leaves tasks behind on purpose: no noise about them.
            loop.set_exception_handler(_quiet_after_budget)
        return loop

    with seeded(seed) if seed is not None else contextlib.nullcontext():
        with asyncio.Runner(loop_factory=make_loop) as runner:
            return runner.run(coro)


def _quiet_after_budget(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if getattr(loop, "exceeded", False):
        return
    loop.default_exception_handler(context)

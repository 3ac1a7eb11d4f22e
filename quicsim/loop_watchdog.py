"""A scenario body that never yields stops the event loop, and with it every timeout
the loop would fire. A thread watches that the loop keeps turning while the body runs;
once it has been stuck longer than the scenario's timeout, the watchdog notes where the
body was and raises :class:`BodyBlocked` in the loop's thread, so the run ends as a
``hang`` that names the place (and a body that blocked that long and then returned
does not pass either).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import threading
import time
from types import FrameType
from typing import Any

import aioquic

from .transport.virtual_loop import WATCHES_ONLY

#: where the loop's own work runs: the exception is raised only while the body's code
#: (or a handler's, or what they called) is running, never inside the loop, quicsim or aioquic
_INNER = tuple(os.path.dirname(module.__file__ or "") + os.sep for module in (asyncio, aioquic, sys.modules[
    __name__.rsplit(".", 1)[0]]))


#: wall seconds without a turn of the loop after Ctrl-C before the body is stopped in place
STOP_SECONDS = 0.5


class BodyBlocked(BaseException):
    """Raised in a scenario body that kept the event loop from turning past its timeout.
    (A BaseException: ``except Exception`` in the body must not swallow it.)"""


def _place(frame: FrameType | None) -> str | None:
    """The innermost frame outside the loop, quicsim and aioquic: file:line in function."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_INNER) and not filename.startswith("<"):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return None


def in_user_code(frame: FrameType | None) -> bool:
    """``frame`` runs the application's code (a body, a handler), not the loop's own."""
    return frame is not None and not frame.f_code.co_filename.startswith(_INNER)


class LoopWatchdog:
    """Beats through ``loop`` every ``interval`` s (wall clock); a loop that has not run a
    beat for ``limit`` s is blocked: ``blocked`` then says for how long and where."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: float, interval: float | None = None) -> None:
        self.loop = loop
        self.limit = limit
        self.interval = interval if interval is not None else min(0.25, limit / 4)
        self.thread_id = threading.get_ident()  # the loop's thread (made in it)
        self.blocked: str | None = None  # "at file:line in f" (or ""), once seen
        self.longest = 0.0  # the longest the loop went without a beat, in seconds
        self._last = time.monotonic()
        self._raised = False
        self._stop_requested = False  # Ctrl-C: stop the body as soon as it is seen stuck
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="quicsim-loop-watchdog", daemon=True)
        setattr(self._thread, WATCHES_ONLY, True)  # the virtual clock keeps jumping while it lives

    def __enter__(self) -> "LoopWatchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        # The last stretch, if the body returned from a block the thread did not see end.
        self._note(time.monotonic() - self._last, None)

    def request_stop(self) -> None:
        """Ctrl-C: a cancellation cannot reach a body that does not yield; stop it in place
        once the loop has not turned for ``STOP_SECONDS``."""
        self._stop_requested = True

    def stuck_for(self) -> float:
        """Seconds since the loop last ran a beat."""
        return time.monotonic() - self._last

    def _beat(self) -> None:
        now = time.monotonic()
        self._note(now - self._last, None)
        self._last = now

    def _note(self, gap: float, place: str | None) -> None:
        self.longest = max(self.longest, gap)
        if gap > self.limit and self.blocked is None:
            self.blocked = f" at {place}" if place else ""

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.loop.call_soon_threadsafe(self._beat)
            except RuntimeError:
                return  # the loop closed
            gap = self.stuck_for()
            over = gap > self.limit
            if self._raised or not (over or (self._stop_requested and gap > STOP_SECONDS)):
                continue
            frame = sys._current_frames().get(self.thread_id)
            if not in_user_code(frame):
                continue  # inside the loop or quicsim: wait for the body's own code
            if over:
                self._note(gap, _place(frame))
            self._raised = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id), ctypes.py_object(BodyBlocked))

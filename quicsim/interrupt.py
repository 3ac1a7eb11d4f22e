"""Ctrl-C for the command line: the first one stops the work cleanly (the running scenario
is cancelled and torn down, no further run starts), so the command can print what
finished and exit 130; a second one exits at once.

A ``KeyboardInterrupt`` raised wherever the main thread happens to be can land inside
the event loop's own machinery and print asyncio's tracebacks; a cancellation requested
through the loop cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, TypeVar

if TYPE_CHECKING:  # asyncio is imported when needed: this module must load fast (see exit_quietly)
    import asyncio

T = TypeVar("T")

EXIT_STATUS = 130
#: Loop-clock seconds between cancellations of a run that has not ended yet.
RECANCEL_SECONDS = 0.5


class _State:
    def __init__(self) -> None:
        self.installed = False
        self.requested = False
        self.task: "asyncio.Task[Any] | None" = None
        self.loop: "asyncio.AbstractEventLoop | None" = None
        self.previous: Any = None
        self.on_first: Callable[[], None] | None = None
        #: the watchdog of the scenario body running now (loop_watchdog), if any
        self.watchdog: Any = None


_state = _State()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _state.requested:
        os.write(2, b"quicsim: interrupted twice, stopping at once\n")
        os._exit(EXIT_STATUS)
    _state.requested = True
    if _state.on_first is not None:
        _state.on_first()
    task, loop = _state.task, _state.loop
    if task is not None and loop is not None and not task.done() and not loop.is_closed():
        loop.call_soon_threadsafe(_keep_cancelling, task, loop)
    if _state.watchdog is not None:
        # A body that does not yield would never see the cancellation: stopped in place.
        _state.watchdog.request_stop()


def _keep_cancelling(task: "asyncio.Task[Any]", loop: "asyncio.AbstractEventLoop") -> None:
    """Cancel ``task`` until it ends: on Python 3.11, ``asyncio.wait_for`` swallows a
    cancellation that arrives just as what it waits for completes, and a scenario
    that loops forever would then never stop."""
    if not task.done():
        task.cancel()
        loop.call_later(RECANCEL_SECONDS, _keep_cancelling, task, loop)


def _exit_130(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_STATUS)  # leaves without a traceback, from wherever it lands


def exit_quietly() -> None:
    """Until a command installs its own handling: Ctrl-C exits with 130 and prints nothing
    (set first thing, before the imports that take a noticeable time)."""
    signal.signal(signal.SIGINT, _exit_130)


def install(on_first: Callable[[], None] | None = None) -> None:
    """Take over SIGINT for the rest of the command (``on_first`` runs at the first one)."""
    _state.requested = False
    _state.on_first = on_first
    _state.previous = signal.signal(signal.SIGINT, _on_sigint)
    _state.installed = True


def uninstall() -> None:
    if _state.installed:
        signal.signal(signal.SIGINT, _state.previous)
        _state.installed = False
    _state.on_first = None


@contextlib.contextmanager
def watching(watchdog: Any) -> Iterator[None]:
    """While a scenario body runs: Ctrl-C stops a body that keeps the loop from turning."""
    _state.watchdog = watchdog
    try:
        yield
    finally:
        _state.watchdog = None


def requested() -> bool:
    """True once Ctrl-C was pressed: start nothing new."""
    return _state.installed and _state.requested


def ignore_in_worker() -> None:
    """Pool initializer: worker processes leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def cancellable(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` as the task the first Ctrl-C cancels (when installed)."""
    import asyncio

    if not _state.installed:
        return await awaitable
    if _state.requested:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()  # never started: no "never awaited" warning
        raise asyncio.CancelledError()
    _state.task = asyncio.current_task()
    _state.loop = asyncio.get_running_loop()
    try:
        return await awaitable
    finally:
        _state.task = None
        _state.loop = None

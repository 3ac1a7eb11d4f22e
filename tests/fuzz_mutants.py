"""Known-bad behaviours for the fuzzer's watchdog, switched on inside its worker processes
(``run_campaign(worker_init="tests.fuzz_mutants:NAME")``): a StreamShutdown with
ABORT_RECEIVE spins forever, kills the process (every time, or once in a campaign), or
makes the run's teardown never end."""

from __future__ import annotations

import asyncio
import os

from quicsim import api, pair
from quicsim.enums import StreamShutdownFlags

_original_shutdown = api.Stream.shutdown
_original_pair_shutdown = pair.Pair.shutdown
_poisoned = False


def _on_abort_receive(action):
    def shutdown(self, flags=StreamShutdownFlags.GRACEFUL, error_code=0):
        if int(flags) & int(StreamShutdownFlags.ABORT_RECEIVE):
            action()
        return _original_shutdown(self, flags, error_code)

    api.Stream.shutdown = shutdown


def _spin() -> None:
    while True:
        pass


def spin_forever() -> None:
    _on_abort_receive(_spin)


def exit_process() -> None:
    _on_abort_receive(lambda: os._exit(3))


def endless_teardown() -> None:
    def poison() -> None:
        global _poisoned
        _poisoned = True

    async def shutdown(self, timeout=3.0):
        global _poisoned
        if not _poisoned:
            return await _original_pair_shutdown(self, timeout)
        _poisoned = False
        while True:  # deaf to cancellation: only the virtual-time budget ends this run
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass

    _on_abort_receive(poison)
    pair.Pair.shutdown = shutdown


def unseeded_connection_ids() -> None:
    """aioquic's randomness no longer drawn from the seed: runs stop repeating."""
    from quicsim.transport import seeded

    seeded._OS_VIEW.urandom = os.urandom


def slow_start() -> None:
    """A worker that takes longer to start than a run may take: a loaded machine, a slow
    import. The start is not the first run's time."""
    import time

    time.sleep(4.0)


#: the file whose creation marks :func:`killed_once`'s one death (set in the test's workers)
KILLED_ONCE_FILE = "QUICSIM_TEST_KILLED_ONCE_FILE"


def killed_once() -> None:
    """The first run, of every process that sees the same file, to call StreamShutdown with
    ABORT_RECEIVE has its process killed (SIGKILL, as an out-of-memory kill would); every
    other run goes on untouched: a death that does not repeat."""
    import signal

    path = os.environ[KILLED_ONCE_FILE]

    def kill_first() -> None:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    _on_abort_receive(kill_first)

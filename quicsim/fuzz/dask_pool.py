"""Fuzz runs on a Dask cluster (``quicsim fuzz --scheduler ADDRESS``): the seeds are cut
into shards, each shard runs on a Dask worker under the same watchdog as the local pool
(a :class:`~quicsim.fuzz.watchdog.Sandbox` inside the worker), and the outcomes come back
in seed order, so a campaign's findings do not depend on the cluster's size or speed."""

from __future__ import annotations

import itertools
import multiprocessing
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .. import __version__, interrupt
from ..errors import UsageError
from .watchdog import WALL_BUDGET, Outcome, Sandbox
from ..errors import SchedulerError

if TYPE_CHECKING:
    from distributed import Client, Future

#: seconds to reach the scheduler, and then to see at least one worker
CONNECT_SECONDS = 5.0
#: seeds per Dask task, at most (a shard's outcomes arrive together)
MAX_SHARD = 32
#: after ``deadline + grace``, how long shards may take to come back over the network
RETURN_SLACK = 2.0
#: how often the client looks at Ctrl-C and the deadline while it waits
_POLL_SECONDS = 0.5
_INSTALL = "pip install 'quicsim[dask]'"


# --- on the workers ------------------------------------------------------------------

_idle: dict[tuple[float, str | None], list[Sandbox]] = {}
_idle_lock = threading.Lock()


def run_shard(jobs: list[tuple[Any, ...]], wall_budget: float, init: str | None, deadline_at: float | None,
              grace: float) -> list[Outcome]:
    """Run ``jobs`` in this Dask worker's sandbox; ``deadline_at`` is wall-clock time
    (``time.time()``) because the client's monotonic clock means nothing here."""
    # A nanny starts its worker as a daemonic process, and multiprocessing lets no daemonic
    # process start children. The run processes are daemonic themselves: they end with
    # this worker (and on end-of-file on their pipe), so nothing outlives it.
    multiprocessing.current_process().daemon = False
    deadline = None if deadline_at is None else time.monotonic() + (deadline_at - time.time())
    if deadline is not None and time.monotonic() >= deadline:
        return []  # started too late: no run starts after the deadline
    key = (wall_budget, init)
    with _idle_lock:
        pool = _idle.setdefault(key, [])
        sandbox = pool.pop() if pool else None
    if sandbox is None:
        sandbox = Sandbox(1, wall_budget, init)
    try:
        return list(sandbox.run(jobs, deadline=deadline, grace=grace))
    finally:
        with _idle_lock:  # kept for the next shard: a worker's start costs about a second
            _idle[key].append(sandbox)


def worker_version() -> str:
    return __version__


# --- on the client -------------------------------------------------------------------


class DaskPool:
    """Runs fuzz jobs on the cluster whose scheduler is at ``address``; used like a
    :class:`Sandbox` (a context manager whose :meth:`run` yields outcomes)."""

    def __init__(self, address: str, wall_budget: float = WALL_BUDGET, init: str | None = None,
                 expected_jobs: int | None = None, connect_timeout: float = CONNECT_SECONDS) -> None:
        self.address = address
        self.wall_budget = wall_budget
        self.init = init
        self.expected_jobs = expected_jobs
        self.connect_timeout = connect_timeout
        self.client: Client | None = None
        self._threads = 1
        self._threads_checked = 0.0
        self._pending: dict[Future[Any], list[tuple[int, tuple[Any, ...]]]] = {}  # shard tasks not back yet
        self._stopped = False

    def __enter__(self) -> "DaskPool":
        try:
            from distributed import Client
        except ImportError:
            raise SchedulerError(f"--scheduler needs dask.distributed, which is not installed: {_INSTALL}") from None
        _check_address(self.address)
        try:
            self.client = Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except Exception as exc:  # OSError (unreachable), ValueError/TypeError (malformed address)
            raise SchedulerError(f"--scheduler {self.address}: cannot connect: {_one_line(exc)}") from None
        try:
            self._check_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close(timeout=self.connect_timeout)
            except Exception:  # the scheduler is gone already
                pass

    def _check_workers(self) -> None:
        assert self.client is not None
        try:
            self.client.wait_for_workers(1, timeout=self.connect_timeout)
        except TimeoutError:
            raise SchedulerError(f"--scheduler {self.address}: no worker joined within {self.connect_timeout:g} s "
                                 f"(start one: dask worker {self.address})") from None
        try:
            versions = self.client.run(worker_version)
        except Exception as exc:  # e.g. quicsim is not importable there
            raise SchedulerError(f"--scheduler {self.address}: the workers cannot run quicsim "
                                 f"({_one_line(exc)}); install quicsim {__version__} on every worker") from None
        for worker, version in sorted(versions.items()):
            if version != __version__:
                raise SchedulerError(f"--scheduler {self.address}: worker {worker} has quicsim {version}, "
                                     f"this is {__version__}; install the same version on every worker")
        self._refresh_threads(force=True)

    def _refresh_threads(self, force: bool = False) -> int:
        """The cluster's worker threads (workers may join or leave), asked at most once a second."""
        now = time.monotonic()
        if self.client is not None and (force or now - self._threads_checked >= 1.0):
            self._threads_checked = now
            try:
                self._threads = max(1, sum(self.client.nthreads().values()))
            except Exception:  # the scheduler is unreachable for now: waiting will say so
                if force:
                    raise
        return self._threads

    def run(self, jobs: Iterable[tuple[Any, ...]], deadline: float | None = None,
            grace: float = 3.0) -> Iterator[Outcome]:
        """Outcomes in job order. No run starts after ``deadline`` (``time.monotonic()``);
        runs in flight at ``deadline + grace`` are stopped and reported ``unfinished``;
        shards not back ``RETURN_SLACK`` seconds later are canceled and not reported."""
        from distributed import wait

        client = self.client
        assert client is not None, "DaskPool used outside its with-block"
        deadline_at = None if deadline is None else time.time() + (deadline - time.monotonic())
        limit = None if deadline is None else deadline + grace + RETURN_SLACK
        threads = self._refresh_threads()
        size = MAX_SHARD if self.expected_jobs is None else max(1, min(MAX_SHARD, self.expected_jobs // (4 * threads)))
        campaign = uuid.uuid4().hex[:8]
        numbered = enumerate(jobs)
        self._pending, self._stopped = {}, False
        resolved: dict[int, Outcome | None] = {}  # job number -> its outcome (None: never ran)
        emitted = 0
        exhausted = False

        def submit(shard: list[tuple[int, tuple[Any, ...]]]) -> None:
            first, last = shard[0][1][1], shard[-1][1][1]
            future = client.submit(run_shard, [job for _, job in shard], self.wall_budget, self.init, deadline_at,
                                   grace, key=f"quicsim-fuzz-{campaign}-seeds-{first}-{last}", pure=False)
            self._pending[future] = shard

        try:
            while True:
                while not exhausted and len(self._pending) < 2 * self._refresh_threads() + 1 and (
                        deadline is None or time.monotonic() < deadline):
                    shard = list(itertools.islice(numbered, size))
                    if not shard:
                        exhausted = True
                        break
                    submit(shard)
                if not self._pending:
                    break
                timeout = _POLL_SECONDS if limit is None else max(0.0, min(_POLL_SECONDS, limit - time.monotonic()))
                try:
                    with client.as_current():  # wait() asks for the current client
                        done = wait(list(self._pending), timeout=timeout, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                except Exception as exc:  # the connection to the scheduler is gone
                    self._stop(f"lost the scheduler: {_one_line(exc)}")
                    done = set()
                for future in done:
                    for one in self._settle(future, self._pending.pop(future), resolved):
                        submit([one])
                if self._stopped:  # what finished is kept; nothing more is waited for
                    exhausted = True
                    self._cancel()
                while emitted in resolved:
                    outcome = resolved.pop(emitted)
                    emitted += 1
                    if outcome is not None:
                        yield outcome
                if interrupt.requested():
                    raise KeyboardInterrupt
                if limit is not None and time.monotonic() >= limit:
                    break
            # What came back after a gap (a shard canceled at the time limit), in order.
            for number in sorted(resolved):
                outcome = resolved[number]
                if outcome is not None:
                    yield outcome
        finally:
            self._cancel()

    def _settle(self, future: Future[Any], shard: list[tuple[int, tuple[Any, ...]]],
                resolved: dict[int, Outcome | None]) -> list[tuple[int, tuple[Any, ...]]]:
        """Record a finished shard's outcomes; return the jobs to run again, one per task."""
        from distributed import KilledWorker

        if future.status == "finished":
            try:
                by_seed = {o.job[1]: o for o in future.result()}
            except Exception as exc:
                self._stop(f"seeds {shard[0][1][1]}..{shard[-1][1][1]} did not come back: {_one_line(exc)}")
                return []
            for number, job in shard:  # a job missing did not start before the deadline
                resolved[number] = by_seed.get(job[1])
            return []
        error = future.exception() if future.status == "error" else None
        if isinstance(error, KilledWorker):  # something killed the Dask worker itself, not just a run
            if len(shard) > 1:  # which seed did it: one task each
                return shard
            number, job = shard[0]
            resolved[number] = Outcome(job, failure="crash", detail=f"the Dask workers running it died "
                                                                   f"({_one_line(error)})")
            return []
        # The task itself failed (a worker cannot import what the run needs, the scheduler
        # was lost): stop here and report what finished.
        self._stop(f"seeds {shard[0][1][1]}..{shard[-1][1][1]} could not run: "
                   f"{_one_line(error) if error is not None else future.status}")
        return []

    def _stop(self, why: str) -> None:
        """End the campaign early, saying why on stderr; what finished is still reported."""
        if not self._stopped:
            self._stopped = True
            print(f"quicsim: fuzz --scheduler {self.address}: stopping early: {why}", file=sys.stderr)

    def _cancel(self) -> None:
        pending = list(self._pending)
        self._pending = {}
        if pending and self.client is not None:
            try:
                self.client.cancel(pending)
            except Exception:  # the scheduler is gone: nothing left to cancel there
                pass


def _check_address(address: str) -> None:
    """Reject an address the client cannot even try (a half-built client would stall the
    interpreter's exit for 20 s and print a traceback)."""
    from distributed import Security
    from distributed.comm import get_address_host_port, parse_address

    try:
        get_address_host_port(address)
    except ValueError as exc:
        raise SchedulerError(f"--scheduler {address}: {exc} (expected tcp://HOST:PORT)") from None
    scheme = parse_address(address)[0]
    if scheme in ("tls", "wss") and Security().get_connection_args("client")["ssl_context"] is None:
        raise SchedulerError(f"--scheduler {address}: {scheme}:// needs Dask's TLS settings "
                             f"(distributed.comm.tls.* in the Dask configuration)")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

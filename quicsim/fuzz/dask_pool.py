"""Fuzz runs on a Dask cluster (``quicsim fuzz --scheduler ADDRESS``): the seeds are cut
into shards, each shard runs on a Dask worker under the same watchdog as the local pool
(a :class:`~quicsim.fuzz.watchdog.Sandbox` inside the worker), and the outcomes come back
in seed order, so a campaign's findings do not depend on the cluster's size or speed.
A run whose process dies is run again on another worker (``MAX_RERUNS`` times) before it
is a ``crash``; losing the scheduler ends the campaign with one line."""

from __future__ import annotations

import itertools
import logging
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

    from .watchdog import _Worker

#: seconds to reach the scheduler, and then to see at least one worker
CONNECT_SECONDS = 5.0
#: seeds per Dask task, at most (a shard's outcomes arrive together)
MAX_SHARD = 32
#: after ``deadline + grace``, how long shards may take to come back over the network
RETURN_SLACK = 2.0
#: how often the client looks at Ctrl-C and the deadline while it waits
_POLL_SECONDS = 0.5
#: how many times a run whose process died is run again (on other workers when there are)
MAX_RERUNS = 2
#: a run's failure, on its way back from a worker, when its process died under a live worker
DIED = "died"
_INSTALL = 'pip install ".[dask]" (from the quicsim clone)'


# --- on the workers ------------------------------------------------------------------

class _ShardSandbox(Sandbox):
    """A sandbox that tells a run whose process died (killed, out of memory, ``os._exit``)
    from one that raised or hung: the first is worth running again elsewhere."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.died: dict[int, int | None] = {}  # id() of a job whose process died -> its exit code

    def _death(self, worker: _Worker) -> str:
        detail = super()._death(worker)  # (waits for the process's exit code)
        self.died[id(worker.job)] = worker.process.exitcode
        return detail


_idle: dict[tuple[float, str | None], list[_ShardSandbox]] = {}
_idle_lock = threading.Lock()


def run_shard(jobs: list[tuple[Any, ...]], wall_budget: float, init: str | None, deadline_at: float | None,
              grace: float) -> tuple[str, list[Outcome]]:
    """Run ``jobs`` in this Dask worker's sandbox: (this worker's address, outcomes), where a
    run whose process died is a :data:`DIED` failure. ``deadline_at`` is wall-clock time
    (``time.time()``) because the client's monotonic clock means nothing here."""
    from distributed import get_worker

    address = get_worker().address
    # A nanny starts its worker as a daemonic process, and multiprocessing lets no daemonic
    # process start children. The run processes are daemonic themselves: they end with
    # this worker (and on end-of-file on their pipe), so nothing outlives it.
    multiprocessing.current_process().daemon = False
    deadline = None if deadline_at is None else time.monotonic() + (deadline_at - time.time())
    if deadline is not None and time.monotonic() >= deadline:
        return address, []  # started too late: no run starts after the deadline
    key = (wall_budget, init)
    with _idle_lock:
        pool = _idle.setdefault(key, [])
        sandbox = pool.pop() if pool else None
    if sandbox is None:
        sandbox = _ShardSandbox(1, wall_budget, init)
    sandbox.died.clear()
    try:
        outcomes = list(sandbox.run(jobs, deadline=deadline, grace=grace))
        for outcome in outcomes:
            if outcome.failure == "crash" and id(outcome.job) in sandbox.died:
                outcome.failure, outcome.detail = DIED, f"exit code {sandbox.died[id(outcome.job)]}"
        return address, outcomes
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
        #: seeds whose run process died and that were run again, with the workers it died on
        self.reruns: dict[int, list[str]] = {}
        #: why the campaign stopped before its last job ("" when it did not)
        self.stopped_why = ""
        self._threads = 1
        self._threads_checked = 0.0
        self._workers: list[str] = []
        self._pending: dict[Future[Any], list[tuple[int, tuple[Any, ...]]]] = {}  # shard tasks not back yet
        self._deaths: dict[int, list[tuple[str, str]]] = {}  # job number -> (worker, why) of each death
        self._stopped = False
        self._lost = False
        self._quiet = _QuietAfterLoss(self)

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
        self._quiet.install()
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
        self._quiet.remove()

    def lost_scheduler(self) -> bool:
        """Whether the connection to the scheduler broke (the client is reconnecting or gave up)."""
        if not self._lost and self.client is not None and self.client.status in ("connecting", "closed"):
            self._lost = True
        return self._lost

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
                nthreads = self.client.nthreads()
                self._workers = sorted(nthreads)
                self._threads = max(1, sum(nthreads.values()))
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
        self._pending, self._deaths, self.reruns, self._stopped, self.stopped_why = {}, {}, {}, False, ""
        resolved: dict[int, Outcome | None] = {}  # job number -> its outcome (None: never ran)
        emitted = 0
        exhausted = False

        def submit(shard: list[tuple[int, tuple[Any, ...]]]) -> None:
            first, last = shard[0][1][1], shard[-1][1][1]
            key = f"quicsim-fuzz-{campaign}-seeds-{first}-{last}"
            where: dict[str, Any] = {}
            deaths = self._deaths.get(shard[0][0], []) if len(shard) == 1 else []
            if deaths:  # a run again after its process died: on a worker it did not die on, if any
                key += f"-rerun-{len(deaths)}"
                others = [w for w in self._workers if w not in {worker for worker, _ in deaths}]
                if others:
                    where = {"workers": others, "allow_other_workers": True}
            future = client.submit(run_shard, [job for _, job in shard], self.wall_budget, self.init, deadline_at,
                                   grace, key=key, pure=False, **where)
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
                    self._stop(self._lost_line() if self.lost_scheduler() else f"lost the scheduler: {_one_line(exc)}")
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

        seeds = f"seeds {shard[0][1][1]}..{shard[-1][1][1]}"
        if future.status == "finished":
            try:
                worker, outcomes = future.result()
            except Exception as exc:
                self._stop(self._lost_line() if self.lost_scheduler()
                           else f"{seeds} did not come back: {_one_line(exc)}")
                return []
            by_seed = {o.job[1]: o for o in outcomes}
            again = []
            for number, job in shard:  # a job missing did not start before the deadline
                outcome = by_seed.get(job[1])
                deaths = self._deaths.get(number)
                if outcome is not None and outcome.failure == DIED:
                    deaths = self._deaths.setdefault(number, [])
                    deaths.append((worker, outcome.detail))
                    if len(deaths) <= MAX_RERUNS:
                        again.append((number, job))
                        continue
                    outcome = Outcome(job, failure="crash", detail=_died(deaths))
                elif deaths and outcome is None:
                    outcome = Outcome(job, failure="unfinished", detail=f"{_died(deaths)}; the time budget ended "
                                                                        f"before it could run again")
                elif deaths:
                    self.reruns[job[1]] = [w for w, _ in deaths]
                resolved[number] = outcome
            return again
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
        self._stop(self._lost_line() if self.lost_scheduler() else
                   f"{seeds} could not run: {_one_line(error) if error is not None else future.status}")
        return []

    def _lost_line(self) -> str:
        return "lost the connection to the scheduler"

    def _stop(self, why: str) -> None:
        """End the campaign early, saying why on stderr; what finished is still reported."""
        if not self._stopped:
            self._stopped, self.stopped_why = True, why
            print(f"quicsim: fuzz --scheduler {self.address}: stopping early: {why}; what finished is reported",
                  file=sys.stderr)

    def _cancel(self) -> None:
        pending = list(self._pending)
        self._pending = {}
        if pending and self.client is not None and not self.lost_scheduler():
            try:
                self.client.cancel(pending)
            except Exception:  # the scheduler is gone: nothing left to cancel there
                pass


class _QuietAfterLoss(logging.Filter):
    """Drops what ``distributed`` logs once this pool's connection to the scheduler broke
    (reconnect attempts, their cancellation's tracebacks): the campaign says it in one line.
    Sits on the handlers that ``distributed``'s records reach; everything else passes."""

    def __init__(self, pool: DaskPool) -> None:
        super().__init__()
        self.pool = pool
        self.handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        distributed = record.name == "distributed" or record.name.startswith("distributed.")
        return not (distributed and self.pool.lost_scheduler())

    def install(self) -> None:
        logger: logging.Logger | None = logging.getLogger("distributed")
        while logger is not None:
            for handler in logger.handlers:
                if handler not in self.handlers:
                    handler.addFilter(self)
                    self.handlers.append(handler)
            logger = logger.parent if logger.propagate else None
        if not self.handlers and logging.lastResort is not None:  # where records with no handler go
            logging.lastResort.addFilter(self)
            self.handlers.append(logging.lastResort)

    def remove(self) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        self.handlers = []


def _died(deaths: list[tuple[str, str]]) -> str:
    """What a run whose process died says: how many times, where, and how the last one ended."""
    workers = sorted({worker for worker, _ in deaths})
    codes = ", ".join(dict.fromkeys(why for _, why in deaths))
    times = "once" if len(deaths) == 1 else f"{len(deaths)} times"
    return f"its run process died ({codes}) {times}, on Dask worker{'s' if len(workers) > 1 else ''} " \
           f"{', '.join(workers)}"


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

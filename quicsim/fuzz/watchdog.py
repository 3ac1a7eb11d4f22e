"""Fuzz runs in worker processes under a watchdog. A run that exceeds its wall-clock
budget is killed and reported as a ``hang`` (one that exceeds its virtual-time budget
stops itself: see :func:`quicsim.runner.virtual_budget`); a worker that dies is reported
with the run it was doing and replaced; nothing is waited on past a deadline."""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Iterable, Iterator

#: wall-clock seconds one fuzz run may take (a clean run takes a few dozen milliseconds)
WALL_BUDGET = 30.0
#: how long a worker gets to exit when asked, before it is killed
_EXIT_GRACE = 1.0
#: how long a new worker may take to start (imports, ``init``) on top of its first run's budget
_START_BUDGET = 60.0


@dataclass
class Outcome:
    """What became of one job: its value, or ``failure`` (``hang``, ``crash``,
    ``unfinished``) with a line saying why."""

    job: tuple[Any, ...]
    value: Any = None
    failure: str | None = None
    detail: str = ""


def execute(job: tuple[Any, ...]) -> Any:
    """Run one job (in a worker): ``("seed", seed, max_ops, faults, check_determinism,
    swarm, backend)`` -> (seed, signature, ops, detail, probes); ``("program", program,
    faults, determinism, backend)`` and ``("file", path, determinism, backend)`` ->
    signature (with ``determinism``: whether two runs repeat,
    :data:`~quicsim.fuzz.engine.NONDETERMINISTIC` when they do not); ``("repeat",
    program, faults, backend, sig)`` -> ``sig`` when enough repeated runs fail so
    (:func:`~quicsim.fuzz.engine.repeat_signature`); ``("rate", path, backend, sig,
    runs)`` -> how many of ``runs`` runs of the file (seed after seed) failed so."""
    from .engine import (NONDETERMINISTIC, check_seed, determinism_of, file_signature, repeat_signature,
                         run_program, signature)

    kind = job[0]
    if kind == "seed":
        return check_seed(*job[1:])
    if kind == "program":
        _, program, faults, determinism, backend = job
        if determinism:
            return NONDETERMINISTIC if determinism_of(program, faults) is not None else None
        return signature(run_program(program, faults, backend=backend))
    if kind == "repeat":
        _, program, faults, backend, sig = job
        return repeat_signature(lambda: signature(run_program(program, faults, backend=backend)), sig)
    if kind == "file":
        _, path, determinism, backend = job
        if determinism:
            return NONDETERMINISTIC if determinism_of(None, path=path) is not None else None  # type: ignore[arg-type]
        return file_signature(path, backend)
    if kind == "rate":
        _, path, backend, sig, runs = job
        from ..loader import load_scenarios

        first = load_scenarios([str(path)])[0].seed
        return sum(file_signature(path, backend, first + n) == sig for n in range(runs))
    raise ValueError(f"unknown job {job!r}")


def _serve(conn: Any, init: str | None) -> None:
    """A worker's loop: jobs in, ("ok", value) or ("error", text) out, None to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if init:
        module, _, name = init.partition(":")
        getattr(importlib.import_module(module), name)()
    conn.send(("ready", None))  # the first run's budget starts now, not at the spawn
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        try:
            reply = ("ok", execute(job))
        except Exception as exc:  # a job that raises is a finding, not the worker's end
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class _Worker:
    def __init__(self, context: Any, init: str | None) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, init), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[Any, ...] | None = None
        self.started = 0.0
        self.ready = False

    def submit(self, job: tuple[Any, ...]) -> None:
        self.job = job
        self.started = time.monotonic()
        self.conn.send(job)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_EXIT_GRACE)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(_EXIT_GRACE)
        self.kill()


class Sandbox:
    """``jobs`` worker processes (spawned, so a run never shares state with this one).
    ``init`` ("module:function") runs first in each worker."""

    def __init__(self, jobs: int = 1, wall_budget: float = WALL_BUDGET, init: str | None = None) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.init = init
        self.wall_budget = wall_budget
        self.size = jobs
        self.workers: list[_Worker] = []

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers:
            if worker.job is None:
                worker.stop()
            else:
                worker.kill()
        self.workers.clear()

    def run_one(self, job: tuple[Any, ...], deadline: float | None = None) -> Outcome:
        """Run one job and wait for it (not past its budget or ``deadline``)."""
        for outcome in self.run([job], deadline=deadline, grace=0.0):
            return outcome
        return Outcome(job, failure="unfinished", detail="not started: past the deadline")

    def run(self, jobs: Iterable[tuple[Any, ...]], deadline: float | None = None,
            grace: float = 3.0) -> Iterator[Outcome]:
        """Outcomes as jobs finish. No job starts after ``deadline``; jobs still running
        at ``deadline + grace`` are killed and reported ``unfinished``."""
        pending = iter(jobs)
        exhausted = False
        while True:
            now = time.monotonic()
            while not exhausted and (deadline is None or now < deadline):
                worker = self._idle_worker()
                if worker is None:
                    break
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                worker.submit(job)
            busy = [w for w in self.workers if w.job is not None]
            if not busy:
                return
            limit = min(w.started + self._budget(w) for w in busy)
            if deadline is not None:
                limit = min(limit, deadline + grace)
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                         timeout=max(0.0, limit - time.monotonic()))
            now = time.monotonic()
            for worker in busy:
                outcome = self._check(worker, ready, now, deadline, grace)
                if outcome is not None:
                    yield outcome

    def _idle_worker(self) -> _Worker | None:
        for worker in self.workers:
            if worker.job is None:
                return worker
        if len(self.workers) < self.size:
            worker = _Worker(self.context, self.init)
            self.workers.append(worker)
            return worker
        return None

    def _check(self, worker: _Worker, ready: list[Any], now: float, deadline: float | None,
               grace: float) -> Outcome | None:
        job = worker.job
        assert job is not None
        if worker.conn in ready:
            try:
                status, value = worker.conn.recv()
            except (EOFError, OSError):
                return self._replace(worker, Outcome(job, failure="crash", detail=self._death(worker)))
            if status == "ready":
                worker.ready, worker.started = True, now
                return None
            worker.job = None
            if status == "ok":
                return Outcome(job, value=value)
            return Outcome(job, failure="crash", detail=f"the run raised {value}")
        if worker.process.sentinel in ready or not worker.process.is_alive():
            return self._replace(worker, Outcome(job, failure="crash", detail=self._death(worker)))
        if now - worker.started >= self._budget(worker):
            detail = (f"still running after {self.wall_budget:g} s of wall-clock time" if worker.ready
                      else f"its worker process had not started after {self._budget(worker):g} s")
            return self._replace(worker, Outcome(job, failure="hang", detail=detail))
        if deadline is not None and now >= deadline + grace:
            return self._replace(worker, Outcome(job, failure="unfinished", detail="stopped at the time budget"))
        return None

    def _budget(self, worker: _Worker) -> float:
        """A run's wall-clock budget; a worker still starting also gets its start's."""
        return self.wall_budget if worker.ready else self.wall_budget + _START_BUDGET

    def _death(self, worker: _Worker) -> str:
        worker.process.join(_EXIT_GRACE)
        return f"the worker process died (exit code {worker.process.exitcode})"

    def _replace(self, worker: _Worker, outcome: Outcome) -> Outcome:
        """Kill ``worker`` (it is stuck or dead); a fresh one is started when needed."""
        worker.kill()
        self.workers.remove(worker)
        return outcome


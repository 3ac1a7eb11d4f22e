"""A fuzz campaign: seeds ``seed .. seed+runs-1`` in J worker processes under a watchdog
(a run past its budget is a ``hang``, a dead worker a ``crash``, and ``time_budget`` ends
the campaign on time), each new kind of failure shrunk and written as a scenario file."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, cast

from .. import interrupt
from .dask_pool import DaskPool
from .engine import (NO_HANDSHAKE, NONDETERMINISTIC, RATE_RUNS, SHRINK_REPEATS, Finding, for_backend, shrink,
                     write_finding)
from .program import Program, generate
from .watchdog import WALL_BUDGET, Outcome, Sandbox

#: wall-clock seconds spent shrinking one finding, at most
SHRINK_SECONDS = 120.0
#: after the time budget, how long runs in flight (and a shrink) may still take
GRACE_SECONDS = 3.0


@dataclass
class CampaignResult:
    first_seed: int
    runs: int = 0
    ops: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: every failing seed, by kind of failure (the first of each kind is shrunk into a finding)
    failing_seeds: dict[str, list[int]] = field(default_factory=dict)
    elapsed: float = 0.0
    stopped_early: bool = False
    #: Ctrl-C stopped it: what finished is kept and reported
    interrupted: bool = False
    #: seeds whose run was in flight when the time budget ran out (killed, not counted)
    unfinished: list[int] = field(default_factory=list)
    #: seeds whose drawn network kept the handshake from completing (not failures)
    no_handshake: list[int] = field(default_factory=list)
    #: state-coverage probes: hits, and runs that hit each
    probe_hits: Counter[str] = field(default_factory=Counter)
    probe_runs: Counter[str] = field(default_factory=Counter)

    @property
    def seeds(self) -> str:
        return f"{self.first_seed}..{self.first_seed + self.runs - 1}" if self.runs else "none"


def _signature(outcome: Outcome) -> str | None:
    """A job's failure signature: the run's own, or the watchdog's (hang, crash)."""
    if outcome.failure is not None:
        return None if outcome.failure == "unfinished" else outcome.failure
    value = outcome.value
    return cast("str | None", value[1] if isinstance(value, tuple) else value)


def run_campaign(
    *,
    runs: int,
    seed: int = 0,
    jobs: int = 1,
    max_ops: int = 12,
    faults: frozenset[str] = frozenset(),
    out_dir: Path = Path("fuzz-failures"),
    time_budget: float | None = None,
    progress: Callable[[CampaignResult], None] | None = None,
    wall_budget: float = WALL_BUDGET,
    worker_init: str | None = None,
    determinism_every: int = 0,
    scheduler: str | None = None,
    swarm: float = 0.0,
    backend: str = "simulator",
) -> CampaignResult:
    """``worker_init`` ("module:function") runs first in every worker process; with
    ``determinism_every`` N, each seed divisible by N is also run twice and compared;
    ``swarm`` is the fraction of seeds that are swarm runs (:mod:`.swarm`). With
    ``scheduler`` (a Dask scheduler's address) the runs go to that cluster instead of
    ``jobs`` local processes; shrinking stays here. ``backend="msquic"`` runs every
    program on the real library (loopback UDP, real threads: no determinism check)."""
    result = CampaignResult(first_seed=seed)
    started = time.monotonic()
    deadline = started + time_budget if time_budget is not None else None
    shrunk: set[str] = set()
    if backend != "simulator":
        determinism_every = 0  # real threads do not repeat byte for byte
    jobs_iter = (("seed", s, max_ops, faults, bool(determinism_every) and s % determinism_every == 0, swarm,
                  backend) for s in range(seed, seed + runs))
    if scheduler is None:
        pool: Sandbox | DaskPool = Sandbox(jobs, wall_budget, worker_init)
    else:
        pool = DaskPool(scheduler, wall_budget, worker_init, expected_jobs=runs)
    with pool as sandbox, Sandbox(1, wall_budget, worker_init) as shrinker:
        try:
            for outcome in sandbox.run(jobs_iter, deadline=deadline, grace=GRACE_SECONDS):
                if interrupt.requested():  # Ctrl-C: keep what finished, start nothing new
                    result.interrupted = True
                    break
                run_seed = outcome.job[1]
                if outcome.failure == "unfinished":
                    result.unfinished.append(run_seed)
                    continue
                sig = _signature(outcome)
                if sig == NO_HANDSHAKE:
                    result.no_handshake.append(run_seed)
                    sig = None
                result.runs += 1
                if outcome.failure is None:
                    result.ops += outcome.value[2]
                    result.probe_hits.update(outcome.value[4])
                    result.probe_runs.update(outcome.value[4].keys())
                else:
                    result.ops += generate(run_seed, max_ops, swarm).api_op_count()
                if sig is not None:
                    result.failures[sig] += 1
                    result.failing_seeds.setdefault(sig, []).append(run_seed)
                    if sig not in shrunk:
                        shrunk.add(sig)
                        detail = outcome.detail or (outcome.value[3] if outcome.failure is None else "")
                        result.findings.append(_shrink_and_write(run_seed, sig, detail, max_ops, faults,
                                                                 out_dir, shrinker, deadline, swarm, backend))
                result.elapsed = time.monotonic() - started
                if progress is not None:
                    progress(result)
        except KeyboardInterrupt:  # Ctrl-C without the CLI's handler: keep what finished
            result.interrupted = True
    result.stopped_early = result.runs < runs
    result.elapsed = time.monotonic() - started
    return result


def _shrink_and_write(run_seed: int, sig: str, detail: str, max_ops: int, faults: frozenset[str], out_dir: Path,
                      shrinker: Sandbox, deadline: float | None, swarm: float = 0.0,
                      backend: str = "simulator") -> Finding:
    program = for_backend(generate(run_seed, max_ops, swarm), backend)
    finding = Finding(run_seed, sig, program.api_op_count(), program, detail=detail)
    real = backend != "simulator"
    limit = time.monotonic() + (SHRINK_SECONDS * SHRINK_REPEATS if real else SHRINK_SECONDS)
    if deadline is not None:
        limit = min(limit, deadline + GRACE_SECONDS)

    determinism = sig == NONDETERMINISTIC

    def outcome(candidate: Program) -> str | None:
        if real:  # not replayable: enough of several runs must fail so (engine.SHRINK_NEEDED)
            return _signature(shrinker.run_one(("repeat", candidate, faults, backend, sig), deadline=limit))
        return _signature(shrinker.run_one(("program", candidate, faults, determinism, backend), deadline=limit))

    # Re-check on its own: a simulator run is deterministic, so the failure must repeat;
    # on the library it must repeat often enough to be worth a repro.
    if outcome(program) != sig:
        return finding
    finding.program = shrink(program, sig, faults, outcome=outcome, deadline=limit)
    finding.path = write_finding(finding, out_dir, faults, backend)
    if real:
        failed = shrinker.run_one(("rate", str(finding.path), backend, sig, RATE_RUNS), deadline=limit)
        if failed.failure is None:
            finding.rate = (failed.value, RATE_RUNS)
            write_finding(finding, out_dir, faults, backend, finding.rate)
        finding.reproduced = bool(finding.rate and finding.rate[0])
        return finding
    finding.reproduced = _signature(shrinker.run_one(("file", str(finding.path), determinism, backend),
                                                     deadline=limit)) == sig
    return finding

"""A fuzz campaign: seeds ``seed .. seed+runs-1`` in J worker processes, a progress bar,
each new kind of failure shrunk and written as a scenario file, and a summary."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Generator

from .. import interrupt
from .engine import Finding, check_seed, reproduces, run_program, shrink, signature, write_finding
from .program import generate


@dataclass
class CampaignResult:
    first_seed: int
    runs: int = 0
    ops: int = 0
    failures: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    elapsed: float = 0.0
    stopped_early: bool = False
    interrupted: bool = False

    @property
    def seeds(self) -> str:
        return f"{self.first_seed}..{self.first_seed + self.runs - 1}" if self.runs else "none"


def _results(seeds: range, jobs: int, max_ops: int,
             faults: frozenset[str]) -> Generator[tuple[int, str | None, int], None, None]:
    work = partial(check_seed, max_ops=max_ops, faults=faults)
    if jobs <= 1:
        for seed in seeds:
            yield work(seed)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=interrupt.ignore_in_worker) as pool:
        yield from pool.imap(work, seeds, chunksize=4)


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
) -> CampaignResult:
    result = CampaignResult(first_seed=seed)
    started = time.monotonic()
    shrunk: set[str] = set()
    results = _results(range(seed, seed + runs), jobs, max_ops, faults)
    while True:
        if interrupt.requested():
            result.interrupted = True
            break
        try:
            run_seed, sig, ops = next(results)
        except StopIteration:
            break
        except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C: keep what finished
            result.interrupted = True
            break
        result.runs += 1
        result.ops += ops
        if sig is not None:
            result.failures[sig] += 1
            if sig not in shrunk:
                shrunk.add(sig)
                try:
                    result.findings.append(_shrink_and_write(run_seed, sig, max_ops, faults, out_dir))
                except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C while shrinking
                    result.interrupted = True
                    break
        result.elapsed = time.monotonic() - started
        if progress is not None:
            progress(result)
        if time_budget is not None and result.elapsed >= time_budget:
            result.stopped_early = result.runs < runs
            break
    results.close()  # ends the worker pool
    result.elapsed = time.monotonic() - started
    return result


def _shrink_and_write(run_seed: int, sig: str, max_ops: int, faults: frozenset[str], out_dir: Path) -> Finding:
    program = generate(run_seed, max_ops)
    # Re-check in this process: the run is deterministic, so the failure must repeat.
    if signature(run_program(program, faults)) != sig:
        return Finding(run_seed, sig, program.api_op_count(), program)
    small = shrink(program, sig, faults)
    finding = Finding(run_seed, sig, program.api_op_count(), small)
    finding.path = write_finding(finding, out_dir, faults)
    finding.reproduced = reproduces(finding.path, sig)
    return finding

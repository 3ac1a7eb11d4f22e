"""Run fuzz programs on the in-memory link, classify failures, shrink them, and write
the smallest one as a scenario file that ``quicsim run FILE --transport memory`` replays.

On the msquic backend (the real library) programs run over loopback UDP on real
threads: a run is not replayable, so a candidate counts as failing when it fails in
enough of several runs (:func:`repeat_signature`), and the file states its failure rate."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import CodeType
from typing import Any, Callable, cast

from ..loader import load_scenarios
from ..run_options import RunOptions
from ..runner import run_job
from ..scenario_spec import ATTRIBUTE, ScenarioSpec
from .program import PREEMPT_CHOICES, WINDOW_CHOICES, Program, generate
from .render import HEADER, render
from .swarm import describe

_SIZE_STEPS = (0, 1, 100, 1000)


@functools.cache
def _header_code() -> CodeType:
    """HEADER compiled once per process (it is most of each program's source)."""
    return compile(HEADER, "<quicsim fuzz header>", "exec")


def _spec_from_source(source: str, name: str) -> ScenarioSpec:
    """Execute rendered source as a module (no file needed) and return its scenario."""
    module_name = f"quicsim_fuzz_{name}"
    spec = importlib.util.spec_from_loader(module_name, loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    module.__file__ = f"<fuzz {name}>"
    sys.modules[module_name] = module
    try:
        at = source.find(HEADER)
        if at < 0:
            exec(compile(source, module.__file__, "exec"), module.__dict__)
        else:
            # The same statements in the same order: what precedes the header, the header
            # (compiled once), then the program, compiled with its lines numbered as in
            # the full source so a traceback points at the repro file's line.
            before, after = source[:at], source[at + len(HEADER):]
            exec(compile(before, module.__file__, "exec"), module.__dict__)
            exec(_header_code(), module.__dict__)
            padding = "\n" * (before.count("\n") + HEADER.count("\n"))
            exec(compile(padding + after, module.__file__, "exec"), module.__dict__)
    finally:
        sys.modules.pop(module_name, None)
    for value in module.__dict__.values():
        if callable(value) and ATTRIBUTE in getattr(value, "__dict__", {}):
            return cast(ScenarioSpec, value.__dict__[ATTRIBUTE])
    raise RuntimeError("rendered program has no scenario")


def signature(result: dict[str, Any]) -> str | None:
    """What kind of failure a run had (None when it passed); shrinking keeps it equal."""
    if result["passed"]:
        return None
    if result["error"]:
        error = result["error"]
        if error.startswith("hang"):
            return "hang"
        if error.startswith("timed out"):
            return "timeout"
        return "error:" + re.split(r"[:\s]", error, maxsplit=1)[0]
    if result["leaks"]:
        return "leak"
    if result.get("stalled"):
        return "stalled"
    if result["violations"]:
        words = re.sub(r"^\S+ stream \S+: |^\S+: ", "", result["violations"][0])
        return "violation:" + " ".join(words.split()[:3])
    if result.get("datagram_leaks"):
        return "datagram-leak"
    return "fail"


def for_backend(program: Program, backend: str) -> Program:
    """``program`` as it can run on ``backend``: the real library has no preemption
    points, and the slow reader's timers belong to the loop, not to MsQuic's threads."""
    if backend == "simulator":
        return program
    return replace(program, preempt=0.0, preempt_window_ms=0.0, slow_reader=False)


def options_for(backend: str, probes: bool = False) -> RunOptions:
    if backend == "simulator":
        return RunOptions(probes=probes, check_invariants=True)
    return RunOptions(backend=backend)


def run_program(program: Program, faults: frozenset[str] = frozenset(), probes: bool = False,
                backend: str = "simulator") -> dict[str, Any]:
    spec = _spec_from_source(render(program, faults, backend=backend), f"seed{program.seed}")
    return run_job(spec, program.seed, options_for(backend, probes))


#: On the real library: runs of one candidate while shrinking, and how many of them must
#: fail the same way. Two of four keeps candidates that fail about half the time or more
#: (one failing with chance p passes with 1-(1-p)^4-4p(1-p)^3: 0.69 at p=0.5, 0.18 at
#: p=0.2), so shrinking does not trade a frequent failure for a rare one; most candidates
#: are decided in two or three runs.
SHRINK_REPEATS = 4
SHRINK_NEEDED = 2
#: runs of the written repro file whose failures give the rate stated in it
RATE_RUNS = 10


def repeat_signature(run: Callable[[], str | None], sig: str, runs: int = SHRINK_REPEATS,
                     needed: int = SHRINK_NEEDED) -> str | None:
    """``sig`` when ``run()`` gives it in at least ``needed`` of ``runs`` runs (stopping as
    soon as that is decided), else None."""
    hits = 0
    for done in range(1, runs + 1):
        if run() == sig:
            hits += 1
            if hits >= needed:
                return sig
        if hits + runs - done < needed:
            return None
    return None


@dataclass
class Finding:
    seed: int
    signature: str
    original_ops: int
    program: Program
    path: Path | None = None
    reproduced: bool = False
    detail: str = ""  # for a hang or a crash: what the watchdog saw
    #: on the real library: (failed, runs) of the written file, run seed after seed
    rate: tuple[int, int] | None = None


def shrink(program: Program, sig: str, faults: frozenset[str], max_runs: int = 300,
           outcome: Callable[[Program], str | None] | None = None, deadline: float | None = None) -> Program:
    """Delta-debug ``program`` while it still fails with ``sig``: drop chunks of
    operations, then simplify what is left (sizes, buffers, flags, codes, network).
    ``outcome(candidate)`` gives a candidate's signature (default: run it here); no
    candidate is tried after ``deadline`` (``time.monotonic()``)."""
    runs = 0
    outcome = outcome or (lambda candidate: signature(run_program(candidate, faults)))

    def still_fails(candidate: Program) -> bool:
        nonlocal runs
        if runs >= max_runs or (deadline is not None and time.monotonic() >= deadline):
            return False
        runs += 1
        return outcome(candidate) == sig

    ops = list(program.ops)
    current = program
    chunks = 2
    while len(ops) >= 2 and runs < max_runs:
        size = max(1, len(ops) // chunks)
        removed = False
        for start in range(0, len(ops), size):
            candidate = replace(current, ops=ops[:start] + ops[start + size:])
            if still_fails(candidate):
                ops, current, removed = candidate.ops, candidate, True
                chunks = max(chunks - 1, 2)
                break
        if not removed:
            if size == 1:
                break
            chunks = min(len(ops), chunks * 2)
    for i in range(len(ops)):
        for simpler in _simpler_ops(ops[i]):
            candidate = replace(current, ops=ops[:i] + [simpler] + ops[i + 1:])
            if still_fails(candidate):
                ops, current = candidate.ops, candidate
                break
    # Settings knobs back to their defaults, one at a time.
    plainer: Callable[[Program], Program]
    for plainer in (lambda p: replace(p, send_buffering=False), lambda p: replace(p, peer_streams=None),
                    lambda p: replace(p, stop_sending=False), lambda p: replace(p, slow_reader=False)):
        candidate = plainer(current)
        if candidate != current and still_fails(candidate):
            current = candidate
    # The lowest preemption chance that still fails (another P is another schedule, so
    # each is tried rather than assumed).
    for lower in (0.0, *PREEMPT_CHOICES):
        if lower >= current.preempt:
            break
        candidate = replace(current, preempt=lower, preempt_window_ms=current.preempt_window_ms if lower else 0.0)
        if still_fails(candidate):
            current = candidate
            break
    # The network window off, else the shortest that still fails.
    for shorter in (0.0, *WINDOW_CHOICES):
        if shorter >= current.preempt_window_ms:
            break
        candidate = replace(current, preempt_window_ms=shorter)
        if still_fails(candidate):
            current = candidate
            break
    for key in list(current.network):
        network = {k: v for k, v in current.network.items() if k != key}
        candidate = replace(current, network=network)
        if still_fails(candidate):
            current = candidate
    return current


def _simpler_ops(op: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    kind = op[0]
    out: list[tuple[Any, ...]] = []
    if kind == "send":
        _, sid, size, nbufs, flags = op
        out += [("send", sid, s, nbufs, flags) for s in _SIZE_STEPS if s < size]
        if nbufs > 1:
            out.append(("send", sid, size, 1, flags))
        if flags:
            out.append(("send", sid, size, nbufs, 0))
    elif kind == "shutdown" and op[3]:
        out.append(("shutdown", op[1], op[2], 0))
    elif kind == "start" and op[2]:
        out.append(("start", op[1], 0))
    elif kind == "on":
        out += [("on", op[1], op[2], inner) for inner in _simpler_ops(op[3])]
        out.append(op[3])  # the same call, made directly instead of from the handler
    elif kind == "sleep" and op[1]:
        out.append(("sleep", 0))
    return out


def write_finding(finding: Finding, out_dir: Path, faults: frozenset[str], backend: str = "simulator",
                  rate: tuple[int, int] | None = None) -> Path:
    """The finding as a scenario file; on the real library ``rate`` (failed, runs) is
    stated in it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", finding.signature.lower()).strip("-")
    where = "" if backend == "simulator" else f"-{backend}"
    path = out_dir / f"fuzz{where}-{slug}-seed{finding.seed}.py"
    doc = (f"Found by quicsim fuzz{' --backend ' + backend if backend != 'simulator' else ''}: seed "
           f"{finding.seed}, failure {finding.signature!r}"
           f"{', faults ' + ', '.join(sorted(faults)) if faults else ''}.\n"
           f"Shrunk from {finding.original_ops} to {finding.program.api_op_count()} API operations.")
    if finding.program.features is not None:
        doc += "\nGenerated as a " + describe(finding.program.features) + "."
    if backend != "simulator":
        doc += ("\nOn the real library a run is not replayable: a candidate was kept while shrinking when it "
                f"failed so in {SHRINK_NEEDED} of {SHRINK_REPEATS} runs.")
        if rate is not None:
            doc += f"\nThis file failed so in {rate[0]} of {rate[1]} runs when it was written."
    path.write_text(render(finding.program, faults, doc=doc, backend=backend))
    return path


def file_signature(path: Path | str, backend: str = "simulator", seed: int | None = None) -> str | None:
    """Run the scenario file the way ``quicsim run`` does: its failure signature."""
    spec = load_scenarios([str(path)])[0]
    return signature(run_job(spec, spec.seed if seed is None else seed, RunOptions(backend=backend)))


def reproduces(path: Path, sig: str) -> bool:
    """Load the written file the way ``quicsim run`` does and check it fails the same way."""
    return file_signature(path) == sig


#: not a failure: the program's drawn network kept the handshake from completing (on a
#: clean network it completes), so none of its operations ran
NO_HANDSHAKE = "no-handshake"


def check_program(program: Program, faults: frozenset[str] = frozenset(), probes: dict[str, Any] | None = None,
                  backend: str = "simulator") -> str | None:
    """The failure signature of one program (None: it passed), or :data:`NO_HANDSHAKE`.
    With ``probes`` (a dict), the run's probe hits are added to it."""
    result = run_program(program, faults, probes=probes is not None and backend == "simulator", backend=backend)
    if probes is not None:
        probes.update(result.get("probes", {}))
    sig = signature(result)
    if sig is not None and result.get("connected") is False and program.network:
        clean = run_program(replace(program, network={}), faults, backend=backend)
        if clean.get("connected"):
            return NO_HANDSHAKE
    return sig


#: the failure of a program that, run twice with its seed, did not repeat byte for byte
NONDETERMINISTIC = "nondeterministic"


def determinism_of(program: Program, faults: frozenset[str] = frozenset(), path: Path | None = None) -> str | None:
    """Run ``program`` (or the scenario file ``path``) twice: None when trace, qlog,
    datagrams and verdict repeat exactly, else the first difference."""
    from ..determinism import check_run

    if path is not None:
        spec = load_scenarios([str(path)])[0]
    else:
        spec = _spec_from_source(render(program, faults), f"seed{program.seed}")
    _, check = check_run(spec, spec.seed if path is not None else program.seed, RunOptions())
    return None if check.identical else check.difference


def check_seed(seed: int, max_ops: int, faults: frozenset[str], check_determinism: bool = False,
               swarm: float = 0.0, backend: str = "simulator") -> tuple[int, str | None, int, str, dict[str, Any]]:
    """One fuzz run: (seed, failure signature or None or NO_HANDSHAKE, API operations,
    detail, probe hits). With ``check_determinism`` a passing program is also run twice
    and compared; ``swarm`` is the fraction of seeds that are swarm runs."""
    program = for_backend(generate(seed, max_ops, swarm), backend)
    probes: dict[str, Any] = {}
    sig = check_program(program, faults, probes, backend)
    detail = ""
    if sig is None and check_determinism:
        difference = determinism_of(program, faults)
        if difference is not None:
            sig, detail = NONDETERMINISTIC, difference
    return seed, sig, program.api_op_count(), detail, probes

"""Same seed, same run: run a memory-transport scenario run twice and compare its JSON
Lines trace, its qlog files, the datagrams on the wire and the verdict, naming the first
difference (``quicsim run --check-determinism``)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .run_options import RunOptions
from .runner import run_job, transport_for
from .scenario_spec import ScenarioSpec

#: result fields that may differ between two identical runs
_UNSTABLE = ("wall_time", "trace")


@dataclass
class DeterminismCheck:
    """The verdict on one seed: identical or not, the first run's digests, the first difference."""

    identical: bool
    digests: dict[str, str] = field(default_factory=dict)  # "trace", "qlog-client", "wire", ... -> sha256
    difference: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "digests": self.digests, "difference": self.difference}


def first_difference(a: list[str], b: list[str], what: str) -> str | None:
    """``"<what> line N: <first run's line> / second run: <line>"``, or None when equal."""
    for number, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            return f"{what} line {number}: {_short(x)} / second run: {_short(y)}"
    if len(a) != len(b):
        number = min(len(a), len(b)) + 1
        longer, which = (a, "first") if len(a) > len(b) else (b, "second")
        return f"{what} line {number}: only the {which} run has it: {_short(longer[number - 1])}"
    return None


def _short(line: str, limit: int = 300) -> str:
    line = line.strip("\x1e\n")
    return line if len(line) <= limit else line[:limit] + " ..."


def run_files(directory: Path, spec: ScenarioSpec, seed: int) -> dict[str, Path]:
    """The files one run wrote into ``directory``, by role, in the order they are compared
    (the trace first: its lines name quicsim's events)."""
    prefix = f"{spec.name}-seed{seed}"
    files = {"trace": directory / f"{prefix}.jsonl"}
    for side in ("client", "server"):
        for path in sorted(directory.glob(f"{prefix}-{side}*.sqlog")):
            files[f"qlog {path.name[len(prefix) + 1:-len('.sqlog')]}"] = path
    files["wire"] = directory / f"{prefix}.wire"
    return {role: path for role, path in files.items() if path.exists()}


def compare_runs(first: Path, second: Path, spec: ScenarioSpec, seed: int) -> DeterminismCheck:
    """Compare the files two runs of ``spec`` with ``seed`` wrote into two directories."""
    a, b = run_files(first, spec, seed), run_files(second, spec, seed)
    check = DeterminismCheck(identical=True)
    for role in [*a, *(r for r in b if r not in a)]:
        if role not in a or role not in b:
            check.identical = False
            check.difference = check.difference or f"{role}: written by the {'first' if role in a else 'second'} run only"
            continue
        data_a, data_b = a[role].read_bytes(), b[role].read_bytes()
        check.digests[role] = hashlib.sha256(data_a).hexdigest()
        if data_a != data_b:
            check.identical = False
            if check.difference is None:
                what = f"{role} ({a[role].name})"
                check.difference = first_difference(data_a.decode().split("\n"), data_b.decode().split("\n"), what)
    return check


def check_run(spec: ScenarioSpec, seed: int, options: RunOptions | None = None,
              run: Callable[..., dict[str, Any]] = run_job) -> tuple[dict[str, Any], DeterminismCheck]:
    """Run ``spec`` with ``seed`` twice and compare. The first run's files go to
    ``options.trace_dir`` when set. Returns the first run's result and the verdict."""
    options = options or RunOptions()
    if transport_for(spec, options) != "memory":
        raise ValueError(f"{spec.name}: only memory-transport runs are deterministic")
    with tempfile.TemporaryDirectory(prefix="quicsim-determinism-") as scratch:
        first_dir = Path(options.trace_dir) if options.trace_dir else Path(scratch) / "first"
        second_dir = Path(scratch) / "second"
        first = run(spec, seed, replace(options, trace_dir=str(first_dir), wire_log=True))
        second = run(spec, seed, replace(options, trace_dir=str(second_dir), wire_log=True))
        check = compare_runs(first_dir, second_dir, spec, seed)
    if check.identical:
        verdict_a = {k: v for k, v in first.items() if k not in _UNSTABLE}
        verdict_b = {k: v for k, v in second.items() if k not in _UNSTABLE}
        for key in verdict_a:
            if verdict_a[key] != verdict_b.get(key):
                check.identical = False
                check.difference = f"result field {key!r}: {verdict_a[key]!r} / second run: {verdict_b.get(key)!r}"
                break
    if not options.trace_dir:
        first["trace"] = None  # it lived in the scratch directory
    return first, check

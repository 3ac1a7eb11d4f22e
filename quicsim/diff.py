"""``quicsim diff``: one scenario on both backends, N runs each, and the sets of outcomes
each side reached, side by side.

An outcome is what the application saw of its own streams (:mod:`quicsim.outcomes`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .outcomes import OutcomeRecorder
from .run_options import RunOptions
from .runner import needs_simulator, run_job
from .scenario_spec import ScenarioSpec

BACKENDS = ("simulator", "msquic")


@dataclass
class Diff:
    scenario: str
    runs: int
    faults: dict[str, list[str]]
    outcomes: dict[str, Counter[str]]

    @property
    def only(self) -> dict[str, list[str]]:
        """Outcomes only one backend reached."""
        sim, lib = (set(self.outcomes[b]) for b in BACKENDS)
        return {"simulator": sorted(sim - lib), "msquic": sorted(lib - sim)}

    @property
    def same(self) -> bool:
        return set(self.outcomes["simulator"]) == set(self.outcomes["msquic"])

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "runs": self.runs, "faults": self.faults, "same": self.same,
                "outcomes": {b: dict(self.outcomes[b].most_common()) for b in BACKENDS},
                "only": self.only}


def diff_scenario(spec: ScenarioSpec, runs: int, faults: frozenset[str] = frozenset(),
                  msquic_lib: str | None = None, seed: int | None = None) -> Diff:
    """Run ``spec`` ``runs`` times on each backend (seeds from its own, or ``seed``);
    ``faults`` are injected on the simulator's side only."""
    first = spec.seed if seed is None else seed
    outcomes: dict[str, Counter[str]] = {b: Counter() for b in BACKENDS}
    for backend in BACKENDS:
        base = RunOptions(backend=backend, msquic_lib=msquic_lib, repeat=1,
                          faults=faults if backend == "simulator" else frozenset())
        if backend == "msquic":
            reason = needs_simulator(spec, base)
            if reason is not None:
                raise ValueError(f"{spec.name} cannot run on the library: {reason}")
        for n in range(runs):
            recorder = OutcomeRecorder()
            result = run_job(spec, first + n, replace(base, observers=(recorder,)))
            outcomes[backend][recorder.outcome(result)] += 1
    return Diff(spec.name, runs, {"simulator": sorted(faults), "msquic": []}, outcomes)


def print_diff(console: Any, diff: Diff) -> None:
    """The outcome sets as a table: each outcome, its count on each side, and which side
    alone reached it."""
    from rich.table import Table

    def side(backend: str) -> str:
        faults = diff.faults[backend]
        return backend + (f" (+{', '.join(faults)})" if faults else "")

    table = Table(title=f"{diff.scenario}: {diff.runs} runs on each backend", header_style="bold")
    table.add_column("outcome", overflow="fold")
    table.add_column(side("simulator"), justify="right")
    table.add_column(side("msquic"), justify="right")
    table.add_column("only", justify="left")
    sim, lib = diff.outcomes["simulator"], diff.outcomes["msquic"]
    for outcome in sorted(set(sim) | set(lib), key=lambda o: (-(sim[o] + lib[o]), o)):
        only = "" if sim[outcome] and lib[outcome] else ("simulator" if sim[outcome] else "msquic")
        table.add_row(outcome, str(sim[outcome] or "-"), str(lib[outcome] or "-"), only,
                      style="" if not only else "yellow")
    console.print(table)
    console.print("same outcome set on both backends" if diff.same
                  else "the outcome sets differ (rows marked 'only')", markup=False)

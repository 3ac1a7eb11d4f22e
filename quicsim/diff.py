"""``quicsim diff``: one scenario on both backends, N runs each, and the sets of outcomes
each side reached, side by side.

An outcome is what the application saw of its own streams, in the notation of
``msquic-observed``: per client stream, the sends that were refused (``4=INVALID_STATE``),
then its events in delivery order (``1a`` / ``4c``: SEND_COMPLETE of client context 1
acknowledged / 4 canceled; ``SSC(g=1)``, ``SC``, ...), then the sends the ledger found
lost (``lost 5``). RECEIVE and IDEAL_SEND_BUFFER_SIZE are left out: how data is cut
into indications is the network's choice, not the API's.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .enums import Status, StreamEventType
from .observer import Observer
from .runner import RunOptions, needs_simulator, run_job
from .scenario_spec import ScenarioSpec

_S = StreamEventType
_SKIPPED = (_S.RECEIVE, _S.IDEAL_SEND_BUFFER_SIZE)
BACKENDS = ("simulator", "msquic")


def _token(event: Any) -> str:
    t = event.type
    if t is _S.SEND_COMPLETE:
        return f"{event.client_context}{'c' if event.canceled else 'a'}"
    if t is _S.START_COMPLETE:
        return "START" if event.status is Status.SUCCESS else f"START({getattr(event.status, 'name', event.status)})"
    if t is _S.SEND_SHUTDOWN_COMPLETE:
        return f"SSC(g={int(event.graceful)})"
    if t is _S.SHUTDOWN_COMPLETE:
        return "SC"
    short = {_S.PEER_SEND_SHUTDOWN: "PEER_FIN", _S.PEER_SEND_ABORTED: "PEER_RESET",
             _S.PEER_RECEIVE_ABORTED: "PEER_STOP", _S.PEER_ACCEPTED: "PEER_ACCEPTED"}
    return short.get(t, t.name)


class OutcomeRecorder(Observer):
    """Watches the client's streams and writes one run's outcome (:meth:`outcome`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[int, str] = {}  # id(stream) -> s1, s2, ... in the order first seen
        self._streams: list[Any] = []  # kept alive: ids stay unique
        self._refused: dict[str, list[str]] = {}
        self._events: dict[str, list[str]] = {}

    def _name(self, conn: Any, stream: Any) -> str | None:
        if stream is None or not getattr(conn, "is_client", False):
            return None
        name = self._names.get(id(stream))
        if name is None:
            name = self._names[id(stream)] = f"s{len(self._names) + 1}"
            self._streams.append(stream)
            self._refused[name], self._events[name] = [], []
        return name

    def send_call(self, conn, stream, send_id, status, length, flags, client_context) -> None:
        with self._lock:
            name = self._name(conn, stream)
            if name is not None and status is not Status.PENDING:
                self._refused[name].append(f"{client_context}={getattr(status, 'name', status)}")

    def api_call(self, conn, stream, name, status, args) -> None:
        if name == "open_stream" and status is Status.SUCCESS:
            with self._lock:
                self._name(conn, stream)

    def stream_event(self, conn, stream, event) -> None:
        if event.type in _SKIPPED:
            return
        with self._lock:
            name = self._name(conn, stream)
            if name is not None:
                self._events[name].append(_token(event))

    def outcome(self, result: dict) -> str:
        """The run's outcome: each client stream's line, then the lost sends."""
        parts = []
        for name in self._events:
            refused = f"refused {' '.join(self._refused[name])}; " if self._refused[name] else ""
            parts.append(f"{name}: {refused}{' '.join(self._events[name]) or '-'}")
        lost = [leak["client_context"].strip("'\"") for leak in result.get("leaks", [])
                if leak["connection"] == "client"]
        if lost:
            parts.append(f"lost {' '.join(lost)}")
        if result.get("error"):
            parts.append(f"error {result['error'].split(':')[0]}")
        return " | ".join(parts) or "(no client stream)"


@dataclass
class Diff:
    scenario: str
    runs: int
    faults: dict[str, list[str]]
    outcomes: dict[str, Counter]

    @property
    def only(self) -> dict[str, list[str]]:
        """Outcomes only one backend reached."""
        sim, lib = (set(self.outcomes[b]) for b in BACKENDS)
        return {"simulator": sorted(sim - lib), "msquic": sorted(lib - sim)}

    @property
    def same(self) -> bool:
        return set(self.outcomes["simulator"]) == set(self.outcomes["msquic"])

    def as_dict(self) -> dict:
        return {"scenario": self.scenario, "runs": self.runs, "faults": self.faults, "same": self.same,
                "outcomes": {b: dict(self.outcomes[b].most_common()) for b in BACKENDS},
                "only": self.only}


def diff_scenario(spec: ScenarioSpec, runs: int, faults: frozenset[str] = frozenset(),
                  msquic_lib: str | None = None, seed: int | None = None) -> Diff:
    """Run ``spec`` ``runs`` times on each backend (seeds from its own, or ``seed``);
    ``faults`` are injected on the simulator's side only."""
    first = spec.seed if seed is None else seed
    outcomes: dict[str, Counter] = {b: Counter() for b in BACKENDS}
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

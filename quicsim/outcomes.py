"""Outcome sets: what the application saw of its own streams in one run, written in the
notation of ``msquic-observed``, and the distinct outcomes of a scenario over many seeds
(``quicsim outcomes``, ``@scenario(expect_outcomes=...)``, ``quicsim diff``).

An outcome is, per client stream, the sends that were refused (``4=INVALID_STATE``), then
its events in delivery order (``1a`` / ``4c``: SEND_COMPLETE of client context 1
acknowledged / 4 canceled; ``SSC(g=1)``, ``SC``, ...), then the sends the ledger found
lost (``lost 5``). RECEIVE and IDEAL_SEND_BUFFER_SIZE are left out: how data is cut
into indications is the network's choice, not the API's.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable

from . import interrupt
from .enums import Status, StreamEventType
from .observer import Observer
from .run_options import RunOptions
from .runner import run_job
from .scenario_spec import ScenarioSpec

_S = StreamEventType
_SKIPPED = (_S.RECEIVE, _S.IDEAL_SEND_BUFFER_SIZE)


def _token(event: Any) -> str:
    t: StreamEventType = event.type
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
        #: streams that are no application's (a peer's HTTP/3 plumbing), left out of the outcome
        self.ignore: Callable[[Any], bool] | None = None

    def _name(self, conn: Any, stream: Any) -> str | None:
        if stream is None or not getattr(conn, "is_client", False):
            return None
        name = self._names.get(id(stream))
        if name is None:
            name = self._names[id(stream)] = f"s{len(self._names) + 1}"
            self._streams.append(stream)
            self._refused[name], self._events[name] = [], []
        return name

    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        with self._lock:
            name = self._name(conn, stream)
            if name is not None and status is not Status.PENDING:
                self._refused[name].append(f"{client_context}={getattr(status, 'name', status)}")

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        if name == "open_stream" and status is Status.SUCCESS:
            with self._lock:
                self._name(conn, stream)

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        if event.type in _SKIPPED:
            return
        with self._lock:
            name = self._name(conn, stream)
            if name is not None:
                self._events[name].append(_token(event))

    def outcome(self, result: dict[str, Any]) -> str:
        """The run's outcome: each client stream's line, then the lost sends."""
        parts = []
        kept = [name for name, stream in zip(self._events, self._streams)
                if self.ignore is None or not self.ignore(stream)]
        for number, name in enumerate(kept, 1):
            refused = f"refused {' '.join(self._refused[name])}; " if self._refused[name] else ""
            parts.append(f"s{number}: {refused}{' '.join(self._events[name]) or '-'}")
        lost = [leak["client_context"].strip("'\"") for leak in result.get("leaks", [])
                if leak["connection"] == "client"]
        if lost:
            parts.append(f"lost {' '.join(lost)}")
        if result.get("error"):
            parts.append(f"error {result['error'].split(':')[0]}")
        return " | ".join(parts) or "(no client stream)"



#: the preemption model that makes the seed story's outcomes look like the library's
#: (docs/outcomes.md): a preemption point after one call in MSQUIC_PREEMPT, and a network
#: window of up to MSQUIC_WINDOW_MS there
MSQUIC_PREEMPT = 0.15
MSQUIC_WINDOW_MS = 2.0


@dataclass
class OutcomeSet:
    scenario: str
    seeds: list[int]
    options: dict[str, Any]
    outcomes: Counter[str]
    #: for each outcome, the first seed that reached it (to replay it)
    first_seed: dict[str, int]
    #: outcomes the scenario does not allow (expect_outcomes), with their counts
    unexpected: dict[str, int]
    #: Ctrl-C stopped it: the counts are of the seeds run before it
    interrupted: bool = False

    @property
    def runs(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seeds": [self.seeds[0], self.seeds[-1]] if self.seeds else [],
                "runs": self.runs, "interrupted": self.interrupted, "options": self.options,
                "outcomes": [{"outcome": o, "count": n, "seed": self.first_seed[o], "allowed": o not in self.unexpected}
                             for o, n in self.outcomes.most_common()],
                "unexpected": self.unexpected}


def outcome_set(spec: ScenarioSpec, seeds: list[int], options: RunOptions) -> OutcomeSet:
    """Run ``spec`` once per seed with ``options`` and count the distinct outcomes; Ctrl-C
    (with :mod:`quicsim.interrupt` installed) ends it with what was counted so far."""
    outcomes: Counter[str] = Counter()
    first_seed: dict[str, int] = {}
    interrupted = False
    for seed in seeds:
        if interrupt.requested():
            interrupted = True
            break
        recorder = OutcomeRecorder()
        try:
            result = run_job(spec, seed, replace(options, observers=(*options.observers, recorder)))
        except (KeyboardInterrupt, asyncio.CancelledError):  # the running seed was torn down
            interrupted = True
            break
        # (the runner's own when the scenario declares its outcomes: judged before its error)
        outcome = result.get("outcome") or recorder.outcome(result)
        outcomes[outcome] += 1
        first_seed.setdefault(outcome, seed)
    allowed = spec.expect_outcomes
    unexpected = {} if allowed is None else {o: n for o, n in outcomes.items() if o not in allowed}
    shown = {"preempt": options.preempt, "preempt_window_ms": options.preempt_window_ms,
             "send_buffering": options.send_buffering, "faults": sorted(options.faults),
             "transport": options.transport or spec.transport}
    return OutcomeSet(spec.name, seeds, shown, outcomes, first_seed, unexpected, interrupted)


def print_outcome_set(console: Any, result: OutcomeSet) -> None:
    """The outcomes as a table, most frequent first; those the scenario does not allow
    are marked."""
    from rich.table import Table

    o = result.options
    title = (f"{result.scenario}: {result.runs} seeds, preempt {o['preempt']:g}, "
             f"window {o['preempt_window_ms']:g} ms, transport {o['transport']}"
             + (f", send buffering {'on' if o['send_buffering'] else 'off'}" if o["send_buffering"] is not None else "")
             + (f", +{', '.join(o['faults'])}" if o["faults"] else ""))
    table = Table(title=title, header_style="bold")
    table.add_column("count", justify="right")
    table.add_column("%", justify="right")
    table.add_column("outcome", overflow="fold")
    table.add_column("seed", justify="right")
    total = max(1, result.runs)
    for outcome, n in result.outcomes.most_common():
        bad = outcome in result.unexpected
        table.add_row(str(n), f"{100 * n / total:.1f}", outcome + ("  (not allowed)" if bad else ""),
                      str(result.first_seed[outcome]), style="bold red" if bad else "")
    console.print(table)
    if result.interrupted:
        console.print(f"interrupted after {result.runs} of {len(result.seeds)} seeds", markup=False)
    if result.unexpected:
        console.print(f"{sum(result.unexpected.values())} run(s) reached an outcome the scenario does not allow "
                      "(expect_outcomes)", style="bold red", markup=False)

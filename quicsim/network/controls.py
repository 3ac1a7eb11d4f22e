"""Live network controls shared by a transport and a scenario: the current profile per
direction, run-time changes (recorded with their time), and per-direction counters."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from .impairment import DIRECTIONS, Decision, LinkModel, NetworkProfile


class Network:
    """What ``ctx.network`` is: ``update(loss=0.3)``, ``blackhole(2.0)``, ``stats``."""

    def __init__(self, profile: NetworkProfile | dict[str, Any] | None, seed: int,
                 clock: Callable[[], float]) -> None:
        if not isinstance(profile, NetworkProfile):
            profile = NetworkProfile.from_dict(profile)
        self.profile = profile
        self.seed = seed
        self._clock = clock
        self._start = clock()
        self.models = {d: LinkModel(profile.link(d), seed, d) for d in DIRECTIONS}
        self.stats: dict[str, Counter[str]] = {d: Counter() for d in DIRECTIONS}
        self.changes: list[dict[str, Any]] = []
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []  # tracers

    def elapsed(self) -> float:
        return self._clock() - self._start

    def decide(self, direction: str, size: int) -> Decision:
        decision = self.models[direction].decide(size, self.elapsed())
        stats = self.stats[direction]
        stats["received"] += 1
        stats[decision.reason] += 1
        stats["forwarded"] += len(decision.delays)
        if decision.dropped:
            stats["dropped"] += 1
        for listener in self.listeners:
            listener("decision", {"direction": direction, "index": decision.index, "size": size,
                                  "reason": decision.reason, "delays": decision.delays})
        return decision

    def update(self, **spec: Any) -> None:
        """Change impairments now, e.g. ``update(loss=0.3)`` or ``update(to_client={"delay_ms": 50})``."""
        profile = NetworkProfile.from_dict(spec, base=self.profile)
        self.profile = profile
        for d in DIRECTIONS:
            self.models[d].params = profile.link(d)
        self._record("update", spec)

    def blackhole(self, seconds: float, direction: str | None = None) -> None:
        """Drop everything (one direction, or both) for the next ``seconds``."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        now = self.elapsed()
        for d in ([direction] if direction else DIRECTIONS):
            self.models[d].blackhole_now(now, seconds)
        self._record("blackhole", {"seconds": seconds, "direction": direction or "both"})

    def _record(self, kind: str, spec: dict[str, Any]) -> None:
        change = {"t": round(self.elapsed(), 6), "change": kind, "spec": spec}
        self.changes.append(change)
        for listener in self.listeners:
            listener("network_change", change)

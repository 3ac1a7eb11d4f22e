"""The impairment model: pure and seeded. Given a datagram, its direction and the time,
decide whether it is dropped, delayed, duplicated or reordered (netem's vocabulary).

No sockets and no clock of its own: both transports (the UDP relay, the in-memory link)
ask it, so the same seed and the same datagram sequence give the same decisions.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, cast
from ..errors import NetworkError

DIRECTIONS = ("to_server", "to_client")


@dataclass(frozen=True)
class Blackhole:
    """Drop everything from ``on`` to ``off`` seconds after the link started, again every
    ``repeat`` seconds when set."""

    on: float
    off: float
    repeat: float | None = None

    def active(self, t: float) -> bool:
        if self.repeat:
            if t < self.on:
                return False
            t = self.on + (t - self.on) % self.repeat
        return self.on <= t < self.off


@dataclass(frozen=True)
class LinkParams:
    """The impairments of one direction."""

    loss: float = 0.0
    burst: int | None = None  # at most this many consecutive random drops
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    reorder_delay_ms: float = 10.0  # how far a reordered datagram falls behind
    duplicate: float = 0.0
    rate_kbps: float | None = None
    queue: int = 1000  # packets waiting for the rate limiter before tail drop
    blackhole: tuple[Blackhole, ...] = ()
    drop: frozenset[int] = field(default_factory=frozenset)  # 1-based datagram numbers

    def validate(self, where: str) -> "LinkParams":
        for name in ("loss", "reorder", "duplicate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise NetworkError(f"{where}{name} must be a fraction in [0, 1], got {value!r}")
        for name in ("delay_ms", "jitter_ms", "reorder_delay_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise NetworkError(f"{where}{name} must be >= 0, got {value!r}")
        if self.burst is not None and (not isinstance(self.burst, int) or self.burst < 1):
            raise NetworkError(f"{where}burst must be an int >= 1, got {self.burst!r}")
        if self.rate_kbps is not None and (not isinstance(self.rate_kbps, (int, float)) or self.rate_kbps <= 0):
            raise NetworkError(f"{where}rate_kbps must be > 0, got {self.rate_kbps!r}")
        if not isinstance(self.queue, int) or self.queue < 1:
            raise NetworkError(f"{where}queue must be an int >= 1, got {self.queue!r}")
        return self


_LINK_KEYS = {f.name for f in fields(LinkParams)}


def _blackholes(value: Any, where: str) -> tuple[Blackhole, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, Blackhole):
            out.append(item)
            continue
        if not isinstance(item, dict) or not {"on", "off"} <= item.keys() or item.keys() - {"on", "off", "repeat"}:
            raise NetworkError(f"{where}blackhole must be {{'on': s, 'off': s[, 'repeat': s]}}, got {item!r}")
        on, off, repeat = item["on"], item["off"], item.get("repeat")
        if not all(isinstance(v, (int, float)) for v in (on, off)) or not 0 <= on < off:
            raise NetworkError(f"{where}blackhole needs 0 <= on < off, got {item!r}")
        if repeat is not None and (not isinstance(repeat, (int, float)) or repeat <= off - on):
            raise NetworkError(f"{where}blackhole repeat must be longer than the window, got {item!r}")
        out.append(Blackhole(float(on), float(off), float(repeat) if repeat else None))
    return tuple(out)


def _link(values: dict[str, Any], base: LinkParams, where: str) -> LinkParams:
    unknown = sorted(values.keys() - _LINK_KEYS)
    if unknown:
        raise NetworkError(f"{where}unknown network key {unknown[0]!r}; known: {', '.join(sorted(_LINK_KEYS))}")
    changes = dict(values)
    if "blackhole" in changes:
        changes["blackhole"] = _blackholes(changes["blackhole"], where)
    if "drop" in changes:
        drop = changes["drop"]
        if not isinstance(drop, Iterable) or not all(isinstance(i, int) and i >= 1 for i in drop):
            raise NetworkError(f"{where}drop must be a list of 1-based datagram numbers, got {drop!r}")
        changes["drop"] = frozenset(drop)
    return replace(base, **changes).validate(where)


@dataclass(frozen=True)
class NetworkProfile:
    """Impairments for both directions: keys at the top level apply to both, keys under
    ``to_server`` / ``to_client`` to one direction only."""

    to_server: LinkParams = LinkParams()
    to_client: LinkParams = LinkParams()

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None, base: "NetworkProfile | None" = None) -> "NetworkProfile":
        base = base or cls()
        if spec is not None and not isinstance(spec, dict):
            raise NetworkError(f"network must be a dict, got {spec!r}")
        spec = dict(spec or {})
        per_dir = {d: spec.pop(d, None) or {} for d in DIRECTIONS}
        out = {}
        for d in DIRECTIONS:
            if not isinstance(per_dir[d], dict):
                raise NetworkError(f"network.{d} must be a dict, got {per_dir[d]!r}")
            link = _link(spec, getattr(base, d), "network.")
            out[d] = _link(per_dir[d], link, f"network.{d}.")
        return cls(**out)

    def link(self, direction: str) -> LinkParams:
        return cast(LinkParams, getattr(self, direction))


@dataclass(frozen=True)
class Decision:
    """What happens to one datagram: delivered after each delay in ``delays`` (empty:
    dropped, two entries: duplicated), and why (for traces)."""

    index: int
    delays: tuple[float, ...]
    reason: str  # "forward", "loss", "drop-list", "blackhole", "queue-full", ...

    @property
    def dropped(self) -> bool:
        return not self.delays


class LinkModel:
    """The seeded decision state of one direction."""

    def __init__(self, params: LinkParams, seed: int, direction: str) -> None:
        self.params = params
        self.direction = direction
        self.rng = random.Random(f"quicsim:{seed}:{direction}")
        self.count = 0
        self._consecutive_drops = 0
        self._departures: deque[float] = deque()  # rate limiter: queued packets' departure times
        self._busy_until = 0.0
        self._extra_blackholes: list[Blackhole] = []

    def blackhole_now(self, start: float, duration: float) -> None:
        self._extra_blackholes.append(Blackhole(start, start + duration))

    def decide(self, size: int, t: float) -> Decision:
        """Decide the fate of the next datagram of ``size`` bytes sent ``t`` s after start."""
        p = self.params
        self.count += 1
        n = self.count
        # The same number of draws for every datagram while any random knob is on, so a
        # decision depends only on the seed and the datagram's position.
        if p.loss or p.duplicate or p.reorder or p.jitter_ms:
            rng = self.rng.random
            r_loss, r_dup, r_reorder, r_jitter = rng(), rng(), rng(), rng()
        else:
            r_loss = r_dup = r_reorder = r_jitter = 1.0  # a clean link draws nothing
        if n in p.drop:
            return Decision(n, (), "drop-list")
        if any(b.active(t) for b in p.blackhole) or any(b.active(t) for b in self._extra_blackholes):
            return Decision(n, (), "blackhole")
        if p.loss and r_loss < p.loss and (p.burst is None or self._consecutive_drops < p.burst):
            self._consecutive_drops += 1
            return Decision(n, (), "loss")
        self._consecutive_drops = 0
        delay = p.delay_ms / 1000.0
        if p.jitter_ms:
            delay = max(0.0, delay + (2 * r_jitter - 1) * p.jitter_ms / 1000.0)
        reason = "forward"
        if p.rate_kbps:
            departures = self._departures
            while departures and departures[0] <= t:
                departures.popleft()
            if len(departures) >= p.queue:
                return Decision(n, (), "queue-full")
            start = max(t, self._busy_until)
            self._busy_until = start + size * 8 / (p.rate_kbps * 1000.0)
            departures.append(self._busy_until)
            delay += self._busy_until - t
        if p.reorder and r_reorder < p.reorder:
            delay += p.reorder_delay_ms / 1000.0
            reason = "reorder"
        if p.duplicate and r_dup < p.duplicate:
            return Decision(n, (delay, delay + 0.001), "duplicate")
        return Decision(n, (delay,), reason)

"""Swarm generation (Groce et al., ISSTA 2012): a swarm run draws, from its seed, a random
subset of the generator's features (operation kinds, flags, network impairments) and
generates only from it. Leaving features out lets the ones kept pile up in one program
(many shutdowns, no closes; a clean network; no stream ever started), where a uniform
program dilutes every feature among all the others.

A feature is a name; :func:`draw` gives a run's feature set (None: a full run, every
feature available) and the generator asks :func:`allowed` before each choice.
"""

from __future__ import annotations

import random

#: the fraction of runs ``quicsim fuzz`` makes swarm runs unless told: none, because on
#: these short programs every mix measured (``python -m bench.swarm``, in docs/measurement.md) found
#: each injected fault less often than full runs and reached fewer probes
DEFAULT_SWARM = 0.0

#: every feature, by group (the generator's choices each belong to one)
GROUPS: dict[str, tuple[str, ...]] = {
    # API calls the program makes (StreamOpen is always there: every other call needs it)
    "op": ("op.start", "op.send", "op.shutdown", "op.close", "op.conn_shutdown", "op.sleep", "op.datagram",
           "op.on"),
    # how streams are opened: by the server too, unidirectional, started right after the open
    "stream": ("stream.server", "stream.uni", "stream.start_at_open"),
    "send": ("send.fin", "send.start", "send.delay_send", "send.allow_0_rtt", "send.priority_work",
             "send.cancel_on_loss", "send.cancel_on_blocked"),
    # StreamShutdown flag mixes (invalid: the three mixes MsQuic refuses), INLINE from a
    # handler, and sends queued right behind a shutdown
    "shutdown": ("shutdown.graceful", "shutdown.abort_send", "shutdown.abort_receive", "shutdown.abort",
                 "shutdown.abort_immediate", "shutdown.invalid", "shutdown.inline", "shutdown.racing_sends"),
    "start": ("start.immediate", "start.fail_blocked", "start.shutdown_on_fail", "start.indicate_peer_accept",
              "start.priority_work"),
    # the events a handler call ("on") can be attached to
    "on": ("on.start_complete", "on.send_complete", "on.send_shutdown_complete", "on.peer_send_shutdown",
           "on.peer_receive_aborted", "on.receive"),
    "net": ("net.loss", "net.delay", "net.jitter", "net.reorder", "net.duplicate", "net.blackhole"),
    # last, so adding one left the draws of the others as they were
    "settings": ("settings.send_buffering", "settings.preempt", "settings.slow_reader"),
}
FEATURES: tuple[str, ...] = tuple(name for names in GROUPS.values() for name in names)

#: groups that must keep at least one member when the feature that uses them is kept
#: (a program whose every call is a StreamOpen or a sleep tests nothing)
_NON_EMPTY = {
    "op": ("op.start", "op.send", "op.shutdown", "op.close"),
    "shutdown": ("shutdown.graceful", "shutdown.abort_send", "shutdown.abort_receive", "shutdown.abort",
                 "shutdown.abort_immediate", "shutdown.invalid"),
    "on": GROUPS["on"],
}
_USED_BY = {"op": None, "shutdown": "op.shutdown", "on": "op.on"}


def is_swarm(seed: int, ratio: float) -> bool:
    """Is ``seed`` a swarm run when a fraction ``ratio`` of runs are? The seeds chosen for a
    ratio are among those chosen for any larger one."""
    return random.Random(f"quicsim-fuzz-swarm:{seed}").random() < ratio


def draw(seed: int, ratio: float) -> frozenset[str] | None:
    """The feature set of ``seed``'s run: each feature kept with probability 1/2 (swarm
    testing's usual choice), or None when the seed is a full run."""
    rng = random.Random(f"quicsim-fuzz-swarm:{seed}")
    if not rng.random() < ratio:
        return None
    kept = {name for name in FEATURES if rng.random() < 0.5}
    for group, members in _NON_EMPTY.items():
        user = _USED_BY[group]
        if (user is None or user in kept) and not kept.intersection(members):
            kept.add(rng.choice(members))
    return frozenset(kept)


def allowed(features: frozenset[str] | None, *names: str) -> bool:
    """Are all ``names`` in the run's features (always, for a full run)?"""
    return features is None or all(name in features for name in names)


def describe(features: frozenset[str] | None) -> str:
    """One line for a repro file or a report: which features a swarm run kept."""
    if features is None:
        return "full run (every feature)"
    return f"swarm run: {len(features)} of {len(FEATURES)} features: " + ", ".join(
        name for name in FEATURES if name in features)

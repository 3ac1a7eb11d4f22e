"""A fuzz program: a network profile and a list of API operations, drawn from a seed.

Operations are plain tuples so programs are easy to shrink, compare and print:

- ``("open", sid, side, uni)``          StreamOpen on the client or the server
- ``("start", sid, flags)``             StreamStart
- ``("send", sid, size, nbufs, flags)`` StreamSend of ``size`` bytes in ``nbufs`` buffers
- ``("shutdown", sid, flags, code)``    StreamShutdown (valid and invalid flag mixes)
- ``("close", sid)``                    StreamClose
- ``("conn_shutdown", side, silent, code)``
- ``("sleep", ms)``                     let time pass (virtual)
- ``("datagram", side, size)``          ConnectionSendDatagram (sizes that fit and that do not)
- ``("on", sid, event, op)``            run ``op`` inside the stream's handler the first
  time ``event`` reaches it (MsQuic's inline paths, as spinquic exercises them); the
  event ``SEND_COMPLETE_CANCELED`` is the first SEND_COMPLETE that is canceled

A swarm run (:mod:`.swarm`) draws only from the features its seed kept; a full run draws
from all of them, exactly as before swarm runs existed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any

from ..enums import SendFlags, StreamShutdownFlags, StreamStartFlags
from .swarm import allowed, draw

Op = tuple[Any, ...]

SHUTDOWN_CHOICES = [
    StreamShutdownFlags.GRACEFUL,
    StreamShutdownFlags.GRACEFUL,
    StreamShutdownFlags.ABORT_SEND,
    StreamShutdownFlags.ABORT_RECEIVE,
    StreamShutdownFlags.ABORT,
    StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE,
    StreamShutdownFlags.NONE,  # invalid
    StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.ABORT_SEND,  # invalid
    StreamShutdownFlags.IMMEDIATE,  # invalid
]
SEND_EXTRA = [SendFlags.START, SendFlags.DELAY_SEND, SendFlags.ALLOW_0_RTT, SendFlags.PRIORITY_WORK,
              SendFlags.CANCEL_ON_LOSS,
              SendFlags.CANCEL_ON_BLOCKED]
START_FLAGS = [StreamStartFlags.NONE, StreamStartFlags.IMMEDIATE, StreamStartFlags.FAIL_BLOCKED,
               StreamStartFlags.SHUTDOWN_ON_FAIL, StreamStartFlags.INDICATE_PEER_ACCEPT,
               StreamStartFlags.PRIORITY_WORK, StreamStartFlags.IMMEDIATE | StreamStartFlags.SHUTDOWN_ON_FAIL]
#: a handler call's trigger that is not an event type: the first SEND_COMPLETE that is canceled
CANCELED_SEND_COMPLETE = "SEND_COMPLETE_CANCELED"
TRIGGER_EVENTS = ["START_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "PEER_SEND_SHUTDOWN",
                  "PEER_RECEIVE_ABORTED", "RECEIVE"]
ERROR_CODES = [0, 1, 7, 0x100, (1 << 62) - 1, 1 << 62]

#: the swarm feature each choice above needs (a flag mix needs each of its flags)
SHUTDOWN_FEATURES = ["shutdown.graceful", "shutdown.graceful", "shutdown.abort_send", "shutdown.abort_receive",
                     "shutdown.abort", "shutdown.abort_immediate", "shutdown.invalid", "shutdown.invalid",
                     "shutdown.invalid"]


def _flag_features(group: str, value: int, cls: type[enum.IntFlag]) -> tuple[str, ...]:
    return tuple(f"{group}.{str(m.name).lower()}" for m in cls if m.value and (m.value & (m.value - 1)) == 0
                 and value & m.value)


def _options(features: frozenset[str] | None, choices: list[Any], needs: list[Any]) -> list[Any]:
    """The choices whose features the run kept (all of them, in order, for a full run, so
    a full run draws exactly what it always drew)."""
    if features is None:
        return choices
    return [choice for choice, need in zip(choices, needs) if allowed(features, *need)]


_SEND_EXTRA_NEEDS = [_flag_features("send", int(f), SendFlags) for f in SEND_EXTRA]
_START_NEEDS = [_flag_features("start", int(f), StreamStartFlags) for f in START_FLAGS]
_SHUTDOWN_NEEDS = [(name,) for name in SHUTDOWN_FEATURES]
_TRIGGER_NEEDS = [(f"on.{event.lower()}",) for event in TRIGGER_EVENTS]


@dataclass
class Program:
    seed: int
    network: dict[str, Any] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    #: MsQuic's SendBufferingEnabled on both sides (quicsim's default is off)
    send_buffering: bool = False
    #: a swarm run's features (:mod:`.swarm`); None for a full run
    features: frozenset[str] | None = None
    #: Settings.preempt on both sides: the chance the worker runs right after each API call
    preempt: float = 0.0
    #: Settings.preempt_window_ms on both sides: the network may run at a preemption point
    preempt_window_ms: float = 0.0
    #: PeerBidi/UnidiStreamCount on both sides (None: the default, 100): a low limit blocks
    #: starts (FAIL_BLOCKED fails, INDICATE_PEER_ACCEPT waits for PEER_ACCEPTED)
    peer_streams: int | None = None
    #: the server aborts the receive side of each stream the client opened at its first
    #: RECEIVE, so the client's sends in flight meet a STOP_SENDING
    stop_sending: bool = False
    #: the server reads slowly: it holds every other RECEIVE (its handler returns PENDING)
    #: and takes it a few ms later, and pauses RECEIVE now and then (StreamReceiveComplete,
    #: StreamReceiveSetEnabled)
    slow_reader: bool = False

    def api_op_count(self) -> int:
        """Operations that are API calls (sleeps do not count)."""
        return sum(1 for op in self.ops if op[0] != "sleep")


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.15:
        return 0
    if roll < 0.55:
        return rng.randint(1, 200)
    if roll < 0.9:
        return rng.randint(500, 6000)
    return rng.randint(20_000, 80_000)


# Each draw below is made whatever the features are, and a feature left out only discards
# what it drew: so a full run consumes the generator exactly as it did before swarm runs.

def _send_flags(rng: random.Random, features: frozenset[str] | None) -> int:
    flags = SendFlags.NONE
    if rng.random() < 0.2 and allowed(features, "send.fin"):
        flags |= SendFlags.FIN
    if rng.random() < 0.2:
        extras = _options(features, SEND_EXTRA, _SEND_EXTRA_NEEDS)
        if extras:
            flags |= rng.choice(extras)
    return int(flags)


def _network(rng: random.Random, features: frozenset[str] | None) -> dict[str, Any]:
    net: dict[str, Any] = {}
    if rng.random() < 0.7 and allowed(features, "net.loss"):
        net["loss"] = round(rng.uniform(0, 0.3), 3)
    if rng.random() < 0.6 and allowed(features, "net.delay"):
        net["delay_ms"] = rng.choice([1, 5, 10, 25, 50])
    if rng.random() < 0.3 and allowed(features, "net.jitter"):
        net["jitter_ms"] = rng.choice([1, 3, 8])
    if rng.random() < 0.25 and allowed(features, "net.reorder"):
        net["reorder"] = round(rng.uniform(0, 0.3), 3)
    if rng.random() < 0.25 and allowed(features, "net.duplicate"):
        net["duplicate"] = round(rng.uniform(0, 0.2), 3)
    if rng.random() < 0.1 and allowed(features, "net.blackhole"):
        on = round(rng.uniform(0.05, 0.5), 3)
        net["blackhole"] = {"on": on, "off": round(on + rng.uniform(0.05, 1.5), 3)}
    return net


def _stream_op(rng: random.Random, sid: str, features: frozenset[str] | None, inline: bool = False) -> Op:
    while True:  # a swarm run redraws a kind it left out (it keeps at least one of the four)
        roll = rng.random()
        kind = "send" if roll < 0.45 else "shutdown" if roll < 0.75 else "start" if roll < 0.85 else "close"
        if allowed(features, f"op.{kind}"):
            break
    if kind == "send":
        return ("send", sid, _size(rng), rng.choice([1, 1, 1, 2, 3]), _send_flags(rng, features))
    if kind == "shutdown":
        flags = rng.choice(_options(features, SHUTDOWN_CHOICES, _SHUTDOWN_NEEDS))
        if inline and rng.random() < 0.5 and allowed(features, "shutdown.inline"):
            flags |= StreamShutdownFlags.INLINE
        return ("shutdown", sid, int(flags), rng.choice(ERROR_CODES))
    if kind == "start":
        return ("start", sid, int(rng.choice(_options(features, START_FLAGS, _START_NEEDS))))
    return ("close", sid)


def _kind(roll: float, datagrams: random.Random) -> str:
    """Which operation a roll of the generator stands for (given a stream exists)."""
    if roll < 0.15:
        return "open"
    if roll < 0.2:
        return "sleep"
    if roll < 0.25:
        return "conn_shutdown"
    if roll < 0.29 and datagrams.random() < 0.5:
        return "datagram"
    if roll < 0.4:
        return "on"
    return "stream"


def generate(seed: int, max_ops: int = 12, swarm: float = 0.0) -> Program:
    """A random program for ``seed`` (the same seed and ``swarm`` always give the same
    program). ``swarm`` is the fraction of seeds that are swarm runs (:mod:`.swarm`)."""
    features = draw(seed, swarm) if swarm else None
    rng = random.Random(f"quicsim-fuzz:{seed}")
    program = Program(seed=seed, network=_network(rng, features), features=features)
    # Drawn from its own generator so adding this knob left every program's ops as they were.
    program.send_buffering = (random.Random(f"quicsim-fuzz-buffering:{seed}").random() < 0.5
                              and allowed(features, "settings.send_buffering"))
    program.preempt = _preempt(random.Random(f"quicsim-fuzz-preempt:{seed}"))
    if not allowed(features, "settings.preempt"):
        program.preempt = 0.0
    if program.preempt:
        # Drawn from its own generator so adding this knob left every program as it was.
        program.preempt_window_ms = _window(random.Random(f"quicsim-fuzz-window:{seed}"))
    knobs = random.Random(f"quicsim-fuzz-knobs:{seed}")
    program.peer_streams = knobs.choice((1, 2, 3)) if knobs.random() < 0.15 else None
    program.stop_sending = knobs.random() < 0.1
    # Drawn from its own generator so adding this knob left every program as it was.
    program.slow_reader = (not program.stop_sending and random.Random(f"quicsim-fuzz-reader:{seed}").random() < 0.15
                           and allowed(features, "settings.slow_reader"))
    datagrams = random.Random(f"quicsim-fuzz-datagrams:{seed}")
    story = random.Random(f"quicsim-fuzz-story:{seed}")
    streams: list[str] = []
    n_ops = rng.randint(2, max(2, max_ops))
    for _ in range(n_ops):
        while True:  # a swarm run redraws an operation it left out (open and stream ops stay)
            roll = rng.random()
            kind = "open" if not streams else _kind(roll, datagrams)
            if kind in ("open", "stream") or allowed(features, f"op.{kind}"):
                break
        if kind == "open":
            sid = f"s{len(streams) + 1}"
            streams.append(sid)
            side = "client" if rng.random() < 0.8 or not allowed(features, "stream.server") else "server"
            program.ops.append(("open", sid, side, rng.random() < 0.15 and allowed(features, "stream.uni")))
            if rng.random() < 0.8 and allowed(features, "stream.start_at_open"):
                program.ops.append(("start", sid, int(rng.choice(_options(features, START_FLAGS[:2],
                                                                          _START_NEEDS[:2])))))
            continue
        sid = rng.choice(streams)
        if kind == "sleep":
            program.ops.append(("sleep", rng.choice([0, 0, 1, 5, 20, 100])))
        elif kind == "conn_shutdown":
            program.ops.append(("conn_shutdown", rng.choice(["client", "client", "server"]),
                                rng.random() < 0.2, rng.choice(ERROR_CODES[:4])))
        elif kind == "datagram":
            program.ops.append(("datagram", rng.choice(["client", "server"]),
                                datagrams.choice([0, 10, 500, 1100, 5000])))
        elif kind == "on":
            # StreamClose from a callback is the usual MsQuic pattern, and the one that
            # re-enters the worker's cancel loops: draw it often.
            inner = (("close", sid) if rng.random() < 0.4 and allowed(features, "op.close")
                     else _stream_op(rng, sid, features, inline=True))
            program.ops.append(("on", sid, rng.choice(_options(features, TRIGGER_EVENTS, _TRIGGER_NEEDS)), inner))
        else:
            op = _stream_op(rng, sid, features)
            racing = (op[0] == "shutdown" and rng.random() < 0.5
                      and allowed(features, "shutdown.racing_sends", "op.send"))
            if racing and story.random() < 0.5:
                # The seed story: sends just before the shutdown, in the same tick, so
                # whether the racing sends ride with their batch, are canceled or refused
                # depends on when the worker runs (see Settings.preempt).
                for _ in range(story.randint(1, 3)):
                    program.ops.append(("send", sid, _size(story), 1, 0))
            program.ops.append(op)
            if racing:
                # Sends racing the shutdown just queued: accepted now, applied after it.
                for _ in range(rng.randint(1, 3)):
                    program.ops.append(("send", sid, _size(rng), 1, 0))
    if program.peer_streams:
        # With a low stream limit, some starts ask what happens when they are blocked.
        blocked = [int(flag) for flag, name in ((StreamStartFlags.FAIL_BLOCKED, "start.fail_blocked"),
                                                (StreamStartFlags.INDICATE_PEER_ACCEPT, "start.indicate_peer_accept"))
                   if allowed(features, name)]
        if blocked:
            program.ops = [("start", op[1], knobs.choice(blocked)) if op[0] == "start" and not op[2]
                           and knobs.random() < 0.5 else op for op in program.ops]
    program.ops = _at_most(program.ops, max(2, max_ops))
    # Drawn from its own generator, and told only where it fits in max_ops: a program that
    # tells it keeps every operation it drew and adds a stream of its own.
    reentry = random.Random(f"quicsim-fuzz-reentry:{seed}")
    if reentry.random() < REENTRY_CHANCE and allowed(features, *REENTRY_NEEDS):
        sid = f"s{1 + max((int(op[1][1:]) for op in program.ops if op[0] == 'open'), default=0)}"
        told = _reentry_story(reentry, sid, features)
        if program.api_op_count() + sum(1 for op in told if op[0] != "sleep") <= max(2, max_ops):
            # before another stream's open or at the end: never inside another stream's race
            at = reentry.choice([i for i, op in enumerate(program.ops) if op[0] == "open"][1:] + [len(program.ops)])
            program.ops[at:at] = told
    return program


#: the chance a program tells the re-entrant close story where it fits in max_ops (measured
#: with python -m bench.swarm --first-find: 1.0 finds reentrant-close fastest and no other
#: fault slower, since the story never takes the place of an operation)
REENTRY_CHANCE = 1.0
#: the swarm features the story is made of (a swarm run that left one out never tells it)
REENTRY_NEEDS = ("op.on", "on.send_complete", "op.close", "op.shutdown", "shutdown.graceful",
                 "op.send", "stream.start_at_open")


def _reentry_story(rng: random.Random, sid: str, features: frozenset[str] | None) -> list[Op]:
    """A new stream whose handler closes it at its first canceled SEND_COMPLETE, then a
    graceful shutdown with sends accepted behind it in the same tick: the worker cancels
    those as one detached batch (QuicStreamSendShutdown's "Bad app!" loop) and the close
    runs in the middle of it, where MsQuic loses the rest of the batch (as in
    scenarios/msquic_4307_reentrant_close.py).
    A send before the shutdown is let go first (a sleep), or the flush it queued would
    take the late sends along before the shutdown is applied."""
    ops: list[Op] = [("open", sid, "client", False), ("start", sid, int(StreamStartFlags.NONE)),
                     ("on", sid, CANCELED_SEND_COMPLETE, ("close", sid))]
    if rng.random() < 0.5 and allowed(features, "op.sleep"):
        ops += [("send", sid, _size(rng), 1, 0), ("sleep", rng.choice([0, 1, 20]))]
    ops.append(("shutdown", sid, int(StreamShutdownFlags.GRACEFUL), 0))
    ops += [("send", sid, _size(rng), 1, 0) for _ in range(rng.randint(2, 3))]
    return ops


#: preemption chances a run may draw (0: the worker runs only when the loop runs it)
PREEMPT_CHOICES = (0.1, 0.25, 0.5, 0.75, 1.0)


def _preempt(rng: random.Random) -> float:
    """Half the runs keep program order (no preemption point); the others draw how often
    the worker runs between two calls, up to every time."""
    return 0.0 if rng.random() < 0.5 else rng.choice(PREEMPT_CHOICES)


#: longest network windows a preempting run may draw, in ms (0: queued calls only)
WINDOW_CHOICES = (0.5, 2.0, 10.0, 50.0)


def _window(rng: random.Random) -> float:
    """Half the preempting runs let the network in at their preemption points, with a
    window from a sub-RTT glimpse to a long stall (the ACK delay is 1 ms, the RTT a few)."""
    return 0.0 if rng.random() < 0.5 else rng.choice(WINDOW_CHOICES)


def _at_most(ops: list[Op], max_ops: int) -> list[Op]:
    """The first ``max_ops`` API operations (and the sleeps among them): ``--max-ops`` is
    a real bound."""
    out, count = [], 0
    for op in ops:
        if op[0] != "sleep":
            if count == max_ops:
                break
            count += 1
        out.append(op)
    return out

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
  time ``event`` reaches it (MsQuic's inline paths, as spinquic exercises them)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..enums import SendFlags, StreamShutdownFlags, StreamStartFlags

Op = tuple

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
TRIGGER_EVENTS = ["START_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "PEER_SEND_SHUTDOWN",
                  "PEER_RECEIVE_ABORTED", "RECEIVE"]
ERROR_CODES = [0, 1, 7, 0x100, (1 << 62) - 1, 1 << 62]


@dataclass
class Program:
    seed: int
    network: dict = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    #: MsQuic's SendBufferingEnabled on both sides (quicsim's default is off)
    send_buffering: bool = False

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


def _send_flags(rng: random.Random) -> int:
    flags = SendFlags.NONE
    if rng.random() < 0.2:
        flags |= SendFlags.FIN
    if rng.random() < 0.2:
        flags |= rng.choice(SEND_EXTRA)
    return int(flags)


def _network(rng: random.Random) -> dict:
    net: dict = {}
    if rng.random() < 0.7:
        net["loss"] = round(rng.uniform(0, 0.3), 3)
    if rng.random() < 0.6:
        net["delay_ms"] = rng.choice([1, 5, 10, 25, 50])
    if rng.random() < 0.3:
        net["jitter_ms"] = rng.choice([1, 3, 8])
    if rng.random() < 0.25:
        net["reorder"] = round(rng.uniform(0, 0.3), 3)
    if rng.random() < 0.25:
        net["duplicate"] = round(rng.uniform(0, 0.2), 3)
    if rng.random() < 0.1:
        on = round(rng.uniform(0.05, 0.5), 3)
        net["blackhole"] = {"on": on, "off": round(on + rng.uniform(0.05, 1.5), 3)}
    return net


def _stream_op(rng: random.Random, sid: str, inline: bool = False) -> Op:
    roll = rng.random()
    if roll < 0.45:
        return ("send", sid, _size(rng), rng.choice([1, 1, 1, 2, 3]), _send_flags(rng))
    if roll < 0.75:
        flags = rng.choice(SHUTDOWN_CHOICES)
        if inline and rng.random() < 0.5:
            flags |= StreamShutdownFlags.INLINE
        return ("shutdown", sid, int(flags), rng.choice(ERROR_CODES))
    if roll < 0.85:
        return ("start", sid, int(rng.choice(START_FLAGS)))
    return ("close", sid)


def generate(seed: int, max_ops: int = 12) -> Program:
    """A random program for ``seed`` (the same seed always gives the same program)."""
    rng = random.Random(f"quicsim-fuzz:{seed}")
    program = Program(seed=seed, network=_network(rng))
    # Drawn from its own generator so adding this knob left every program's ops as they were.
    program.send_buffering = random.Random(f"quicsim-fuzz-buffering:{seed}").random() < 0.5
    datagrams = random.Random(f"quicsim-fuzz-datagrams:{seed}")
    streams: list[str] = []
    n_ops = rng.randint(2, max(2, max_ops))
    for _ in range(n_ops):
        roll = rng.random()
        if not streams or roll < 0.15:
            sid = f"s{len(streams) + 1}"
            streams.append(sid)
            side = "client" if rng.random() < 0.8 else "server"
            program.ops.append(("open", sid, side, rng.random() < 0.15))
            if rng.random() < 0.8:
                program.ops.append(("start", sid, int(rng.choice(START_FLAGS[:2]))))
            continue
        sid = rng.choice(streams)
        if roll < 0.2:
            program.ops.append(("sleep", rng.choice([0, 0, 1, 5, 20, 100])))
        elif roll < 0.25:
            program.ops.append(("conn_shutdown", rng.choice(["client", "client", "server"]),
                                rng.random() < 0.2, rng.choice(ERROR_CODES[:4])))
        elif roll < 0.29 and datagrams.random() < 0.5:
            program.ops.append(("datagram", rng.choice(["client", "server"]),
                                datagrams.choice([0, 10, 500, 1100, 5000])))
        elif roll < 0.4:
            # StreamClose from a callback is the usual MsQuic pattern, and the one that
            # re-enters the worker's cancel loops: draw it often.
            inner = ("close", sid) if rng.random() < 0.4 else _stream_op(rng, sid, inline=True)
            program.ops.append(("on", sid, rng.choice(TRIGGER_EVENTS), inner))
        else:
            op = _stream_op(rng, sid)
            program.ops.append(op)
            if op[0] == "shutdown" and rng.random() < 0.5:
                # Sends racing the shutdown just queued: accepted now, applied after it.
                for _ in range(rng.randint(1, 3)):
                    program.ops.append(("send", sid, _size(rng), 1, 0))
    program.ops = _at_most(program.ops, max(2, max_ops))
    return program


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

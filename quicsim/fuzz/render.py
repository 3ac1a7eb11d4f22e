"""Turn a fuzz program into a scenario file. The fuzzer runs exactly this source, so the
file it writes for a failure replays the same calls, in the same order, on the same seed."""

from __future__ import annotations

import textwrap
from enum import IntFlag
from typing import Any

from ..enums import ConnectionShutdownFlags, SendFlags, StreamOpenFlags, StreamShutdownFlags, StreamStartFlags
from .program import Program

HEADER = '''\
import asyncio

from quicsim import (ConnectionShutdownFlags, SendFlags, Settings, Status, StatusError, StreamOpenFlags,
                     StreamShutdownFlags, StreamStartFlags, scenario)

TRIGGERS = {}  # stream name -> [[event name, action, fired]]: each runs once, inside the handler


def fires(trigger, event):
    """An event type's name, or SEND_COMPLETE_CANCELED: a SEND_COMPLETE that is canceled."""
    if trigger == "SEND_COMPLETE_CANCELED":
        return event.type.name == "SEND_COMPLETE" and event.canceled
    return event.type.name == trigger


def handler_for(name):
    def on_event(stream, event):
        for trigger in TRIGGERS.get(name, []):
            if not trigger[2] and fires(trigger[0], event):
                trigger[2] = True
                trigger[1](stream)
    return on_event


def close_unstarted(*streams):
    """Close what was opened and never started: MsQuic completes such a stream's sends
    only at StreamClose, so a well-behaved application closes it."""
    for stream in streams:
        if stream is not None and stream.id is None:
            stream.close()


def stop_sending(conn, event):
    """The server's handler: abort the receive side of each peer stream at its first
    RECEIVE (a STOP_SENDING for the sends in flight), and close our side once the peer
    finished or reset its own, as the default handler does."""
    if event.type.name == "PEER_STREAM_STARTED":
        aborted = []

        def on_stream(stream, e):
            if e.type.name == "RECEIVE" and not aborted:
                aborted.append(stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE, 7))
            elif e.type.name in ("PEER_SEND_SHUTDOWN", "PEER_SEND_ABORTED"):
                stream.shutdown(StreamShutdownFlags.GRACEFUL)

        event.stream.set_handler(on_stream)


def slow_reader(conn, event):
    """The server's handler: hold every other RECEIVE of each peer stream (the handler
    returns PENDING) and take it 5 ms later, pause RECEIVE for 3 ms after every third one,
    and close our side once the peer finished or reset its own."""
    if event.type.name == "PEER_STREAM_STARTED":
        seen = []

        def on_stream(stream, e):
            loop = asyncio.get_running_loop()
            if e.type.name == "RECEIVE":
                seen.append(e.total_buffer_length)
                if len(seen) % 3 == 0:
                    stream.receive_set_enabled(False)
                    loop.call_later(0.003, stream.receive_set_enabled, True)
                if len(seen) % 2 and e.total_buffer_length:
                    loop.call_later(0.005, stream.receive_complete, e.total_buffer_length)
                    return Status.PENDING
            elif e.type.name in ("PEER_SEND_SHUTDOWN", "PEER_SEND_ABORTED"):
                stream.shutdown(StreamShutdownFlags.GRACEFUL)
            return None

        event.stream.set_handler(on_stream)


def open_stream(conn, name, flags):
    try:
        return conn.open_stream(flags, handler=handler_for(name))
    except StatusError:
        return None  # StreamOpen failed (the connection is shutting down): later calls skip it
'''


def flags_src(cls: type[IntFlag], value: int) -> str:
    """``SendFlags.FIN | SendFlags.START`` rather than a number."""
    if value == 0:
        return f"{cls.__name__}.NONE"
    names = [m.name for m in cls if m.value and (m.value & (m.value - 1)) == 0 and value & m.value]
    rest = value & ~sum(m.value for m in cls if m.value and (m.value & (m.value - 1)) == 0)
    parts = [f"{cls.__name__}.{n}" for n in names]
    if rest:
        parts.append(hex(rest))
    return " | ".join(parts)


def _buffers(size: int, nbufs: int) -> str:
    if nbufs <= 1:
        return f"bytes({size})"
    base, extra = divmod(size, nbufs)
    sizes = [base + (1 if i < extra else 0) for i in range(nbufs)]
    return "[" + ", ".join(f"bytes({n})" for n in sizes) + "]"


def _call(op: tuple[Any, ...], index: int, target: str) -> str:
    kind = op[0]
    if kind == "send":
        _, sid, size, nbufs, flags = op
        return (f"{target}.send({_buffers(size, nbufs)}, {flags_src(SendFlags, flags)}, "
                f"client_context={sid + '#' + str(index)!r})")
    if kind == "shutdown":
        _, sid, flags, code = op
        return f"{target}.shutdown({flags_src(StreamShutdownFlags, flags)}, {code})"
    if kind == "start":
        return f"{target}.start({flags_src(StreamStartFlags, op[2])})"
    if kind == "close":
        return f"{target}.close()"
    raise ValueError(f"not a stream operation: {op!r}")


def _line(op: tuple[Any, ...], index: int) -> str:
    kind = op[0]
    if kind == "open":
        _, sid, side, uni = op
        flags = flags_src(StreamOpenFlags, 1 if uni else 0)
        return f"{sid} = open_stream(ctx.{side}, {sid!r}, {flags})"
    if kind in ("send", "shutdown", "start", "close"):
        sid = op[1]
        return f"if {sid}:\n    {_call(op, index, sid)}"
    if kind == "conn_shutdown":
        _, side, silent, code = op
        flags = "ConnectionShutdownFlags.SILENT" if silent else "ConnectionShutdownFlags.NONE"
        return f"ctx.{side}.shutdown({flags}, {code})"
    if kind == "sleep":
        return f"await ctx.sleep({op[1] / 1000!r})"
    if kind == "datagram":
        _, side, size = op
        return f"ctx.{side}.send_datagram(bytes({size}), client_context={'dg#' + str(index)!r})"
    if kind == "on":
        _, sid, event, inner = op
        return f"TRIGGERS.setdefault({sid!r}, []).append([{event!r}, lambda s: {_call(inner, index, 's')}, False])"
    raise ValueError(f"unknown operation {op!r}")


_STREAM_OPS = ("open", "start", "send", "shutdown", "close", "on")


def render(program: Program, faults: frozenset[str] = frozenset(), doc: str = "", backend: str = "simulator") -> str:
    """The scenario file for ``program`` (faults switched on on both sides); for the
    msquic backend it runs over loopback UDP (the library has no in-memory link)."""
    # Every stream name an operation uses is defined, opened or not (a shrunk program may
    # keep a send whose open was dropped: it is then skipped, never a NameError).
    streams = sorted({op[1] for op in program.ops if op[0] in _STREAM_OPS}, key=lambda s: int(s[1:]))
    body = ["TRIGGERS.clear()"]
    if streams:
        body.append(" = ".join(streams) + " = None")
    for index, op in enumerate(program.ops, 1):
        body.append(_line(op, index))
    if streams:
        body.append(f"close_unstarted({', '.join(streams)})")
    if len(body) == 1:
        body.append("pass")
    settings = ""
    uses_datagrams = any(op[0] == "datagram" for op in program.ops)
    if faults or program.send_buffering or uses_datagrams or program.preempt or program.peer_streams:
        args = []
        if program.peer_streams:
            args.append(f"peer_bidi_stream_count={program.peer_streams}, "
                        f"peer_unidi_stream_count={program.peer_streams}")
        if uses_datagrams:
            args.append("datagram_receive_enabled=True")
        if program.send_buffering:
            args.append("send_buffering=True")
        if program.preempt:
            args.append(f"preempt={program.preempt!r}")
        if program.preempt and program.preempt_window_ms:
            args.append(f"preempt_window_ms={program.preempt_window_ms!r}")
        if faults:
            args.append(f"faults={sorted(faults)!r}")
        both = f"Settings({', '.join(args)})"
        settings = f", settings={{'client': {both}, 'server': {both}}}"
    server = (", server=stop_sending" if program.stop_sending
              else ", server=slow_reader" if program.slow_reader else "")
    transport = "memory" if backend == "simulator" else "udp"
    decorator = (f"@scenario(network={program.network!r}, seed={program.seed}, transport={transport!r}, "
                 f"timeout=60{settings}{server})")
    how = "--transport memory" if backend == "simulator" else f"--backend {backend} --repeat 50"
    doc_block = f'"""{doc.strip()}\n\nReproduce: quicsim run THIS_FILE {how}\n"""\n\n' if doc else ""
    return (doc_block + HEADER + "\n\n" + decorator + "\n" + f"async def fuzz_seed_{program.seed}(ctx):\n"
            + textwrap.indent("\n".join(body), "    ") + "\n")

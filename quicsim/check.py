"""``quicsim check TRACE...``: re-judge recorded histories offline with the same ledger.

The checker is independent of the system that produced the history: it reads the
JSON Lines a trace holds (API calls with their statuses, delivered events, queued
ranges; ``docs/history.schema.json`` lists the fields it needs) and replays them into
a fresh :class:`~quicsim.ledger.Ledger`, one per file. Exit 0 when every history
holds, 1 with a line per leak or violation, 2 for bad input (one line: what, where).

A history ends when each of its connections has had its SHUTDOWN_COMPLETE (MsQuic's last
event of a connection). One that stops before (a trace cut short, a run killed, an empty
file) is *incomplete*: judged as far as it goes, it lists the sends still pending where
it stops and exits 1, as a finding does. A last line cut mid-write (no newline, not JSON)
is dropped with a warning and the rest judged; a bad line anywhere else is bad input.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, TextIO, cast

from .enums import (
    ConnectionEventType,
    SendFlags,
    Status,
    StreamEventType,
    StreamOpenFlags,
    StreamShutdownFlags,
    StreamStartFlags,
)
from .ledger import Ledger
from .errors import BadTraceLine
from .trace import json_records
from .errors import BadHistory
from .send_order import send_name

_FLAGS = {"send": SendFlags, "shutdown": StreamShutdownFlags, "start": StreamStartFlags,
          "open_stream": StreamOpenFlags}
_CALLS = frozenset({"open_stream", "start", "send", "shutdown", "close", "connection_shutdown", "send_datagram"})


def _stream(stream_id: int | None, handle: int | None) -> SimpleNamespace:
    """A stream as the ledger sees one: an id, a handle, and itself as its core."""
    stream = SimpleNamespace(id=stream_id, handle=handle)
    stream.core = stream
    return stream


class _Context(str):
    """A client context as recorded (its repr): compared as text, printed as recorded."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _field(record: dict[str, Any], name: str, types: type | tuple[Any, ...], optional: bool = False) -> Any:
    if name not in record:
        if optional:
            return None
        raise BadHistory(f"missing field {name!r}")
    value = record[name]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                                                  else (types,))):
        raise BadHistory(f"field {name!r} has the wrong type: {value!r}")
    return value


def _enum(cls: Any, name: Any, what: str) -> Any:
    try:
        return cls[name]
    except KeyError:
        raise BadHistory(f"unknown {what} {name!r}") from None


def _flags(call: str, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise BadHistory(f"field 'flags' has the wrong type: {value!r}")
    cls = _FLAGS.get(call)
    if cls is None or value == "NONE":
        return 0
    total = 0
    for part in value.split("|"):
        total |= int(_enum(cls, part, f"{call} flag"))
    return total


class Replay:
    """Feeds one history into a ledger, with stand-ins for connections and streams."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._conns: dict[tuple[Any, ...], SimpleNamespace] = {}
        self._by_handle: dict[tuple[Any, ...], SimpleNamespace] = {}
        self._by_id: dict[tuple[Any, ...], SimpleNamespace] = {}
        #: connections whose SHUTDOWN_COMPLETE the history holds (their history ended)
        self.completed: set[tuple[Any, ...]] = set()

    def unfinished(self) -> list[str]:
        """Connections of the history without their SHUTDOWN_COMPLETE, in order of appearance."""
        return [label if cid is None else f"{label} ({cid})" for (label, cid) in self._conns
                if (label, cid) not in self.completed]

    @property
    def connections(self) -> int:
        return len(self._conns)

    def _conn(self, record: dict[str, Any]) -> SimpleNamespace:
        label = _field(record, "conn", str)
        key = (label, record.get("cid"))
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = SimpleNamespace(label=label, is_client=record.get("side") == "client")
        return conn

    def _stream(self, conn: SimpleNamespace, record: dict[str, Any], required: bool = True) -> SimpleNamespace | None:
        handle = _field(record, "stream_handle", int, optional=True)
        stream_id = _field(record, "stream_id", int, optional=True)
        stream = self._by_handle.get((id(conn), handle)) if handle is not None else None
        if stream is None and stream_id is not None:
            stream = self._by_id.get((id(conn), stream_id))
        if stream is None:
            if handle is None and stream_id is None:
                if required:
                    raise BadHistory("missing field 'stream_handle'")
                return None
            stream = _stream(stream_id, handle)
        if handle is not None:
            stream.handle = handle
            self._by_handle[(id(conn), handle)] = stream
        if stream_id is not None:
            stream.id = stream_id
            self._by_id[(id(conn), stream_id)] = stream
        return stream

    def feed(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "call":
            self._call(record)
        elif kind == "event":
            self._event(record)
        elif kind == "conn_event":
            self._conn_event(record)
        elif kind == "teardown":
            self.ledger.judge_unclosed()  # where the run judged what the application left
        elif kind == "queued":
            conn = self._conn(record)
            span = _field(record, "range", list)
            if len(span) != 2 or not all(isinstance(v, int) for v in span):
                raise BadHistory(f"field 'range' must be [start, end], got {span!r}")
            self.ledger.send_queued(conn, self._stream(conn, record), cast(int, record.get("send_id")), span[0],
                                    span[1], bool(record.get("fin")))
        elif not isinstance(kind, str):
            raise BadHistory("missing field 'kind'")
        # other kinds (applied operations, faults, network decisions, findings) are not
        # part of what the application saw: the checker ignores them

    def _call(self, record: dict[str, Any]) -> None:
        name = _field(record, "name", str)
        if name not in _CALLS:
            return
        conn = self._conn(record)
        status_name = _field(record, "status", str, optional=True)
        status = _enum(Status, status_name, "status") if status_name is not None else None
        stream = None if name in ("connection_shutdown", "send_datagram") else self._stream(
            conn, record, required=name != "open_stream" or status is Status.SUCCESS)
        flags = _flags(name, record.get("flags"))
        if name == "send":
            if status is None:
                raise BadHistory("a send without a status")
            self.ledger.send_call(conn, stream, cast(int, record.get("send_id")), status, _field(record, "bytes", int),
                                  flags, _Context(_field(record, "client_context", str)))
        elif name == "send_datagram":
            self.ledger.api_call(conn, None, name, status, {
                "datagram_id": record.get("datagram_id"), "bytes": record.get("bytes", 0),
                "client_context": _Context(record.get("client_context", ""))})
        else:
            self.ledger.api_call(conn, stream, name, status, {"flags": flags})

    def _event(self, record: dict[str, Any]) -> None:
        conn = self._conn(record)
        stream = self._stream(conn, record)
        etype = _enum(StreamEventType, _field(record, "name", str), "stream event")
        event = SimpleNamespace(type=etype)
        if etype is StreamEventType.SEND_COMPLETE:
            event.canceled = _field(record, "canceled", bool)
            event.client_context = _Context(_field(record, "client_context", str))
            event.send_id = record.get("send_id")
        elif etype is StreamEventType.START_COMPLETE:
            event.status = _enum(Status, _field(record, "status", str), "status")
            event.peer_accepted = bool(record.get("peer_accepted", True))
        self.ledger.stream_event(conn, stream, event)

    def _conn_event(self, record: dict[str, Any]) -> None:
        conn = self._conn(record)
        etype = _enum(ConnectionEventType, _field(record, "name", str), "connection event")
        event = SimpleNamespace(type=etype)
        if etype is ConnectionEventType.PEER_STREAM_STARTED:
            stream_id = _field(record, "stream_id", int)
            event.stream = self._by_id.get((id(conn), stream_id)) or _stream(stream_id, None)
            self._by_id[(id(conn), stream_id)] = event.stream
        elif etype is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED:
            event.datagram_id = record.get("datagram_id")
            event.state = SimpleNamespace(name=_field(record, "state", str))
        elif etype is ConnectionEventType.SHUTDOWN_COMPLETE:
            event.app_close_in_progress = bool(record.get("app_close_in_progress", False))
            self.completed.add((conn.label, record.get("cid")))
        elif etype is ConnectionEventType.CONNECTED and "send_buffering" in record:
            conn.settings = SimpleNamespace(send_buffering=bool(record["send_buffering"]))
        self.ledger.connection_event(conn, event)


@dataclass
class History:
    """One history judged: its ledger, and whether it ran to its end."""

    ledger: Ledger
    #: lines read (the number of the last one judged)
    lines: int = 0
    #: connections without their SHUTDOWN_COMPLETE where the history stops
    unfinished: list[str] = field(default_factory=list)
    #: connections the history names
    connections: int = 0
    #: the last line, cut mid-write and dropped (its number), if it was
    cut_line: int | None = None

    @property
    def complete(self) -> bool:
        """Each connection of the history reached SHUTDOWN_COMPLETE (an empty history has not)."""
        return self.connections > 0 and not self.unfinished


class _Lines:
    """Iterates lines, keeping the last one given and whether another follows it."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._it = iter(lines)
        self.last = ""

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        self.last = next(self._it)
        return self.last

    def at_end(self) -> bool:
        return next(self._it, None) is None


def judge_history(lines: Iterable[str], where: str = "<history>") -> History:
    """Replay JSON Lines into a fresh ledger and say whether the history ran to its end.
    Raises :class:`BadHistory` naming the line; a last line cut mid-write is dropped."""
    history = History(Ledger())
    replay = Replay(history.ledger)
    source = _Lines(lines)
    records = json_records(source)
    while True:
        try:
            number, record = next(records)
        except StopIteration:
            break
        except BadTraceLine as exc:
            if not source.last.endswith("\n") and source.at_end():
                history.cut_line = exc.number  # the writer stopped mid-line: the rest stands
                break
            what = f"not JSON ({exc.json_error})" if exc.json_error else "not a JSON object"
            raise BadHistory(f"{where}:{exc.number}: {what}") from None
        history.lines = number
        try:
            replay.feed(record)
        except BadHistory as exc:
            raise BadHistory(f"{where}:{number}: {exc}") from None
    history.unfinished = replay.unfinished()
    history.connections = replay.connections
    return history


def judge_lines(lines: Iterable[str], where: str = "<history>") -> Ledger:
    """Replay JSON Lines into a fresh ledger. Raises :class:`BadHistory` naming the line."""
    return judge_history(lines, where).ledger


def findings(ledger: Ledger, where: str) -> list[str]:
    """One line per leak or violation: send, client_context, stream, connection."""
    out = []
    for leak in ledger.leaks:
        stream = leak["stream_id"] if leak["stream_id"] is not None else f"handle={leak['stream_handle']}"
        out.append(f"{where}: LEAK send {send_name(leak['connection'], leak['send_id'])} "
                   f"client_context={leak['client_context']} "
                   f"stream {stream} connection {leak['connection']} ({leak['detected']})")
    for leak in ledger.datagram_leaks:
        out.append(f"{where}: LEAK datagram {leak['datagram_id']} client_context={leak['client_context']} "
                   f"connection {leak['connection']}")
    for violation in ledger.violations:
        out.append(f"{where}: VIOLATION {violation}")
    return out


def incomplete(history: History, where: str) -> list[str]:
    """For a history that stops before its end: one line saying so, then one per send
    still pending where it stops (send, client_context, stream, connection)."""
    if history.complete:
        return []
    if not history.connections:
        out = [f"{where}: INCOMPLETE the history ends before it begins: "
               + ("it is empty" if not history.lines else "no connection in it")]
    else:
        pending = history.ledger.pending_sends()
        out = [f"{where}: INCOMPLETE the history ends early, after line {history.lines}: no SHUTDOWN_COMPLETE "
               f"for connection {', '.join(history.unfinished)}; {len(pending)} sends still pending"]
        for send in pending:
            stream = send["stream_id"] if send["stream_id"] is not None else f"handle={send['stream_handle']}"
            out.append(f"{where}: PENDING send #{send['send']} client_context={send['client_context']} "
                       f"stream {stream} connection {send['connection']}")
    return out


def main(paths: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Judge each history; print findings (or ``ok``) to ``out``, bad input and warnings
    to ``err``. Exit 1 for a finding or a history that ends early."""
    out = out or sys.stdout
    err = err or sys.stderr
    results = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                history = judge_history(file, path)
        except BadHistory as exc:
            print(f"quicsim check: {exc}", file=err)
            return 2
        except (OSError, UnicodeDecodeError) as exc:
            print(f"quicsim check: {path}: cannot read: {getattr(exc, 'strerror', None) or exc}", file=err)
            return 2
        if history.cut_line is not None:
            print(f"quicsim check: warning: {path}:{history.cut_line}: the last line was cut mid-write; "
                  f"dropped, the rest judged", file=err)
        results.append((path, history))
    failed = False
    for path, history in results:
        ledger = history.ledger
        lines = incomplete(history, path) + findings(ledger, path)
        failed = failed or bool(lines)
        for line in lines:
            print(line, file=out)
        if not lines:
            print(f"{path}: ok ({ledger.sends} sends, {ledger.completions} completions)", file=out)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

"""A JSON Lines trace of a run: every API call with its status, every operation the
worker applied, every event delivered (or discarded), every fault that fired and every
network decision that was not a plain forward. One object per line, written and flushed
a few dozen at a time (and at the end), so a crash keeps all but the last few dozen.
"""

from __future__ import annotations

import asyncio
import enum
import json
import threading
import time
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from .enums import (ConnectionEventType, ConnectionShutdownFlags, SendFlags, StreamEventType, StreamOpenFlags,
                    StreamShutdownFlags, StreamStartFlags)
from .observer import Observer
from .errors import BadTraceLine

_SEND_COMPLETE = StreamEventType.SEND_COMPLETE
_RECEIVE = StreamEventType.RECEIVE
_FLAG_TYPES = {"send": SendFlags, "shutdown": StreamShutdownFlags, "start": StreamStartFlags,
               "open_stream": StreamOpenFlags, "connection_shutdown": ConnectionShutdownFlags}


def _flag_names(call: str, flags: Any) -> Any:
    cls = _FLAG_TYPES.get(call)
    if cls is None or not isinstance(flags, int):
        return _plain(flags)
    try:
        return cls(flags).name or "NONE"
    except ValueError:
        return int(flags)  # bits MsQuic does not define: kept as the number that was passed


FLUSH_EVERY = 64
_SEND_FLAG_NAMES: dict[int, str] = {}  # JSON of a send's flags, and of a status (Enum.name is slow)
_STATUS_NAMES: dict[Any, str] = {}
_RECEIVE_FLAG_NAMES: dict[Any, str] = {}
# The decimal strings of the small numbers most records carry (send ids, sizes; and ints
# given as client_context, whose repr it is, quoted): a lookup costs a fraction of str(n).
_SMALL = 4096
_DECIMAL = [str(n) for n in range(_SMALL)]
_QUOTED = [f'"{n}"' for n in range(_SMALL)]
_dumps = json.JSONEncoder(default=repr).encode
_json_str = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses

# Kinds of the records kept as tuples until written (their lines have the keys in the
# order the generic records have them; "t" is in seconds since the tracer started).
_SEND_CALL, _QUEUED, _SEND_COMPLETE_EVENT, _RECEIVE_EVENT, _NAMED = range(5)
_RANGE_END, _RANGE_END_FIN = '], "fin": false', '], "fin": true'  # a queued record's range ends, then its FIN


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name or str(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


def event_fields(event: Any, context: Callable[[Any], Any] = repr) -> dict[str, Any]:
    """An event's fields as JSON values; its ``client_context`` written by ``context``
    (its repr in traces, where it is compared as text)."""
    out: dict[str, Any] = {}
    if not is_dataclass(event):
        return out
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name == "buffers":
            out["bytes"] = sum(len(b) for b in value)
        elif f.name == "stream":
            out["stream_id"] = value.id
        elif f.name == "client_context":
            out[f.name] = context(value)
        else:
            out[f.name] = _plain(value)
    return out


def json_records(lines: Any) -> Any:
    """(line number, record) for each non-blank line of a JSON Lines trace; raises
    :class:`BadTraceLine` at the first line that is not a JSON object."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadTraceLine(number, exc.msg) from None
        if not isinstance(record, dict):
            raise BadTraceLine(number, None)
        yield number, record


class Tracer(Observer):
    """Writes the trace to ``path`` (or an open text file).

    The frequent records (sends, their completions, RECEIVE, applied operations,
    preemption points) cost one tuple append each: they are formatted a batch at a time
    when the batch is written. The rest are formatted as they happen. Either way what a
    record says is taken at the moment it happens (a stream's id, a ``client_context``'s
    repr, a mutable event's fields).
    """

    def __init__(self, path: str | Path | TextIO, clock: Callable[[], float] | None = None,
                 include_cids: bool = True) -> None:
        self.include_cids = include_cids
        self._file: TextIO
        self.path: Path | None
        if not isinstance(path, (str, Path)):
            self._file = path
            self._owns = False
            self.path = None
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
            self._owns = True
        # Without a clock, the first record picks the clock of the event loop it runs on:
        # a run in virtual time is traced in virtual time, as the runner traces it.
        self._clock = clock or self._first_clock
        self._start = clock() if clock is not None else 0.0
        self._written = 0
        #: the write that failed (a full disk, say): the tracer traces no more after it
        self.failed: OSError | None = None
        # Records waiting to be written: formatted lines, or tuples for the frequent
        # kinds. Appends need no lock (list.append is atomic); taking a batch does, so that
        # batches taken by two threads are written in order.
        self._records: list[Any] = []
        self._lock = threading.Lock()
        self._where_cache: dict[Any, tuple[int | None, str]] = {}
        # (connection, callback depth) -> the event last delivered at that depth: a call made
        # inside a handler names the event whose handler made it ("in_handler")
        self._delivering: dict[tuple[Any, int], str] = {}  # (a SEND_COMPLETE: its context's JSON)

    def _first_clock(self) -> float:
        """The default clock, chosen at the first record: the running loop's, else
        ``time.monotonic``; times count from that record."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            clock = time.monotonic
        else:
            # the virtual-time loop's clock, read without a Python call per record
            time_reader = getattr(loop, "time_reader", None)
            clock = time_reader() if time_reader is not None else loop.time
        self._clock = clock
        self._start = now = clock()
        return now

    @property
    def lines(self) -> int:
        """Records traced so far (written or waiting for the next write)."""
        return self._written + len(self._records)

    def _write(self, record: dict[str, Any]) -> None:
        if self._file.closed or self.failed is not None:
            return
        record["t"] = round(self._clock() - self._start, 6)
        self._records.append(_dumps(record))
        if len(self._records) >= FLUSH_EVERY:
            self._drain()

    def _drain(self) -> None:
        with self._lock:
            self._write_waiting()

    def flush(self) -> None:
        """Write what waits now (raises the OSError of a write that fails; see ``failed``)."""
        self._drain()

    def _write_waiting(self) -> None:
        """Format and write the waiting records, and flush (the lock held): what was
        written survives a crash, without a system call per line."""
        records = self._records
        batch = records[:]
        del records[:len(batch)]  # what another thread appended meanwhile stays
        if not batch or self._file.closed or self.failed is not None:
            return
        self._written += len(batch)
        lines = self._format(batch)
        lines.append("")  # the last line's newline, without copying the batch again
        try:
            self._file.write("\n".join(lines))
            self._file.flush()
        except OSError as exc:
            self._stop(exc)
            raise  # the core stops calling this observer, and says so once

    def _stop(self, exc: OSError) -> None:
        """A write failed: trace no more (what was written stays), and give the file back."""
        self.failed = exc
        self._records.clear()
        if self._owns:
            try:
                self._file.close()
            except OSError:
                pass  # closing flushes what the failed write left: it fails the same way

    def _format(self, batch: list[Any]) -> list[str]:
        """The JSON lines of a batch of records (tuples are ``(kind, conn, stream,
        stream id, ..., clock)``; strings are lines already)."""
        start = self._start
        decimal = _DECIMAL
        lines: list[str] = []
        append = lines.append
        last_stream = last_id = where = None  # runs of records of one stream are the rule
        last_end, last_end_text = -1, ""
        # Records of one instant share its text (in virtual time a burst of sends and
        # their completions is one instant); formatting a time is a third of a line's cost.
        last_t, t_tail = None, ""  # t_tail: ', "t": <time>}', the end of every line
        # The start of each frequent kind's line up to its first varying field, built
        # when its stream (or a send's status) changes: fewer pieces to join per line.
        call_where = queued_where = complete_where = None
        call_status = call_head = queued_head = complete_false = complete_true = ""
        for r in batch:
            if type(r) is str:
                append(r)
                continue
            t = r[-1]
            if t != last_t:
                last_t, t_tail = t, f', "t": {t - start:.6f}}}'
            if r[2] is not last_stream or r[3] != last_id or last_stream is None:
                last_stream, last_id = r[2], r[3]
                where = self._where_json(r[1], last_stream, last_id)
            kind = r[0]
            if kind is _SEND_CALL:
                _, _, _, _, send_id, status, length, flags, context, _ = r
                flag_name = _SEND_FLAG_NAMES.get(flags)
                if flag_name is None:
                    flag_name = _SEND_FLAG_NAMES[flags] = _dumps(_flag_names("send", flags))
                status_name = _STATUS_NAMES.get(status)
                if status_name is None:
                    status_name = _STATUS_NAMES[status] = _dumps(_plain(status))
                if call_where is not where or call_status is not status_name:
                    call_where, call_status = where, status_name
                    call_head = f'{{"kind": "call", "name": "send", {where}, "status": {status_name}, "send_id": '
                send_id_text = decimal[send_id] if 0 <= send_id < _SMALL else str(send_id)
                length_text = decimal[length] if 0 <= length < _SMALL else str(length)
                append(f'{call_head}{send_id_text}, "bytes": {length_text}, "flags": {flag_name}, '
                       f'"client_context": {context}{t_tail}')
            elif kind is _QUEUED:
                _, _, _, _, send_id, offset, end, fin, _ = r
                if queued_where is not where:
                    queued_where = where
                    queued_head = f'{{"kind": "queued", "name": "send", {where}, "send_id": '
                send_id_text = decimal[send_id] if 0 <= send_id < _SMALL else str(send_id)
                # A stream's ranges follow each other: most start where the last one ended.
                offset_text = last_end_text if offset == last_end else str(offset)
                last_end, last_end_text = end, str(end)
                append(f'{queued_head}{send_id_text}, "range": [{offset_text}, {last_end_text}'
                       f'{_RANGE_END_FIN if fin else _RANGE_END}{t_tail}')
            elif kind is _SEND_COMPLETE_EVENT:
                _, _, _, _, canceled, context, send_id, _ = r
                if complete_where is not where:
                    complete_where = where
                    complete_false = f'{{"kind": "event", "name": "SEND_COMPLETE", {where}, "canceled": false, "client_context": '
                    complete_true = f'{{"kind": "event", "name": "SEND_COMPLETE", {where}, "canceled": true, "client_context": '
                send_id_text = decimal[send_id] if 0 <= send_id < _SMALL else str(send_id)
                append(f'{complete_true if canceled else complete_false}{context}, "send_id": {send_id_text}{t_tail}')
            elif kind is _RECEIVE_EVENT:
                event = r[4]
                flags = _RECEIVE_FLAG_NAMES.get(event.flags)
                if flags is None:
                    flags = _RECEIVE_FLAG_NAMES[event.flags] = _dumps(_plain(event.flags))
                append(f'{{"kind": "event", "name": "RECEIVE", {where}, "absolute_offset": {event.absolute_offset}, '
                       f'"total_buffer_length": {event.total_buffer_length}, "bytes": {sum(map(len, event.buffers))}, '
                       f'"flags": {flags}{t_tail}')
            else:  # _NAMED
                append(f'{{"kind": "{r[4]}", "name": {_json_str(r[5])}, {where}{t_tail}')
        return lines

    def _where_json(self, conn: Any, stream: Any, stream_id: Any) -> str:
        """The ``_where`` fields as a JSON fragment, cached per stream (and per
        connection for records of no stream)."""
        key = conn if stream is None else stream
        cached = self._where_cache.get(key)
        if cached is None or cached[0] != stream_id:
            where = self._where(conn, stream)
            if stream is not None:
                where["stream_id"] = stream_id  # the id when the record happened
            cached = (stream_id, _dumps(where)[1:-1])
            self._where_cache[key] = cached
        return cached[1]

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _where(self, conn: Any, stream: Any) -> dict[str, Any]:
        where = {"side": "client" if conn.is_client else "server", "conn": conn.label}
        quic = getattr(conn, "quic", None)  # (the real library's connections keep their ids to themselves)
        if self.include_cids and quic is not None:
            # The QUIC connection id is random: left out where traces must be reproducible.
            where["cid"] = quic.original_destination_connection_id.hex()
        if stream is not None:
            where["stream_id"] = stream.id
            where["stream_handle"] = stream.handle
        return where

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        record = {"kind": "call", "name": name, **self._where(conn, stream),
                  "status": _plain(status) if status is not None else None}
        depth = getattr(conn, "callback_depth", 0)
        if depth:  # called from an event handler (MsQuic allows most calls there, inline)
            event = self._delivering.get((conn, depth - 1), "an event handler")
            if event.startswith('"') or event[0].isdigit():  # a SEND_COMPLETE: its client_context's JSON
                event = f"SEND_COMPLETE client_context={json.loads(event)}"
            record["in_handler"] = event
        for key, value in args.items():
            if key == "client_context":
                record[key] = repr(value)
            elif key == "flags":
                record[key] = _flag_names(name, value)
            else:
                record[key] = _plain(value)
        self._write(record)

    # The frequent records: one tuple each, formatted by _format.
    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        records = self._records
        context = (_QUOTED[client_context] if type(client_context) is int and 0 <= client_context < _SMALL
                   else _json_str(repr(client_context)))  # its repr now: the object may change later
        records.append((_SEND_CALL, conn, stream, stream.id, send_id, status, length, flags, context, self._clock()))
        if len(records) >= FLUSH_EVERY:
            self._drain()

    def send_queued(self, conn: Any, stream: Any, send_id: int, offset: int, end: int, fin: bool) -> None:
        records = self._records
        records.append((_QUEUED, conn, stream, stream.id, send_id, offset, end, fin, self._clock()))
        if len(records) >= FLUSH_EVERY:
            self._drain()

    def sends_queued(self, conn: Any, stream: Any, queued: list[tuple[int, int, int, bool]]) -> None:
        # Observer's default, inline: one record per send as send_queued writes it
        records = self._records
        stream_id = stream.id
        for send_id, offset, end, fin in queued:
            records.append((_QUEUED, conn, stream, stream_id, send_id, offset, end, fin, self._clock()))
            if len(records) >= FLUSH_EVERY:
                self._drain()

    def preempted(self, conn: Any, stream: Any, call: str) -> None:
        self._named(conn, stream, "preempt", call)

    def operation_applied(self, conn: Any, stream: Any, kind: str) -> None:
        self._named(conn, stream, "applied", kind)

    def network_window(self, conn: Any, stream: Any, call: str, seconds: float,
                       let_through: dict[str, int]) -> None:
        self._write({"kind": "window", "name": call, **self._where(conn, stream), "ms": round(seconds * 1000, 3),
                     **let_through})

    def _named(self, conn: Any, stream: Any, kind: str, name: str) -> None:
        """A record of a ``kind`` and a ``name`` only (once per call or flush, not per send)."""
        records = self._records
        records.append((_NAMED, conn, stream, stream.id if stream is not None else None, kind, name,
                        self._clock()))
        if len(records) >= FLUSH_EVERY:
            self._drain()

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        records = self._records
        event_type = event.type
        if event_type is _SEND_COMPLETE:
            context = event.client_context
            context = _QUOTED[context] if type(context) is int and 0 <= context < _SMALL else _json_str(repr(context))
            records.append((_SEND_COMPLETE_EVENT, conn, stream, stream.id, event.canceled, context, event.send_id,
                            self._clock()))
            self._delivering[conn, getattr(conn, "callback_depth", 0)] = context  # (its JSON: read if needed)
        elif event_type is _RECEIVE:  # frozen, and holds nothing mutable: read when written
            records.append((_RECEIVE_EVENT, conn, stream, stream.id, event, self._clock()))
            self._delivering[conn, getattr(conn, "callback_depth", 0)] = "RECEIVE"
        else:
            self._delivering[conn, getattr(conn, "callback_depth", 0)] = event_type.name
            self._write({"kind": "event", "name": event_type.name, **self._where(conn, stream),
                         **event_fields(event)})
            return
        if len(records) >= FLUSH_EVERY:
            self._drain()

    def connection_event(self, conn: Any, event: Any) -> None:
        self._delivering[conn, getattr(conn, "callback_depth", 0)] = event.type.name
        record = {"kind": "conn_event", "name": event.type.name, **self._where(conn, None), **event_fields(event)}
        if event.type is ConnectionEventType.CONNECTED:
            # what the ledger judges by (quicsim check reads it back): rule 5 with buffering
            record["send_buffering"] = bool(getattr(getattr(conn, "settings", None), "send_buffering", True))
        self._write(record)

    def event_discarded(self, conn: Any, stream: Any, event: Any) -> None:
        self._write({"kind": "discarded", "name": event.type.name, **self._where(conn, stream),
                     **event_fields(event)})

    def fault_hit(self, conn: Any, stream: Any, fault: str, what: str) -> None:
        self._write({"kind": "fault", "name": fault, "what": what, **self._where(conn, stream)})

    def network(self, kind: str, data: dict[str, Any]) -> None:
        """A ``Network`` listener: impairment decisions (drops, delays, duplicates) and changes."""
        if kind == "decision":
            if data["reason"] == "forward" and not any(data["delays"]):
                return  # plain forwards would drown the trace
            self._write({"kind": "datagram", "name": data["reason"], **data})
        else:
            self._write({"kind": "network", "name": data["change"], **data})

    def teardown(self) -> None:
        self._write({"kind": "teardown"})

    def finding(self, kind: str, detail: dict[str, Any]) -> None:
        """A ledger finding (leak or violation) at the end of a run."""
        self._write({"kind": kind, **detail})

    def close(self) -> None:
        with self._lock:  # no other thread is writing a batch as the file closes
            if self._file.closed or self.failed is not None:
                return
            try:
                self._write_waiting()
                if self._owns:
                    self._file.close()
                else:
                    self._file.flush()
            except OSError as exc:
                if self.failed is None:
                    self._stop(exc)


def record_findings(report: dict[str, Any], expect: str, passed: bool, errors: Sequence[str] = (),
                    tracer: Tracer | None = None, qlog: Any = None) -> list[str]:
    """At the end of a run, write the ledger's findings (``report`` is ``Ledger.report()``),
    the run's errors and its verdict into its trace (``leak``, ``violation``, ``stalled``,
    ``error``, ``verdict`` records, read by ``quicsim explain`` and the report) and its qlog
    (``quicsim:<finding>`` events; the qlog files are written then). Returns what could not
    be written (a full disk, say): the verdict stands without it."""
    # (kind in the trace, kind in the qlog, detail): stalled sends are "stalled_send" in qlog
    findings: list[tuple[str, str, dict[str, Any]]] = [
        *(("leak", "leak", leak) for leak in report["leaks"]),
        *(("violation", "violation", {"text": text}) for text in report["violations"]),
        *(("stalled", "stalled_send", send) for send in report["stalled"]),
        *(("error", "error", {"text": text}) for text in errors),
    ]
    failed: list[str] = []
    if tracer is not None and tracer.failed is None:
        try:
            for kind, _, detail in findings:
                tracer.finding(kind, detail)
            tracer.finding("verdict", {"expect": expect, "passed": passed})
            tracer.flush()
        except OSError:
            pass  # the tracer stopped and keeps what failed (tracer.failed)
    if tracer is not None and tracer.failed is not None:
        failed.append(f"the trace {tracer.path}: {type(tracer.failed).__name__}: {tracer.failed}")
    if qlog is not None:  # the findings go on qvis's timeline too
        for _, kind, detail in findings:
            qlog.finding(kind, detail)
        try:
            qlog.flush()
        except OSError as exc:
            failed.append(f"the qlog: {type(exc).__name__}: {exc}")
    return failed

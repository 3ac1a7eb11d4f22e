"""A JSON Lines trace of a run: every API call with its status, every operation the
worker applied, every event delivered (or discarded), every fault that fired and every
network decision that was not a plain forward. One object per line, written as it
happens (flushed every few dozen lines and at the end), so a crash keeps what was written.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from .enums import ConnectionShutdownFlags, SendFlags, StreamEventType, StreamOpenFlags, StreamShutdownFlags, StreamStartFlags
from .observer import Observer

_SEND_COMPLETE = StreamEventType.SEND_COMPLETE
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
_SEND_FLAG_NAMES: dict[int, str] = {}
_dumps = json.JSONEncoder(default=repr).encode
_json_str = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses


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


def event_fields(event: Any) -> dict:
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
            out[f.name] = repr(value)
        else:
            out[f.name] = _plain(value)
    return out


class BadTraceLine(ValueError):
    """A JSON Lines trace line that is not a JSON object: its number, and the JSON error
    (None when the line is JSON but not an object)."""

    def __init__(self, number: int, json_error: str | None) -> None:
        super().__init__(f"line {number}: {json_error or 'not a JSON object'}")
        self.number = number
        self.json_error = json_error


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
    """Writes the trace to ``path`` (or an open text file)."""

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
        self._clock = clock or time.monotonic
        self._start = self._clock()
        self.lines = 0
        self._buffer: list[str] = []
        self._lock = threading.Lock()  # calls may come from any thread
        self._where_cache: dict[Any, tuple] = {}

    def _write(self, record: dict) -> None:
        if self._file.closed:
            return
        record["t"] = round(self._clock() - self._start, 6)
        self._emit(_dumps(record))

    def _emit(self, line: str) -> None:
        with self._lock:
            buffer = self._buffer
            buffer.append(line)
            self.lines += 1
            if len(buffer) >= FLUSH_EVERY:
                self._drain()

    def _drain(self) -> None:
        """Write buffered lines and flush: what was written survives a crash, without a
        system call per line."""
        if self._buffer and not self._file.closed:
            self._file.write("\n".join(self._buffer) + "\n")
            self._file.flush()
        self._buffer.clear()

    def _t(self) -> str:
        return f"{self._clock() - self._start:.6f}"

    def _where_json(self, conn: Any, stream: Any) -> str:
        """The ``_where`` fields as a JSON fragment, cached per stream (the hot records)."""
        cached = self._where_cache.get(stream)
        if cached is None or cached[0] != stream.id:
            cached = (stream.id, _dumps(self._where(conn, stream))[1:-1])
            self._where_cache[stream] = cached
        return cached[1]

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _where(self, conn: Any, stream: Any) -> dict:
        where = {"side": "client" if conn.is_client else "server", "conn": conn.label}
        if self.include_cids:
            # The QUIC connection id is random: left out where traces must be reproducible.
            where["cid"] = conn.quic.original_destination_connection_id.hex()
        if stream is not None:
            where["stream_id"] = stream.id
            where["stream_handle"] = stream.handle
        return where

    def api_call(self, conn, stream, name, status, args) -> None:
        record = {"kind": "call", "name": name, **self._where(conn, stream),
                  "status": _plain(status) if status is not None else None}
        for key, value in args.items():
            if key == "client_context":
                record[key] = repr(value)
            elif key == "flags":
                record[key] = _flag_names(name, value)
            else:
                record[key] = _plain(value)
        self._write(record)

    # The per-send records are formatted directly: they are most of a trace.
    def send_call(self, conn, stream, send_id, status, length, flags, client_context) -> None:
        flag_name = _SEND_FLAG_NAMES.get(flags)
        if flag_name is None:
            flag_name = _SEND_FLAG_NAMES[flags] = _dumps(_flag_names("send", flags))
        self._emit(f'{{"kind": "call", "name": "send", {self._where_json(conn, stream)}, '
                   f'"status": "{status.name}", "send_id": {send_id}, "bytes": {length}, "flags": {flag_name}, '
                   f'"client_context": {_json_str(repr(client_context))}, "t": {self._t()}}}')

    def send_queued(self, conn, stream, send_id, offset, end, fin) -> None:
        self._emit(f'{{"kind": "queued", "name": "send", {self._where_json(conn, stream)}, "send_id": {send_id}, '
                   f'"range": [{offset}, {end}], "fin": {"true" if fin else "false"}, "t": {self._t()}}}')

    def preempted(self, conn, stream, call) -> None:
        self._write({"kind": "preempt", "name": call, **self._where(conn, stream)})

    def operation_applied(self, conn, stream, kind) -> None:
        self._write({"kind": "applied", "name": kind, **self._where(conn, stream)})

    def stream_event(self, conn, stream, event) -> None:
        if event.type is _SEND_COMPLETE:
            self._emit(f'{{"kind": "event", "name": "SEND_COMPLETE", {self._where_json(conn, stream)}, '
                       f'"canceled": {"true" if event.canceled else "false"}, '
                       f'"client_context": {_json_str(repr(event.client_context))}, "send_id": {event.send_id}, '
                       f'"t": {self._t()}}}')
            return
        self._write({"kind": "event", "name": event.type.name, **self._where(conn, stream),
                     **event_fields(event)})

    def connection_event(self, conn, event) -> None:
        self._write({"kind": "conn_event", "name": event.type.name, **self._where(conn, None),
                     **event_fields(event)})

    def event_discarded(self, conn, stream, event) -> None:
        self._write({"kind": "discarded", "name": event.type.name, **self._where(conn, stream),
                     **event_fields(event)})

    def fault_hit(self, conn, stream, fault, what) -> None:
        self._write({"kind": "fault", "name": fault, "what": what, **self._where(conn, stream)})

    def network(self, kind: str, data: dict) -> None:
        """A ``Network`` listener: impairment decisions (drops, delays, duplicates) and changes."""
        if kind == "decision":
            if data["reason"] == "forward" and not any(data["delays"]):
                return  # plain forwards would drown the trace
            self._write({"kind": "datagram", "name": data["reason"], **data})
        else:
            self._write({"kind": "network", "name": data["change"], **data})

    def finding(self, kind: str, detail: dict) -> None:
        """A ledger finding (leak or violation) at the end of a run."""
        self._write({"kind": kind, **detail})

    def close(self) -> None:
        if self._file.closed:
            return
        with self._lock:
            self._drain()
        if self._owns:
            self._file.close()
        else:
            self._file.flush()

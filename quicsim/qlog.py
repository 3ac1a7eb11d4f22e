"""qlog: one JSON-SEQ file (qlog 0.3, the form qvis reads) per connection, holding
aioquic's own transport and recovery events plus quicsim's: stream data moved from the
application to the transport at each send, each SEND_COMPLETE, each shutdown,
``simulation`` markers when the network changes, and quicsim's findings (``quicsim:fault``
when an injected fault fires, ``quicsim:leak``, ``quicsim:violation``,
``quicsim:stalled_send``, ``quicsim:error``) so the bug is on qvis's timeline. Times come from the loop's clock
(virtual on the memory transport), not the wall clock aioquic would use. A ``client_context``
is written as its value (``{"repr": ...}`` when JSON cannot hold it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from aioquic.quic.logger import QuicLogger, QuicLoggerTrace, hexdump

from .contexts import context_value, with_context_values
from .observer import Observer
from .trace import event_fields

RS = "\x1e"


class _Trace(QuicLoggerTrace):
    """aioquic's trace (its frame encoders), keeping its events in a list of its own,
    timed by the loop's clock."""

    def __init__(self, *, is_client: bool, odcid: bytes, clock: Callable[[], float], start: float) -> None:
        super().__init__(is_client=is_client, odcid=odcid)
        self.is_client = is_client
        self.odcid = odcid
        self.clock = clock
        self.start = start
        self.events: list[dict[str, Any]] = []

    def log_event(self, *, category: str, event: str, data: dict[str, Any]) -> None:
        self.events.append({"time": round((self.clock() - self.start) * 1000, 3),
                            "name": f"{category}:{event}", "data": data})


class QlogWriter(QuicLogger, Observer):
    """Give it to ``open_pair(qlog=...)`` (it is both aioquic's logger and an observer);
    ``flush()`` writes ``<prefix>-client.sqlog`` and ``<prefix>-server.sqlog``."""

    def __init__(self, directory: str | Path, prefix: str, clock: Callable[[], float]) -> None:
        QuicLogger.__init__(self)
        self.directory = Path(directory)
        self.prefix = prefix
        self._clock = clock
        self._start = clock()
        #: every trace aioquic started, in order
        self.traces: list[_Trace] = []
        self._by_key: dict[tuple[bool, bytes], _Trace] = {}
        self._by_label: dict[str, _Trace] = {}  # connection label -> its trace, for findings
        self.paths: list[Path] = []

    # -- aioquic's side
    def start_trace(self, is_client: bool, odcid: bytes) -> QuicLoggerTrace:
        trace = _Trace(is_client=is_client, odcid=odcid, clock=self._clock, start=self._start)
        self.traces.append(trace)
        self._by_key[(is_client, odcid)] = trace
        return trace

    def end_trace(self, trace: QuicLoggerTrace) -> None:
        pass  # written by flush(): quicsim's last events come after aioquic's end

    # -- quicsim's side
    def _trace(self, conn: Any) -> _Trace | None:
        trace = self._by_key.get((conn.is_client, conn.quic.original_destination_connection_id))
        if trace is not None:
            self._by_label.setdefault(conn.label, trace)
        return trace

    def _log(self, conn: Any, name: str, data: dict[str, Any]) -> None:
        trace = self._trace(conn)
        if trace is not None:
            category, event = name.split(":", 1)
            trace.log_event(category=category, event=event, data=data)

    def send_queued(self, conn: Any, stream: Any, send_id: int, offset: int, end: int, fin: bool) -> None:
        self._log(conn, "transport:stream_data_moved", {"stream_id": stream.id, "offset": offset,
                                                        "length": end - offset, "from": "application",
                                                        "to": "transport", "send_id": send_id})

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        if name in ("shutdown", "close", "connection_shutdown", "start"):
            data = {"call": name, "status": getattr(status, "name", None)}
            if stream is not None:
                data["stream_id"] = stream.id
            data.update({k: (int(v) if isinstance(v, int) else v) for k, v in args.items() if v is not None})
            self._log(conn, "quicsim:api_call", data)

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        data = {"stream_id": stream.id, **event_fields(event, context_value)}
        if event.type.name == "SEND_COMPLETE":
            self._log(conn, "quicsim:send_complete", data)
        elif event.type.name != "RECEIVE":
            self._log(conn, "quicsim:stream_event", {"event": event.type.name, **data})

    def connection_event(self, conn: Any, event: Any) -> None:
        self._log(conn, "quicsim:connection_event", {"event": event.type.name, **event_fields(event, context_value)})

    def fault_hit(self, conn: Any, stream: Any, fault: str, what: str) -> None:
        data = {"fault": fault, "what": what}
        if stream is not None:
            data["stream_id"] = stream.id
        self._log(conn, "quicsim:fault", data)

    def finding(self, kind: str, detail: dict[str, Any]) -> None:
        """A finding at the end of a run (``leak``, ``violation``, ``stalled_send``, ``error``):
        logged now as ``quicsim:<kind>`` in the trace of the connection it names, or in
        every trace when it names none."""
        trace = self._by_label.get(str(detail.get("connection", "")))
        data = {k: v for k, v in with_context_values(detail).items() if v is not None}
        for target in [trace] if trace is not None else list(self.traces):
            target.log_event(category="quicsim", event=kind, data=data)

    def network(self, kind: str, data: dict[str, Any]) -> None:
        """A ``Network`` listener: changes become ``simulation:marker`` in every trace."""
        if kind != "network_change":
            return
        for trace in self.traces:
            trace.log_event(category="simulation", event="marker",
                            data={"type": "network_change", "message": json.dumps(data, default=repr)})

    def flush(self) -> list[Path]:
        """Write one JSON-SEQ file per connection; returns their paths."""
        self.directory.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        for trace in self.traces:
            side = "client" if trace.is_client else "server"
            counts[side] = counts.get(side, 0) + 1
            suffix = "" if counts[side] == 1 else f"-{counts[side]}"
            path = self.directory / f"{self.prefix}-{side}{suffix}.sqlog"
            header = {
                "qlog_version": "0.3",
                "qlog_format": "JSON-SEQ",
                "title": f"quicsim {self.prefix} ({side})",
                "trace": {
                    "common_fields": {"ODCID": hexdump(trace.odcid), "reference_time": 0,
                                      "time_format": "relative"},
                    "vantage_point": {"name": "quicsim", "type": side},
                },
            }
            with open(path, "w", encoding="utf-8") as out:
                out.write(RS + json.dumps(header) + "\n")
                for event in trace.events:
                    out.write(RS + json.dumps(event, default=repr) + "\n")
            self.paths.append(path)
        self.traces.clear()
        return self.paths

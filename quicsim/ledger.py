"""The ledger: checks MsQuic's send-completion contract from what an application sees.

It watches API calls with their returned statuses and the events delivered to
handlers (nothing else: no core state), and reports

- leaks: sends that returned PENDING but had no SEND_COMPLETE by the time their stream
  (SHUTDOWN_COMPLETE, StreamClose) or connection (SHUTDOWN_COMPLETE) finished;
- violations: duplicate completions, completions of rejected or unknown sends,
  completions out of send order (except rule 5's late sends), events after a stream's
  SHUTDOWN_COMPLETE, repeated once-only events, events on unstarted streams, and a
  connection SHUTDOWN_COMPLETE before one of its streams'.

All checks are O(1) per call or event.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .enums import ConnectionEventType, SendFlags, Status, StreamEventType, StreamShutdownFlags
from .observer import Observer

_SEND_COMPLETE = StreamEventType.SEND_COMPLETE
_FIN = int(SendFlags.FIN)
_UNSTARTED_OK = frozenset({StreamEventType.SEND_SHUTDOWN_COMPLETE, StreamEventType.SHUTDOWN_COMPLETE})
_ONCE = frozenset({
    StreamEventType.START_COMPLETE,
    StreamEventType.SEND_SHUTDOWN_COMPLETE,
    StreamEventType.SHUTDOWN_COMPLETE,
})


class _Send:
    __slots__ = ("send_id", "stream", "length", "flags", "client_context", "late", "done")

    def __init__(self, send_id, stream, length, flags, client_context, late):
        self.send_id = send_id
        self.stream = stream
        self.length = length
        self.flags = flags
        self.client_context = client_context
        self.late = late
        self.done = False


class _StreamRecord:
    __slots__ = ("order", "fin_requested", "started", "start_indicated", "shutdown_complete", "seen_once",
                 "conn", "handle")

    def __init__(self, conn_label: str, handle: int) -> None:
        self.order: deque[_Send] = deque()  # accepted sends, oldest first
        self.fin_requested = False
        self.started = False
        self.start_indicated = False  # START_COMPLETE delivered, even with a failure
        self.shutdown_complete = False
        self.seen_once: set = set()
        self.conn = conn_label
        self.handle = handle


class Ledger(Observer):
    """Exactly-once and ordering checker for SEND_COMPLETE; share one across connections."""

    def __init__(self) -> None:
        self.sends = 0
        self.rejected = 0
        self.completions = 0
        self.canceled = 0
        self.leaks: list[dict] = []
        self.violations: list[str] = []
        self._pending: dict[tuple[int, int], _Send] = {}  # (id(conn), send_id) -> send
        self._rejected_ids: set[tuple[int, int]] = set()
        self._done_ids: set[tuple[int, int]] = set()
        self._streams: dict[int, _StreamRecord] = {}  # id(stream) -> record
        self._conn_streams: dict[int, dict[int, Any]] = {}  # id(conn) -> {id(stream): stream}
        self._keep: dict[int, Any] = {}  # keep observed objects alive so ids stay unique
        # Datagrams: each accepted one must reach exactly one final state.
        self.datagrams = 0
        self.datagram_leaks: list[dict] = []
        self._datagrams: dict[tuple[int, int], dict] = {}
        self._datagrams_done: set[tuple[int, int]] = set()
        # API calls may come from any thread, events from the loop's: one lock for both.
        self._lock = threading.RLock()

    # ------------------------------------------------------------ observer hooks

    def _record(self, conn: Any, stream: Any) -> _StreamRecord:
        key = id(stream)
        record = self._streams.get(key)
        if record is None:
            record = self._streams[key] = _StreamRecord(conn.label, stream.handle)
            self._keep[key] = stream
            self._keep[id(conn)] = conn
            self._conn_streams.setdefault(id(conn), {})[key] = stream
        return record

    def _send_call(self, conn, stream, send_id, status, length, flags, client_context) -> None:
        key = (id(conn), send_id)
        if status is Status.PENDING:
            record = self._streams.get(id(stream)) or self._record(conn, stream)
            send = _Send(send_id, stream, length, flags, client_context, record.fin_requested)
            self.sends += 1
            self._pending[key] = send
            record.order.append(send)
            if flags & _FIN:
                record.fin_requested = True
        else:
            self.rejected += 1
            self._rejected_ids.add(key)

    def _api_call(self, conn, stream, name, status, args) -> None:
        if name == "send":
            self._send_call(conn, stream, args["send_id"], status, args["bytes"], args["flags"],
                           args["client_context"])
        elif name == "shutdown" and status is not None and not status.failed:
            if args["flags"] & StreamShutdownFlags.GRACEFUL:
                self._record(conn, stream).fin_requested = True
        elif name == "close" and stream is not None:
            # StreamClose returned: every send on the stream must have completed.
            self._leak_check(conn, stream, "after StreamClose returned")
        elif name == "open_stream" and stream is not None:
            self._record(conn, stream)
        elif name == "send_datagram" and status is Status.PENDING:
            self.datagrams += 1
            self._keep[id(conn)] = conn
            self._datagrams[(id(conn), args["datagram_id"])] = {
                "connection": conn.label, "datagram_id": args["datagram_id"],
                "client_context": repr(args["client_context"]), "bytes": args["bytes"]}

    def _stream_event(self, conn, stream, event) -> None:
        record = self._streams.get(id(stream)) or self._record(conn, stream)
        etype = event.type
        if etype is _SEND_COMPLETE and not record.shutdown_complete:
            self._on_send_complete(conn, stream, record, event)  # the hot path
            return
        if record.shutdown_complete:
            self._violation(conn, stream, f"{etype.name} delivered after SHUTDOWN_COMPLETE")
        if etype in _ONCE:
            if etype in record.seen_once:
                self._violation(conn, stream, f"{etype.name} delivered twice")
            record.seen_once.add(etype)
        if etype is StreamEventType.START_COMPLETE:
            record.started = record.started or not event.status.failed
            record.start_indicated = True
        elif etype is _SEND_COMPLETE:
            self._on_send_complete(conn, stream, record, event)
            return
        elif not record.start_indicated and stream.is_local and etype not in _UNSTARTED_OK:
            # A failed start (START_COMPLETE with an error) may still be followed by its
            # shutdown events (SHUTDOWN_ON_FAIL); before any START_COMPLETE, only StreamClose
            # or an ABORT|IMMEDIATE shutdown may raise events (its shutdown completions).
            self._violation(conn, stream, f"{etype.name} delivered to a stream that never started")
        if etype is StreamEventType.SHUTDOWN_COMPLETE:
            self._leak_check(conn, stream, "at its SHUTDOWN_COMPLETE")
            record.shutdown_complete = True

    def send_call(self, conn, stream, send_id, status, length, flags, client_context) -> None:
        with self._lock:
            self._send_call(conn, stream, send_id, status, length, flags, client_context)

    def api_call(self, conn, stream, name, status, args) -> None:
        with self._lock:
            self._api_call(conn, stream, name, status, args)

    def stream_event(self, conn, stream, event) -> None:
        with self._lock:
            self._stream_event(conn, stream, event)

    def connection_event(self, conn, event) -> None:
        with self._lock:
            self._connection_event(conn, event)

    def _datagram_state(self, conn, event) -> None:
        key = (id(conn), event.datagram_id)
        final = event.state.name in ("ACKNOWLEDGED", "ACKNOWLEDGED_SPURIOUS", "LOST_DISCARDED", "CANCELED")
        if key in self._datagrams_done:
            self.violations.append(f"{conn.label}: datagram {event.datagram_id} got {event.state.name} "
                                   f"after its final state")
        elif key not in self._datagrams:
            self.violations.append(f"{conn.label}: {event.state.name} for unknown datagram {event.datagram_id}")
        elif final:
            del self._datagrams[key]
            self._datagrams_done.add(key)

    def _violation(self, conn, stream, text: str) -> None:
        self.violations.append(f"{conn.label} stream {self._name(stream)}: {text}")

    def _connection_event(self, conn, event) -> None:
        if event.type is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED:
            self._datagram_state(conn, event)
            return
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            self._record(conn, event.stream).started = True
        elif event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
            for stream in list(self._conn_streams.get(id(conn), {}).values()):
                record = self._streams[id(stream)]
                if record.started and not record.shutdown_complete and not stream.handle_closed:
                    self.violations.append(
                        f"{conn.label}: connection SHUTDOWN_COMPLETE before stream "
                        f"{self._name(stream)}'s SHUTDOWN_COMPLETE")
                if self._never_started(record, stream) and not stream.handle_closed:
                    continue  # MsQuic cancels its sends at StreamClose, not before
                self._leak_check(conn, stream, "at its connection's SHUTDOWN_COMPLETE")
            for key in [k for k in self._datagrams if k[0] == id(conn)]:
                self.datagram_leaks.append({**self._datagrams.pop(key), "detected": "at its connection's "
                                                                               "SHUTDOWN_COMPLETE"})

    # ------------------------------------------------------------ checks

    def _on_send_complete(self, conn, stream, record: _StreamRecord, event) -> None:
        key = (id(conn), event.send_id)
        self.completions += 1
        if event.canceled:
            self.canceled += 1
        send = self._pending.pop(key, None)
        if send is None:
            where = f"{conn.label} stream {self._name(stream)}"
            if key in self._done_ids:
                self.violations.append(f"{where}: duplicate SEND_COMPLETE for send {event.send_id} "
                                       f"(client_context={event.client_context!r})")
            elif key in self._rejected_ids:
                self.violations.append(f"{where}: SEND_COMPLETE for rejected send {event.send_id} "
                                       f"(client_context={event.client_context!r})")
            else:
                self.violations.append(f"{where}: SEND_COMPLETE for unknown send {event.send_id} "
                                       f"(client_context={event.client_context!r})")
            return
        self._done_ids.add(key)
        send.done = True
        order = record.order
        if order and order[0] is send and send.stream is stream and (
                event.client_context is send.client_context):
            order.popleft()  # the common case: the oldest send, completed as sent
            return
        where = f"{conn.label} stream {self._name(stream)}"
        if send.stream is not stream:
            self.violations.append(f"{where}: SEND_COMPLETE for send {send.send_id} of another stream")
        if event.client_context is not send.client_context and event.client_context != send.client_context:
            self.violations.append(f"{where}: SEND_COMPLETE for send {send.send_id} carries "
                                   f"client_context={event.client_context!r}, "
                                   f"expected {send.client_context!r}")
        order = record.order
        while order and order[0].done and order[0] is not send:
            order.popleft()
        if order and order[0] is send:
            order.popleft()
        elif not (event.canceled and (send.late or record.fin_requested)):
            # Rule 5: only a send canceled because a FIN or graceful shutdown took effect
            # before it was applied may overtake older ones. The ledger cannot see when the
            # worker applied what, so it allows that once a FIN/shutdown was requested.
            self.violations.append(
                f"{where}: SEND_COMPLETE for send {send.send_id} "
                f"(client_context={send.client_context!r}) before older send "
                f"{order[0].send_id if order else '?'}")

    def _leak_check(self, conn, stream, when: str) -> None:
        record = self._streams.get(id(stream))
        if record is None:
            return
        for send in record.order:
            if not send.done:
                key = (id(conn), send.send_id)
                if self._pending.pop(key, None) is not None:
                    send.done = True
                    self._done_ids.add(key)
                    self.leaks.append({
                        "connection": conn.label,
                        "stream_id": stream.id,
                        "stream_handle": stream.handle,
                        "send_id": send.send_id,
                        "client_context": repr(send.client_context),
                        "bytes": send.length,
                        "flags": SendFlags(send.flags).name or "NONE",
                        "detected": when,
                    })
        record.order.clear()

    @staticmethod
    def _never_started(record: _StreamRecord, stream) -> bool:
        # A failed start (START_COMPLETE with an error) leaves it out of MsQuic's stream
        # table as well: its sends still wait for StreamClose.
        return stream.is_local and not record.started

    def judge_unclosed(self) -> None:
        """Report as leaks the sends still pending on never-started streams whose handle
        the application never closed: MsQuic completes them only at StreamClose. Call it
        at the end of a run, before closing what the application left open."""
        with self._lock:
            for key, stream in list(self._keep.items()):
                record = self._streams.get(key)
                if record is not None and self._never_started(record, stream) and not stream.handle_closed:
                    conn = stream.connection
                    self._leak_check(conn, stream, "on a never-started stream whose handle was never closed")

    @staticmethod
    def _name(stream) -> str:
        return f"id={stream.id}" if stream.id is not None else f"handle={stream.handle}"

    # ------------------------------------------------------------ results

    def pending_sends(self) -> list[dict]:
        """Accepted sends still waiting for their SEND_COMPLETE, oldest first."""
        out = []
        for send in self._pending.values():
            record = self._streams.get(id(send.stream))
            out.append({
                "connection": record.conn if record else "?",
                "stream_id": send.stream.id,
                "send_id": send.send_id,
                "client_context": repr(send.client_context),
                "bytes": send.length,
            })
        return out

    @property
    def pending(self) -> int:
        """Accepted sends not yet completed (and not yet counted as leaked)."""
        return len(self._pending)

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.violations and not self.datagram_leaks

    def report(self) -> dict:
        """Counts, leaks and violations as a plain dict (JSON-ready)."""
        return {
            "ok": self.ok,
            "sends": self.sends,
            "rejected": self.rejected,
            "completions": self.completions,
            "acked": self.completions - self.canceled,
            "canceled": self.canceled,
            "pending": self.pending,
            "leaks": list(self.leaks),
            "violations": list(self.violations),
            "datagrams": self.datagrams,
            "datagram_leaks": list(self.datagram_leaks),
        }

    def summary(self) -> str:
        """A readable multi-line summary, leaks and violations listed."""
        r = self.report()
        lines = [
            f"ledger: {'ok' if r['ok'] else 'FAILED'}: {r['sends']} sends accepted, "
            f"{r['completions']} completions ({r['acked']} acked, {r['canceled']} canceled), "
            f"{r['rejected']} rejected, {r['pending']} pending, {len(r['leaks'])} leaked"
        ]
        for leak in r["leaks"]:
            stream = leak["stream_id"] if leak["stream_id"] is not None else f"handle={leak['stream_handle']} (unstarted)"
            lines.append(
                f"  LEAK {leak['connection']} stream {stream} send {leak['send_id']} "
                f"client_context={leak['client_context']} ({leak['bytes']} bytes, {leak['flags']}) "
                f"{leak['detected']}")
        for leak in r["datagram_leaks"]:
            lines.append(f"  LEAK {leak['connection']} datagram {leak['datagram_id']} "
                         f"client_context={leak['client_context']} never reached a final state")
        for violation in r["violations"]:
            lines.append(f"  VIOLATION {violation}")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise AssertionError with the summary when a leak or violation was seen."""
        if not self.ok:
            raise AssertionError(self.summary())

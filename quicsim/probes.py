"""State-coverage probes: named rare states of MsQuic's rules, recognised from what an
application sees (calls, statuses, events), so a campaign can say which it reached and
which it never did. An observer: attached only when asked for, it costs nothing otherwise.

Each probe counts the times its state was reached in a run. Probes at the worker's inner
branches (not visible in calls and events) are reported by the core itself
(``ConnectionCore.probe``, only while an observer asks for them): :data:`CORE_PROBES`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .enums import ConnectionEventType, SendFlags, Status, StreamEventType, StreamShutdownFlags
from .observer import Observer

#: every probe, with the state it marks
PROBES: dict[str, str] = {
    "late-send-canceled": "a send accepted after its stream's FIN or graceful shutdown call completed canceled",
    "close-in-canceled-send-complete": "StreamClose called from the handler of a canceled SEND_COMPLETE",
    "stop-sending-with-sends-in-flight": "the peer's STOP_SENDING (PEER_RECEIVE_ABORTED) reached a stream with sends pending",
    "connection-shutdown-overtakes-send": "a send pending at ConnectionShutdown completed canceled",
    "abort-with-sends-in-flight": "a queued StreamShutdown ABORT_SEND accepted while sends were pending on the stream",
    "start-send-canceled": "a send with the START flag completed canceled",
    "unstarted-stream-send-canceled": "a send accepted on a never-started stream completed canceled",
    "cancel-on-loss-fired": "a CANCEL_ON_LOSS event was delivered",
    "inline-shutdown-in-handler": "StreamShutdown with INLINE from a handler returned SUCCESS",
    "send-in-handler": "StreamSend accepted from inside a handler",
    "send-after-send-shutdown-complete": "StreamSend called after the stream's SEND_SHUTDOWN_COMPLETE",
    "peer-shutdown-with-sends-pending": "the peer closed the connection while sends were pending on it",
    "transport-shutdown-with-sends-pending": "the transport (idle timeout, error) closed the connection with sends pending",
    "start-failed-stream-limit": "StreamStart with FAIL_BLOCKED completed with STREAM_LIMIT_REACHED",
    "peer-accepted": "a stream blocked by the peer's stream limit was accepted later (PEER_ACCEPTED)",
    "duplicate-start-rejected": "a second StreamStart on a stream was refused",
    "send-rejected": "a StreamSend was refused (a status other than PENDING or SUCCESS)",
}

#: probes the core reports from branches only the worker sees (name -> state, where)
CORE_PROBES: dict[str, str] = {
    "graceful-shutdown-cancels-batch": "a graceful shutdown (or a FIN send) applied with accepted sends "
                                       "still to flush: its 'Bad app!' loop cancels them "
                                       "(StreamCore._send_shutdown_graceful)",
    "close-inside-detached-batch": "StreamClose from a callback while the worker completes a detached "
                                   "batch of sends (StreamCore.close; reentrant-close's seam)",
    "start-send-start-complete-aborted": "a canceled START send raised START_COMPLETE(ABORTED) before its "
                                         "SEND_COMPLETE (StreamCore._complete)",
    "delay-send-held": "DELAY_SEND data joined the stream without a flush (StreamCore.apply_send_flush)",
    "send-buffer-full": "the send buffer reached its ideal size with streams waiting for room "
                        "(SendBuffer.fill)",
    "queued-ahead-of-work": "priority work or a ConnectionShutdown queued ahead of operations already "
                            "queued (ConnectionCore.queue_operation)",
    "worker-preempted": "the worker ran at a preemption point right after an API call (Settings.preempt)",
}
PROBES.update(CORE_PROBES)

_GRACEFUL = int(StreamShutdownFlags.GRACEFUL)
_ABORT_SEND = int(StreamShutdownFlags.ABORT_SEND)
_INLINE = int(StreamShutdownFlags.INLINE)
_FIN = int(SendFlags.FIN)
_START = int(SendFlags.START)
_ACCEPTED = (Status.PENDING, Status.SUCCESS)


class _Send:
    __slots__ = ("key", "late", "start", "overtaken")

    def __init__(self, key: Any, late: bool, start: bool) -> None:
        self.key = key
        self.late = late
        self.start = start
        self.overtaken = False


class ProbeObserver(Observer):
    """Counts probe hits in ``hits`` (name -> times reached)."""

    wants_probes = True

    def probe(self, conn: Any, stream: Any, name: str) -> None:
        self._hit(name)

    def preempted(self, conn: Any, stream: Any, call: str) -> None:
        self._hit("worker-preempted")

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._pending: dict[tuple[int, int], _Send] = {}  # (id(conn), send_id) -> send
        self._per_stream: dict[int, dict[int, _Send]] = {}  # id(stream) -> pending sends
        self._shut: set[int] = set()  # id(stream): FIN or graceful shutdown called
        self._send_shutdown_done: set[int] = set()
        self._start_called: set[int] = set()  # id(stream): StreamStart (or a START send) accepted
        #: (id(conn), handler depth) -> (id(stream), event) last delivered at that depth
        self._delivered: dict[tuple[int, int], tuple[int, Any]] = {}

    def _hit(self, name: str) -> None:
        self.hits[name] += 1

    def _stream_pending(self, stream: Any) -> dict[int, _Send]:
        return self._per_stream.get(id(stream), {})

    def _conn_pending(self, conn: Any) -> list[_Send]:
        key = id(conn)
        return [s for (c, _), s in self._pending.items() if c == key]

    # -- calls
    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        if id(stream) in self._send_shutdown_done:
            self._hit("send-after-send-shutdown-complete")
        if status not in _ACCEPTED:
            self._hit("send-rejected")
            return
        if conn.callback_depth:
            self._hit("send-in-handler")
        send = _Send((id(conn), send_id), late=id(stream) in self._shut, start=bool(flags & _START))
        if flags & _START:
            self._start_called.add(id(stream))
        self._pending[send.key] = send
        self._per_stream.setdefault(id(stream), {})[send_id] = send
        if flags & _FIN:
            self._shut.add(id(stream))

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        flags = args.get("flags")
        flags = int(flags) if flags is not None else 0
        if name == "shutdown" and status in _ACCEPTED:
            if flags & _GRACEFUL:
                self._shut.add(id(stream))
            if flags & _ABORT_SEND and self._stream_pending(stream):
                self._hit("abort-with-sends-in-flight")
            if flags & _INLINE and status is Status.SUCCESS and conn.callback_depth:
                self._hit("inline-shutdown-in-handler")
        elif name == "close" and stream is not None and conn.callback_depth:
            # The event whose handler is running: the one delivered one level further out.
            stream_key, event = self._delivered.get((id(conn), conn.callback_depth - 1), (None, None))
            if (stream_key == id(stream) and event is not None and event.type is StreamEventType.SEND_COMPLETE
                    and event.canceled):
                self._hit("close-in-canceled-send-complete")
        elif name == "connection_shutdown":
            for send in self._conn_pending(conn):
                send.overtaken = True
        elif name == "start" and status in _ACCEPTED:
            self._start_called.add(id(stream))
        elif name == "start" and status is Status.INVALID_STATE and stream is not None and stream.id is not None:
            self._hit("duplicate-start-rejected")

    # -- events
    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        self._delivered[(id(conn), conn.callback_depth)] = (id(stream), event)
        etype = event.type
        if etype is StreamEventType.SEND_COMPLETE:
            send = self._pending.pop((id(conn), event.send_id), None)
            self._stream_pending(stream).pop(event.send_id, None)
            if send is not None and event.canceled:
                if send.late:
                    self._hit("late-send-canceled")
                if send.start:
                    self._hit("start-send-canceled")
                if stream.is_local and id(stream) not in self._start_called:
                    self._hit("unstarted-stream-send-canceled")
                if send.overtaken:
                    self._hit("connection-shutdown-overtakes-send")
        elif etype is StreamEventType.PEER_RECEIVE_ABORTED:
            if self._stream_pending(stream):
                self._hit("stop-sending-with-sends-in-flight")
        elif etype is StreamEventType.SEND_SHUTDOWN_COMPLETE:
            self._send_shutdown_done.add(id(stream))
        elif etype is StreamEventType.CANCEL_ON_LOSS:
            self._hit("cancel-on-loss-fired")
        elif etype is StreamEventType.PEER_ACCEPTED:
            self._hit("peer-accepted")
        elif etype is StreamEventType.START_COMPLETE and event.status is Status.STREAM_LIMIT_REACHED:
            self._hit("start-failed-stream-limit")

    def connection_event(self, conn: Any, event: Any) -> None:
        etype = event.type
        if etype is ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER and self._conn_pending(conn):
            self._hit("peer-shutdown-with-sends-pending")
        elif etype is ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT and self._conn_pending(conn):
            self._hit("transport-shutdown-with-sends-pending")


def summary(hits: Counter[str], runs_hit: Counter[str] | None = None) -> list[tuple[str, int, int | None]]:
    """(probe, hits, runs that hit it) for every probe, in :data:`PROBES` order."""
    return [(name, hits.get(name, 0), None if runs_hit is None else runs_hit.get(name, 0)) for name in PROBES]


def report_lines(hits: Counter[str], runs_hit: Counter[str], runs: int) -> list[str]:
    """The probe coverage of ``runs`` runs: one line per probe (hits, runs that reached it,
    never-hit probes marked), then the list of probes never hit."""
    lines = [f"probes: {sum(1 for n in PROBES if hits.get(n))} of {len(PROBES)} hit in {runs} runs"]
    width = max(map(len, PROBES))
    for name in PROBES:
        count = hits.get(name, 0)
        lines.append(f"  {name:<{width}}  {count:>7} hits in {runs_hit.get(name, 0):>6} runs"
                     + ("" if count else "   NEVER HIT"))
    never = [n for n in PROBES if not hits.get(n)]
    lines.append("never hit: " + (", ".join(never) if never else "none"))
    return lines

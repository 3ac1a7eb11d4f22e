"""The ledger: checks MsQuic's send-completion contract from what an application sees.

It watches API calls with their returned statuses and the events delivered to
handlers, and gives sends its own identities (it never matches by the stack's ids and
never reads the stack's state). It reports

- leaks: sends that returned PENDING but had no SEND_COMPLETE by the time their stream
  (SHUTDOWN_COMPLETE, StreamClose) or connection (SHUTDOWN_COMPLETE) finished;
- violations: duplicate completions, completions of rejected or unknown sends or with
  another send's context, completions out of send order (rule 5, see
  :mod:`quicsim.send_order`), events after a stream's SHUTDOWN_COMPLETE, repeated
  once-only events, events on unstarted streams, a connection SHUTDOWN_COMPLETE before
  one of its streams', and, when it also watches the peer, an acknowledged completion
  whose bytes the peer's QUIC stack never received (the wire witness);
- stalled sends, when asked (:meth:`Ledger.mark_stalled`): sends still pending on a live
  connection after the network was healed and given time.

All checks are O(1) amortized per call or event.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable

from .contexts import context_text
from .core.state import ONCE_EVENTS, PHASE_TEXT, event_allowed
from .enums import ConnectionEventType, SendFlags, Status, StreamEventType, StreamShutdownFlags
from .observer import Observer
from .send_order import Entry, Send, SendBook, context_key, send_name, send_of

if TYPE_CHECKING:
    from .events import DatagramSendStateChanged, SendComplete

_SEND_COMPLETE = StreamEventType.SEND_COMPLETE
_RECEIVE = StreamEventType.RECEIVE
_PENDING = Status.PENDING
_get_ident = threading.get_ident
_GRACEFUL = int(StreamShutdownFlags.GRACEFUL)
_INLINE = int(StreamShutdownFlags.INLINE)
_FIN = int(SendFlags.FIN)
_DELAY_SEND = int(SendFlags.DELAY_SEND)
_START = int(SendFlags.START)
_ENDING = frozenset({
    ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT,
    ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER,
    ConnectionEventType.SHUTDOWN_COMPLETE,
})


def _buffering(conn: Any) -> bool:
    """The connection buffers sends, or nobody said it does not."""
    settings = getattr(conn, "settings", None)
    return settings is None or bool(getattr(settings, "send_buffering", True))


def _odcid(conn: Any) -> Any:
    """The connection's original destination connection id: the same on both ends, so
    it pairs a connection with its peer when one ledger watches both."""
    quic = getattr(conn, "quic", None)
    return getattr(quic, "original_destination_connection_id", None)


def _ref(obj: Any, gone: Callable[[Any], object]) -> Callable[[], Any]:
    """A weak reference to ``obj`` calling ``gone`` when it is freed: the ledger keeps what
    it needs to judge, never the connections and streams themselves (a long-lived
    listener's memory stays bounded). Objects that cannot be weakly referenced (a
    replayed history's) are held: their owner keeps them anyway."""
    try:
        return weakref.ref(obj, gone)
    except TypeError:
        return lambda: obj


class _ConnRecord:
    __slots__ = ("ref", "key", "label", "odcid", "is_client", "received", "live", "sends_called", "event_thread",
                 "streams", "peer", "buffering", "completed", "datagrams", "datagrams_done")

    def __init__(self, conn: Any, gone: Callable[[_ConnRecord, Any], None]) -> None:
        self.ref = _ref(conn, functools.partial(gone, self))
        self.key = id(conn)
        self.label = conn.label
        self.odcid = _odcid(conn)
        self.is_client = getattr(conn, "is_client", None)
        self.received: dict[int, list[Any]] = {}  # stream id -> [bytes delivered by the stack, FIN]
        self.live = True  # no ConnectionShutdown call, no shutdown initiated or completed
        self.sends_called = 0
        #: the thread events are delivered on (the worker's), once one was seen
        self.event_thread: int | None = None
        self.streams: dict[int, _StreamRecord] = {}  # id(stream) -> its record
        self.peer: _ConnRecord | None = None  # the other end, once this ledger has seen it
        #: send buffering on (or unknown): acknowledged completions are not witnessed then,
        #: and a late run may split (send_order.SendBook._overtaken)
        self.buffering = _buffering(conn)
        self.completed = False  # the connection's SHUTDOWN_COMPLETE was delivered
        #: accepted datagrams without a final state yet (datagram id -> fields), and those done
        self.datagrams: dict[int, dict[str, Any]] = {}
        self.datagrams_done: set[int] = set()

    @property
    def conn(self) -> Any:
        return self.ref()


class _StreamRecord:
    __slots__ = ("book", "started", "start_requested", "start_indicated", "peer_accepted", "shutdown_complete", "seen_once",
                 "conn", "ref", "key", "local", "closed", "start_calls", "last_id", "handle")

    def __init__(self, conn: _ConnRecord, stream: Any, local: bool,
                 gone: Callable[[_StreamRecord, Any], None]) -> None:
        self.book = SendBook()
        self.book.buffering = conn.buffering
        self.started = False
        self.start_requested = False  # StreamStart returned PENDING
        self.start_indicated = False  # START_COMPLETE delivered, even with a failure
        self.peer_accepted = True
        self.shutdown_complete = False
        self.seen_once: set[Any] = set()
        self.conn = conn
        self.ref = _ref(stream, functools.partial(gone, self))
        self.key = id(stream)
        self.local = local
        self.closed = False
        self.start_calls = 0  # StreamStart calls (and START sends) that were accepted
        #: the stream's id when last seen (for what is judged once the stream is freed)
        self.last_id: int | None = stream.id
        self.handle: Any = stream.handle

    @property
    def stream(self) -> Any:
        return self.ref()

    @property
    def stream_id(self) -> int | None:
        """The stream's id (None before it started), also once the stream was freed."""
        stream = self.ref()
        if stream is None:
            return self.last_id
        self.last_id = stream.id
        return self.last_id


class Ledger(Observer):
    """Exactly-once and ordering checker for SEND_COMPLETE; share one across connections."""

    def __init__(self) -> None:
        self.sends = 0
        self.rejected = 0
        self.completions = 0
        self.canceled = 0
        self.leaks: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.stalled: list[dict[str, Any]] = []
        # Records of the connections and streams still alive, by id(): a record goes when
        # its object is freed (_conn_gone, _stream_gone), so an id is never reused while
        # its record is here.
        self._conns: dict[int, _ConnRecord] = {}
        self._by_odcid: dict[Any, list[_ConnRecord]] = {}
        self._streams: dict[int, _StreamRecord] = {}
        self._pending = 0
        # The stream of the last send call and its record: one stream usually makes many
        # sends in a row, so the per-send hooks skip the lookup by id.
        self._hot_stream: Any = None
        self._hot_record: _StreamRecord | None = None
        # Datagrams: each accepted one must reach exactly one final state.
        self.datagrams = 0
        self.datagram_leaks: list[dict[str, Any]] = []
        # API calls may come from any thread, events from the loop's: one lock for both.
        self._lock = threading.RLock()

    # ------------------------------------------------------------ records

    def _conn(self, conn: Any) -> _ConnRecord:
        record = self._conns.get(id(conn))
        if record is None:
            record = self._conns[id(conn)] = _ConnRecord(conn, self._conn_gone)
            if record.odcid is not None:
                self._by_odcid.setdefault(record.odcid, []).append(record)
                # Pair the two ends once, when the second is seen, for the wire witness.
                peer = self._peer(record)
                if peer is not None:
                    record.peer = peer
                    peer.peer = record
        return record

    def _record(self, conn: Any, stream: Any, local: bool = True) -> _StreamRecord:
        record = self._streams.get(id(stream))
        if record is None:
            owner = self._conn(conn)
            record = self._streams[id(stream)] = _StreamRecord(owner, stream, local, self._stream_gone)
            owner.streams[id(stream)] = record
        return record

    def _conn_gone(self, record: _ConnRecord, _ref: Any) -> None:
        """A connection was freed: forget its record (a watched peer keeps it, finished)."""
        with self._lock:
            if self._conns.get(record.key) is record:
                del self._conns[record.key]
            same = self._by_odcid.get(record.odcid)
            if same is not None and record in same:
                same.remove(record)
                if not same:
                    del self._by_odcid[record.odcid]

    def _stream_gone(self, record: _StreamRecord, _ref: Any) -> None:
        """A stream was freed: forget its record. Its pending sends can complete no more:
        judged as the end of the run would have judged them (judge_unclosed)."""
        with self._lock:
            if self._streams.get(record.key) is record:
                del self._streams[record.key]
            owner = record.conn
            if owner.streams.get(record.key) is record:
                del owner.streams[record.key]
            self._judge_unclosed(record)
            # Freed while the core still owed it a SEND_COMPLETE: it can never come now.
            self._leak_check(record, "when its stream was freed, never completed")

    def _where(self, record: _StreamRecord) -> str:
        return f"{record.conn.label} stream {self._name(record)}"

    @staticmethod
    def _name(record: _StreamRecord) -> str:
        stream_id = record.stream_id
        return f"id={stream_id}" if stream_id is not None else f"handle={record.handle}"

    # ------------------------------------------------------------ observer hooks

    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        # acquire/release rather than `with`: half the cost, on a path taken per send
        self._lock.acquire()
        try:
            if stream is self._hot_stream:
                record = self._hot_record
                assert record is not None  # set together with the stream
            else:
                record = self._streams.get(id(stream)) or self._record(conn, stream)
                self._hot_stream, self._hot_record = stream, record
            owner = record.conn  # a stream's record belongs to its connection's
            owner.sends_called = seq = owner.sends_called + 1
            if owner.event_thread is not None and _get_ident() != owner.event_thread:
                # Called from another thread: the worker may run between any two calls.
                record.book.concurrent = True
            if status is _PENDING:
                self.sends += 1
                self._pending += 1
                record.book.add(seq, send_id, length, flags, client_context)
                if flags & _START and not record.started:
                    record.start_calls += 1  # a START send starts the stream too (IMMEDIATE)
            else:
                self.rejected += 1
                record.book.reject(context_key(client_context), seq)
        finally:
            self._lock.release()

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        with self._lock:
            self._api_call(conn, stream, name, status, args)

    def send_queued(self, conn: Any, stream: Any, send_id: int, offset: int, end: int, fin: bool) -> None:
        self.sends_queued(conn, stream, [(send_id, offset, end, fin)])

    def sends_queued(self, conn: Any, stream: Any, queued: list[tuple[int, int, int, bool]]) -> None:
        self._lock.acquire()
        try:
            record = self._hot_record if stream is self._hot_stream else self._streams.get(id(stream))
            if record is None:
                return
            book = record.book
            for send_id, offset, end, fin in queued:
                if book.lane_queued(offset, end, fin):
                    continue  # the expected range, checked in the lane
                send = book.queued()
                if send is None:
                    self._violation(record, f"a send was queued at [{offset}, {end}) that was never accepted")
                elif send.offset != offset or send.end != end or send.fin != bool(fin):
                    self._violation(record, f"send {send.label(record.conn.label)} queued at [{offset}, {end}) "
                                            f"fin={bool(fin)}, "
                                            f"but the sends before it put it at [{send.offset}, {send.end}) "
                                            f"fin={send.fin}")
        finally:
            self._lock.release()

    def stream_data_received(self, conn: Any, stream: Any, stream_id: int, length: int, fin: bool) -> None:
        # Per packet, and without the lock once the connection is known: only this
        # connection's worker writes its counts, and the peer's wire witness reads whole
        # values (the ACK it judges left this side after the count was added).
        owner = self._conns.get(id(conn))
        if owner is None:
            with self._lock:
                owner = self._conn(conn)
        received = owner.received.get(stream_id)
        if received is None:
            owner.received[stream_id] = [length, bool(fin)]
        else:
            received[0] += length
            if fin:
                received[1] = True

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        if event.type is _RECEIVE:
            # Per packet, nothing to record on a live, started stream: decided without the
            # lock, from fields only this connection's worker writes (records are never removed).
            record = self._streams.get(id(stream))
            if (record is not None and not record.shutdown_complete and record.conn.event_thread is not None
                    and (record.start_indicated or not record.local)):
                return
        self._lock.acquire()
        try:
            if event.type is _SEND_COMPLETE:  # the hot path
                record = self._hot_record if stream is self._hot_stream else self._streams.get(id(stream))
                if record is not None and not record.shutdown_complete and record.conn.event_thread is not None:
                    canceled = event.canceled
                    # The usual case in one step: the oldest pending send, in order.
                    send = record.book.complete_front(canceled, event.client_context)
                    if send is None:
                        self._on_send_complete(record, event)
                        return
                    self.completions += 1
                    self._pending -= 1
                    if canceled:
                        self.canceled += 1
                    elif record.conn.peer is not None:
                        self._witness(record, send)
                    return
            self._stream_event(conn, stream, event)
        finally:
            self._lock.release()

    def connection_event(self, conn: Any, event: Any) -> None:
        with self._lock:
            self._connection_event(conn, event)

    def _api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        if name == "send":  # a replayed history (quicsim check); the lock is re-entrant
            self.send_call(conn, stream, args["send_id"], status, args["bytes"], args["flags"],
                           args["client_context"])
        elif name == "shutdown" and status is not None and not status.failed:
            flags = int(args["flags"])
            record = self._record(conn, stream)
            record.book.shutdown_requested(bool(flags & _GRACEFUL), bool(flags & _INLINE),
                                           record.conn.sends_called)
        elif name == "close" and stream is not None:
            # StreamClose returned: every send on the stream must have completed.
            record = self._record(conn, stream)
            record.closed = True
            self._leak_check(record, "after StreamClose returned")
        elif name == "open_stream" and stream is not None:
            self._record(conn, stream)
        elif name == "start" and status is Status.PENDING:
            record = self._record(conn, stream)
            record.start_calls += 1
            record.start_requested = True
        elif name == "connection_shutdown" and status is not None and not status.failed:
            self._conn(conn).live = False
        elif name == "send_datagram" and status is Status.PENDING:
            self.datagrams += 1
            self._conn(conn).datagrams[args["datagram_id"]] = {
                "connection": conn.label, "datagram_id": args["datagram_id"],
                "client_context": context_text(args["client_context"]), "bytes": args["bytes"]}

    def _stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        record = self._streams.get(id(stream)) or self._record(conn, stream)
        record.last_id = stream.id  # what is judged once the stream is freed names it
        if record.conn.event_thread is None:
            record.conn.event_thread = threading.get_ident()
        etype = event.type
        if etype is _SEND_COMPLETE and not record.shutdown_complete:
            self._on_send_complete(record, event)  # the hot path
            return
        # Which events a stream may raise in which phase: the core's own table (core/state.py).
        if etype in ONCE_EVENTS and etype in record.seen_once:
            self._violation(record, f"{etype.name} delivered twice")
        else:
            phase = self._phase(record)
            if not event_allowed(phase, etype):
                self._violation(record, f"{etype.name} delivered {PHASE_TEXT[phase]}")
        if etype in ONCE_EVENTS:
            record.seen_once.add(etype)
        if etype is StreamEventType.START_COMPLETE:
            record.started = record.started or not event.status.failed
            record.start_indicated = True
            record.peer_accepted = bool(getattr(event, "peer_accepted", True))
        elif etype is _SEND_COMPLETE:
            self._on_send_complete(record, event)
            return
        if etype is StreamEventType.PEER_ACCEPTED:
            record.peer_accepted = True
        elif etype is StreamEventType.SHUTDOWN_COMPLETE:
            self._leak_check(record, "at its SHUTDOWN_COMPLETE")
            record.shutdown_complete = True

    def _datagram_state(self, conn: Any, event: DatagramSendStateChanged) -> None:
        owner = self._conn(conn)
        key = event.datagram_id
        final = event.state.name in ("ACKNOWLEDGED", "ACKNOWLEDGED_SPURIOUS", "LOST_DISCARDED", "CANCELED")
        if key in owner.datagrams_done:
            self.violations.append(f"{conn.label}: datagram {event.datagram_id} got {event.state.name} "
                                   f"after its final state")
        elif key not in owner.datagrams:
            self.violations.append(f"{conn.label}: {event.state.name} for unknown datagram {event.datagram_id}")
        elif final:
            del owner.datagrams[key]
            owner.datagrams_done.add(key)

    def _violation(self, record: _StreamRecord, text: str) -> None:
        self.violations.append(f"{self._where(record)}: {text}")

    def _connection_event(self, conn: Any, event: Any) -> None:
        owner = self._conn(conn)
        if owner.event_thread is None:
            owner.event_thread = threading.get_ident()
        etype = event.type
        if etype is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED:
            self._datagram_state(conn, event)
            return
        owner = self._conn(conn)
        if etype in _ENDING:
            owner.live = False
        elif etype is ConnectionEventType.CONNECTED:
            owner.buffering = _buffering(conn)  # (a replayed history says it only here)
        if etype is ConnectionEventType.PEER_STREAM_STARTED:
            record = self._record(conn, event.stream.core, local=False)
            record.started = True
        elif etype is ConnectionEventType.SHUTDOWN_COMPLETE:
            owner.completed = True
            for record in list(owner.streams.values()):
                if record.started and not record.shutdown_complete and not record.closed:
                    if getattr(event, "app_close_in_progress", False):
                        # ConnectionClose from a stream's callback during the connection's
                        # shutdown walk raises this inline; the walk goes on after it
                        # (QuicConnCloseHandle): judged at the stream's own end.
                        continue
                    self.violations.append(
                        f"{conn.label}: connection SHUTDOWN_COMPLETE before stream "
                        f"{self._name(record)}'s SHUTDOWN_COMPLETE")
                if self._never_started(record) and not record.closed:
                    continue  # MsQuic cancels its sends at StreamClose, not before
                self._leak_check(record, "at its connection's SHUTDOWN_COMPLETE")
            for fields in owner.datagrams.values():
                self.datagram_leaks.append({**fields, "detected": "at its connection's SHUTDOWN_COMPLETE"})
            owner.datagrams.clear()

    # ------------------------------------------------------------ checks

    def _on_send_complete(self, record: _StreamRecord, event: SendComplete) -> None:
        self.completions += 1
        canceled = event.canceled
        if canceled:
            self.canceled += 1
        send, problem, older = record.book.complete(canceled, event.client_context)
        if problem is None:
            assert send is not None
            self._pending -= 1
            if not canceled:
                self._witness(record, send)
            return
        where = self._where(record)
        context = event.client_context
        if problem == "after_leak":
            # Already reported (a leak is one finding); the teardown's completion of it is
            # neither counted nor a second finding.
            self.completions -= 1
            if canceled:
                self.canceled -= 1
            return
        if problem == "duplicate" and send is not None:
            self.violations.append(f"{where}: duplicate SEND_COMPLETE for send {send.label(record.conn.label)}")
            return
        if problem == "rejected":
            self.violations.append(f"{where}: SEND_COMPLETE for a rejected send (client_context={context!r})")
            return
        if problem == "unknown":
            self.violations.append(f"{where}: SEND_COMPLETE for an unknown send (client_context={context!r})")
            return
        assert send is not None  # only "rejected" and "unknown" come without a send
        self._pending -= 1
        if problem == "context":
            self.violations.append(f"{where}: SEND_COMPLETE carries client_context={context!r}, "
                                   f"expected {send.client_context!r} "
                                   f"(send {send_name(record.conn.label, send.send_id)})")
        if older is not None:
            kind = "canceled" if canceled else "acknowledged"
            self.violations.append(f"{where}: SEND_COMPLETE ({kind}) for send {send.label(record.conn.label)} "
                                   f"before older send {older.label(record.conn.label)}")
        if not canceled:
            self._witness(record, send)

    def _witness(self, record: _StreamRecord, send: Send | Entry) -> None:
        """An acknowledged send (buffering off) must cover bytes the peer's stack received,
        when this ledger watches the peer too."""
        owner = record.conn
        peer = owner.peer  # None: the peer is not watched by this ledger, nothing to compare with
        if owner.buffering or peer is None:
            return
        stream_id = record.stream_id
        if stream_id is None:
            return
        received = peer.received.get(stream_id) or (0, False)
        # (a lane entry while the stream's book is plain FIFO: made a Send only to report)
        if isinstance(send, Send):
            end, fin = send.end, send.fin
        else:
            end, fin = send[7], bool(send[3] & _FIN)
        if received[0] < end or (fin and not received[1]):
            if not isinstance(send, Send):
                send = send_of(send)
            what = "its FIN" if received[0] >= end else f"bytes [{max(received[0], send.offset)}, {end})"
            self._violation(record, f"send {send.label(record.conn.label)} acknowledged but never received: "
                                    f"{what} never "
                                    f"reached {peer.label}'s QUIC stack (it received {received[0]} bytes"
                                    f"{' and the FIN' if received[1] else ''})")

    @staticmethod
    def _phase(record: _StreamRecord) -> str:
        """The stream's phase (core/state.py's STREAM_EVENTS) from what was delivered."""
        if record.shutdown_complete:
            return "done"
        if record.started or not record.local:
            return "started"
        if record.start_indicated and record.start_calls > 1:
            # A second StreamStart (or a START send) accepted beside a failed one (FAIL_BLOCKED,
            # say) may start the stream with no START_COMPLETE of its own:
            # QuicStreamIndicateStartComplete raises it once per stream. It may raise every
            # event then.
            return "started"
        return "start_failed" if record.start_indicated else "unstarted"

    @staticmethod
    def _never_started(record: _StreamRecord) -> bool:
        # A failed start (START_COMPLETE with an error) leaves it out of MsQuic's stream
        # table as well: its sends still wait for StreamClose. A second StreamStart beside
        # a failed one may start it with no START_COMPLETE: then it has its stream id.
        return record.local and not record.started and record.stream_id is None

    def teardown(self) -> None:
        self.judge_unclosed()

    def judge_unclosed(self) -> None:
        """Judge what the application left at the end of a run; call it before closing
        what it left open. Sends still pending on never-started streams whose handle it
        never closed are leaks (MsQuic completes them only at StreamClose), and so are
        sends still pending on a started stream of a finished connection."""
        with self._lock:
            for record in list(self._streams.values()):
                self._judge_unclosed(record)

    def _judge_unclosed(self, record: _StreamRecord) -> None:
        if self._never_started(record):
            if not record.closed:
                self._leak_check(record, "on a never-started stream whose handle was never closed")
        elif record.conn.completed:
            self._leak_check(record, "after its connection's SHUTDOWN_COMPLETE, never completed")

    def _peer(self, owner: _ConnRecord) -> _ConnRecord | None:
        """The other end of ``owner`` when this ledger watches it too."""
        for peer in self._by_odcid.get(owner.odcid, ()):
            if peer.is_client is not owner.is_client:
                return peer
        return None

    def _leak_check(self, record: _StreamRecord, when: str) -> None:
        for send in record.book.drop_pending():
            self._pending -= 1
            self.leaks.append(self._send_fields(record, send, when))

    def _send_fields(self, record: _StreamRecord, send: Send, when: str) -> dict[str, Any]:
        return {
            "connection": record.conn.label,
            "stream_id": record.stream_id,
            "stream_handle": record.handle,
            "send": send.seq,
            "send_id": send.send_id,
            "client_context": context_text(send.client_context),
            "bytes": send.length,
            "flags": SendFlags(send.flags).name or "NONE",
            "detected": when,
        }

    # ------------------------------------------------------------ liveness

    def stall_candidates(self) -> list[tuple[Any, Any]]:
        """(connection, stream) of every stream with a send that should still complete:
        pending on a started (or starting) stream the peer accepted, on a live
        connection (whose peer, when watched too, is live as well), and not held back
        by DELAY_SEND."""
        with self._lock:
            out = []
            for record in list(self._streams.values()):
                conn, stream = record.conn.conn, record.stream
                if conn is not None and stream is not None and self._stalled_sends(record):
                    out.append((conn, stream))
            return out

    def _stalled_sends(self, record: _StreamRecord) -> list[Send]:
        peer = self._peer(record.conn) if record.conn.odcid is not None else None
        if (not record.conn.live or (peer is not None and not peer.live) or not record.peer_accepted
                or record.closed or record.shutdown_complete):
            return []
        pending = record.book.pending()
        if not record.started:
            # A stream still starting: StreamStart was called, or a pending send carries
            # START (a START send canceled as late starts nothing, as in MsQuic).
            if record.start_indicated or not (record.start_requested or any(s.flags & _START for s in pending)):
                return []
        flushed = record.book.flushed_seq
        return [send for send in pending if not (send.flags & _DELAY_SEND and send.seq > flushed)]

    def mark_stalled(self, when: str = "still pending after the liveness deadline") -> list[dict[str, Any]]:
        """Report every send that should have completed by now as **stalled** (call it
        after healing the network and waiting a deadline). Returns the new findings."""
        with self._lock:
            found = [self._send_fields(record, send, when)
                     for record in list(self._streams.values()) for send in self._stalled_sends(record)]
            self.stalled.extend(found)
            return found

    # ------------------------------------------------------------ results

    def pending_sends(self) -> list[dict[str, Any]]:
        """Accepted sends still waiting for their SEND_COMPLETE, oldest first per stream."""
        with self._lock:
            return [{
                "connection": record.conn.label,
                "stream_id": record.stream_id,
                "stream_handle": record.handle,
                "send": send.seq,
                "send_id": send.send_id,
                "client_context": context_text(send.client_context),
                "bytes": send.length,
            } for record in list(self._streams.values()) for send in record.book.pending()]

    @property
    def pending(self) -> int:
        """Accepted sends not yet completed (and not yet counted as leaked)."""
        return self._pending

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.violations and not self.datagram_leaks and not self.stalled

    def report(self) -> dict[str, Any]:
        """Counts, leaks, stalled sends and violations as a plain dict (JSON-ready)."""
        return {
            "ok": self.ok,
            "sends": self.sends,
            "rejected": self.rejected,
            "completions": self.completions,
            "acked": self.completions - self.canceled,
            "canceled": self.canceled,
            "pending": self.pending,
            "leaks": list(self.leaks),
            "stalled": list(self.stalled),
            "violations": list(self.violations),
            "datagrams": self.datagrams,
            "datagram_leaks": list(self.datagram_leaks),
        }

    def summary(self) -> str:
        """A readable multi-line summary, leaks, stalled sends and violations listed."""
        r = self.report()
        lines = [
            f"ledger: {'ok' if r['ok'] else 'FAILED'}: {r['sends']} sends accepted, "
            f"{r['completions']} completions ({r['acked']} acked, {r['canceled']} canceled), "
            f"{r['rejected']} rejected, {r['pending']} pending, {len(r['leaks'])} leaked"
            + (f", {len(r['stalled'])} stalled" if r["stalled"] else "")
        ]
        for kind, found in (("LEAK", r["leaks"]), ("STALLED", r["stalled"])):
            for leak in found:
                stream = (leak["stream_id"] if leak["stream_id"] is not None
                          else f"handle={leak['stream_handle']} (unstarted)")
                lines.append(
                    f"  {kind} send {send_name(leak['connection'], leak['send_id'])} "
                    f"client_context={leak['client_context']} on {leak['connection']} stream {stream} "
                    f"({leak['bytes']} bytes, {leak['flags']}) "
                    f"{leak['detected']}")
        for leak in r["datagram_leaks"]:
            lines.append(f"  LEAK {leak['connection']} datagram {leak['datagram_id']} "
                         f"client_context={leak['client_context']} never reached a final state")
        for violation in r["violations"]:
            lines.append(f"  VIOLATION {violation}")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise AssertionError with the summary when a leak, stall or violation was seen."""
        if not self.ok:
            raise AssertionError(self.summary())

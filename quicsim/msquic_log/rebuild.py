"""Rebuild from MsQuic's log what the application was told, per connection and per stream:
its StreamSend calls accepted (PENDING) or refused, the SEND_COMPLETEs delivered (acked or
canceled) or ``Event silently discarded``, its StreamShutdown and StreamClose calls.

The log names no thread and prints no time. Three things are inferred, and each record
says how (``paired_by``, ``placed_by``): which ``[ api] Exit`` ends which ``Enter``, which
stream an ``Indicating ...`` line belongs to, and which send a completion line completes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..enums import Status
from . import parse as p

PENDING = int(Status.PENDING)  # the only status of an accepted StreamSend in v2.3.5


def known_status(status: int | None) -> str | None:
    """The QUIC_STATUS name of ``status`` (quicsim's :class:`~quicsim.enums.Status`), None
    when there is none or it is not one MsQuic defines on Linux."""
    if status is None:
        return None
    try:
        return Status(status).name
    except ValueError:
        return None


def status_name(status: int | None) -> str:
    """``status`` as the report writes it: its name, else the number MsQuic printed."""
    if status is None:
        return "no Exit yet"
    return known_status(status) or f"status {status & 0xFFFFFFFF}"


@dataclass
class Call:
    """One API call: its Enter line, its Exit line and status once paired."""

    code: int
    enter: p.Line
    handle: str | None
    exit: p.Line | None = None
    status: int | None = None
    #: how the Exit was paired: "its source location" (certain), or by nesting (a heuristic)
    paired_by: str = ""
    #: the Indicating line printed right before the Enter: the call was made, as far as the
    #: log shows, from that event's handler (a StreamClose inside SEND_COMPLETE)
    in_handler: "Indication | None" = None
    #: ``Closing handle without fully shutting down`` printed inside a StreamClose
    without_shutdown: p.Line | None = None

    @property
    def name(self) -> str:
        return p.API_NAMES.get(self.code, f"API {self.code}")

    @property
    def paired_certainly(self) -> bool:
        return self.paired_by == "its source location"


@dataclass
class Send(Call):
    """One StreamSend on a stream."""

    index: int = 0  # the k-th StreamSend on its stream (1-based): the log prints no client context
    send_id: int = 0  # numbered across the whole log
    queuing: p.Line | None = None  # ``App queuing send``: printed before the accept/refuse decision
    bytes: int = 0
    flags: int = 0
    completion: "Indication | None" = None

    @property
    def accepted(self) -> bool | None:
        """PENDING: accepted. None: no Exit in the log (its completion, if any, shows it was)."""
        if self.status is None:
            return True if self.completion is not None else None
        return self.status == PENDING


@dataclass
class Indication:
    """An ``Indicating QUIC_STREAM_EVENT_...`` line placed on a stream."""

    line: p.Line
    event: str
    detail: str = ""
    request: str | None = None  # SEND_COMPLETE: the internal request pointer (not the client context)
    canceled: bool = False
    discarded: p.Line | None = None  # ``Event silently discarded`` that followed it
    discard_gap: int = 0  # MsQuic lines printed between the two (0: right after)
    placed_by: str = ""
    placed_certainly: bool = True
    send: Send | None = None  # SEND_COMPLETE: the send it completes, matched in send order
    stream: "Stream | None" = None  # SEND_COMPLETE: the stream it was placed on (None: unplaced)


@dataclass(eq=False)  # (one object per lifetime: compared and hashed by identity)
class Stream:
    """One lifetime of a stream handle (handles come from a pool and are reused)."""

    pointer: str
    conn: "Connection"
    ordinal: int  # 1-based, in order of the Allocated lines: the trace's stream_handle
    allocated: p.Line
    stream_id: int | None = None
    is_local: bool = True
    created: p.Line | None = None
    destroyed: p.Line | None = None
    sends: list[Send] = field(default_factory=list)
    completions: list[Indication] = field(default_factory=list)
    events: list[Indication] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)  # StreamStart, StreamShutdown, StreamClose
    open_call: Call | None = None  # the StreamOpen that allocated it (a local stream)
    owed: int = 0  # StreamSend calls not refused (accepted, or no Exit yet)
    peer_started: p.Line | None = None

    @property
    def name(self) -> str:
        sid = f"stream {self.stream_id}" if self.stream_id is not None else "unstarted stream"
        return f"{self.conn.label} {sid} ({self.pointer}, connection {self.conn.pointer})"

    def accepted(self) -> list[Send]:
        """Its StreamSend calls that returned PENDING (or completed without an Exit in the log)."""
        return [s for s in self.sends if s.accepted]

    def closed(self) -> Call | None:
        """Its StreamClose, once that returned (None before)."""
        return next((c for c in self.calls if c.code == p.API_STREAM_CLOSE and c.exit is not None), None)

    def shutdown_complete(self) -> Indication | None:
        """Its SHUTDOWN_COMPLETE, delivered (placed by context: the line names no stream)."""
        return next((e for e in self.events if e.event == "SHUTDOWN_COMPLETE" and e.discarded is None), None)

    @property
    def ended(self) -> bool:
        """Every completion is owed by now (the ledger's rule): StreamClose returned, the
        stream's SHUTDOWN_COMPLETE was raised, it was freed, or, once it started, its
        connection's SHUTDOWN_COMPLETE was raised (a never-started stream's sends wait for
        StreamClose: MsQuic cancels them there)."""
        return (self.closed() is not None or self.destroyed is not None or self.shutdown_complete() is not None
                or (self.conn.shutdown_complete is not None and self.stream_id is not None))


@dataclass
class Connection:
    """One connection of the log, by its pointer: the calls on it and its SHUTDOWN_COMPLETE."""

    pointer: str
    is_server: bool | None
    created: p.Line | None
    label: str = ""
    streams: list[Stream] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)  # ConnectionShutdown, ConnectionClose
    shutdown_complete: p.Line | None = None  # Indicating QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE
    _shutdown_logged: p.Line | None = None  # [conn][C] Shutdown complete (the line before it)

    @property
    def side(self) -> str:
        return "server" if self.is_server else "client"


@dataclass
class Rebuilt:
    """What the whole log told the application, and what it could not place."""

    connections: list[Connection]
    streams: list[Stream]
    #: API calls still open where the log ends, and completion lines no stream could take
    open_calls: list[Call]
    unplaced: list[Indication]
    #: ``Event silently discarded`` lines with no Indicating line before them
    stray_discards: list[p.Line]
    #: the log's last MsQuic line, when it is an Indicating line (its fate is not in the log)
    ends_on_indication: p.Line | None = None
    #: SEND_COMPLETE lines placed on a stream whose accepted sends all had one already
    extra: list[Indication] = field(default_factory=list)


_STREAM_CALLS = (p.API_STREAM_CLOSE, p.API_STREAM_START, p.API_STREAM_SHUTDOWN, p.API_STREAM_SEND)


class Rebuilder:
    """Walks the records once, in log order."""

    def __init__(self) -> None:
        self.conns: dict[str, Connection] = {}
        self.all_conns: list[Connection] = []
        self.streams: dict[str, Stream] = {}  # pointer -> its current lifetime
        self.all_streams: list[Stream] = []
        self.stack: list[Call] = []
        self.enter_sources: dict[str, set[int]] = {}  # file -> source lines of ApiEnter seen
        self.named: dict[str, int] = {}  # stream pointer -> last line naming it
        self.last_named: Stream | None = None  # the stream the last line naming one named
        #: streams that may still owe completion lines (an ordered set), kept as lines come:
        #: a log of thousands of streams is placed line by line without scanning them all
        self.outstanding: dict[Stream, None] = {}
        self.requests: dict[str, Stream] = {}  # request pointer -> stream, from "queued" to completion
        self.last_indication: Indication | None = None
        self.previous: p.Record | None = None
        self.lines_since_indication = 0
        self.unplaced: list[Indication] = []
        self.stray_discards: list[p.Line] = []
        self.send_ids = 0

    # ---------------------------------------------------------------- objects

    def _conn(self, pointer: str, line: p.Line | None = None) -> Connection:
        conn = self.conns.get(pointer)
        if conn is None:  # named before its Created line (a log that starts late)
            conn = self._new_conn(pointer, None, line)
        return conn

    def _new_conn(self, pointer: str, is_server: bool | None, line: p.Line | None) -> Connection:
        conn = Connection(pointer, is_server, line)
        side = conn.side
        same = sum(1 for c in self.all_conns if c.side == side)
        conn.label = side if not same else f"{side}-{same + 1}"
        self.conns[pointer] = conn
        self.all_conns.append(conn)
        return conn

    def _new_stream(self, pointer: str, conn: Connection, line: p.Line) -> Stream:
        old = self.streams.get(pointer)
        if old is not None:  # the pool handed the pointer out again: the old stream was freed
            self.outstanding.pop(old, None)
        stream = Stream(pointer, conn, len(self.all_streams) + 1, line)
        self.streams[pointer] = stream
        self.all_streams.append(stream)
        conn.streams.append(stream)
        return stream

    def _live_streams(self) -> list[Stream]:
        return [s for s in self.streams.values() if s.destroyed is None]

    def _update(self, stream: Stream) -> None:
        """Keep ``stream`` in :attr:`outstanding` exactly while it may owe completion lines."""
        if stream.destroyed is None and stream.owed > len(stream.completions) and self.streams.get(
                stream.pointer) is stream:
            self.outstanding[stream] = None
        else:
            self.outstanding.pop(stream, None)

    # ---------------------------------------------------------------- the walk

    def feed(self, record: p.Record) -> None:
        """Take the next record: the handler named after its type (``_ApiEnter`` ...), and
        note the stream its line names (the context later lines are placed by)."""
        line = record.line
        obj = line.object
        if obj is not None and obj[0] == "strm":
            self.named[obj[1]] = line.number
        handler = getattr(self, "_" + type(record).__name__, None)
        if handler is not None:
            handler(record)
        if obj is not None and obj[0] == "strm" and obj[1] in self.streams:
            self.last_named = self.streams[obj[1]]
        if not isinstance(record, (p.IndicateSendComplete, p.IndicateStreamEvent)):
            self.lines_since_indication += 1
        self.previous = record

    def _ConnCreated(self, r: p.ConnCreated) -> None:
        self._new_conn(r.conn, r.is_server, r.line)

    def _ConnShutdownComplete(self, r: p.ConnShutdownComplete) -> None:
        self._conn(r.conn, r.line)._shutdown_logged = r.line

    def _StreamAlloc(self, r: p.StreamAlloc) -> None:
        stream = self._new_stream(r.stream, self._conn(r.conn, r.line), r.line)
        opener = next((c for c in reversed(self.stack) if c.code == p.API_STREAM_OPEN and c.handle == r.conn), None)
        if opener is not None:
            stream.open_call = opener
        else:
            stream.is_local = False

    def _StreamCreated(self, r: p.StreamCreated) -> None:
        stream = self.streams.get(r.stream) or self._new_stream(r.stream, self._conn(r.conn, r.line), r.line)
        stream.stream_id, stream.is_local, stream.created = r.stream_id, r.is_local, r.line

    def _StreamDestroyed(self, r: p.StreamDestroyed) -> None:
        stream = self.streams.get(r.stream)
        if stream is not None:
            stream.destroyed = r.line
            self._update(stream)

    def _ApiEnter(self, r: p.ApiEnter) -> None:
        file, _, src_line = r.line.source.rpartition(":")
        self.enter_sources.setdefault(file, set()).add(int(src_line))
        call: Call
        stream = self.streams.get(r.handle) if r.handle and r.code in _STREAM_CALLS else None
        if r.code == p.API_STREAM_SEND and stream is not None:
            self.send_ids += 1
            call = Send(r.code, r.line, r.handle, index=len(stream.sends) + 1, send_id=self.send_ids)
            stream.sends.append(call)
            stream.owed += 1
            self._update(stream)
        else:
            call = Call(r.code, r.line, r.handle)
            if stream is not None:
                stream.calls.append(call)
            elif r.code in (p.API_CONNECTION_SHUTDOWN, p.API_CONNECTION_CLOSE) and r.handle in self.conns:
                self.conns[r.handle].calls.append(call)
        if stream is not None:
            self.named[stream.pointer] = r.line.number
            self.last_named = stream
        if isinstance(self.previous, (p.IndicateSendComplete, p.IndicateStreamEvent)) and self.last_indication:
            call.in_handler = self.last_indication
        self.stack.append(call)

    def _ApiExit(self, r: p.ApiExit) -> None:
        """Pair the Exit with its Enter. ``[ api] Exit`` names neither call nor thread, but
        its source location lies inside one API function: the one whose ApiEnter location
        is the closest before it in the same file (MsQuic's api.c has one function per call)."""
        if not self.stack:
            return  # a call entered before the log begins
        file, _, src_line = r.line.source.rpartition(":")
        before = [n for n in self.enter_sources.get(file, ()) if n < int(src_line)]
        owner = f"{file}:{max(before)}" if before else None
        owners = [i for i, c in enumerate(self.stack) if c.enter.source == owner]
        if len(owners) == 1:
            index, how = owners[0], "its source location"
        elif owners:
            index, how = owners[-1], f"nesting, among {len(owners)} open calls of the same function"
        else:
            index, how = len(self.stack) - 1, "nesting only (no open call owns its source location)"
        call = self.stack.pop(index)
        call.exit, call.status, call.paired_by = r.line, r.status, how
        if isinstance(call, Send) and r.status != PENDING:  # refused: owed nothing
            stream = self.streams.get(call.handle or "")
            if stream is not None and call in stream.sends:
                stream.owed -= 1
                self._update(stream)

    def _StreamAppSend(self, r: p.StreamAppSend) -> None:
        call = next((c for c in reversed(self.stack) if isinstance(c, Send) and c.handle == r.stream
                     and c.queuing is None), None)
        if call is not None:
            call.queuing, call.bytes, call.flags = r.line, r.bytes, r.flags

    def _Other(self, r: p.Other) -> None:
        if r.line.name == "CloseWithoutShutdown":
            close = next((c for c in reversed(self.stack) if c.code == p.API_STREAM_CLOSE), None)
            if close is not None:
                close.without_shutdown = r.line

    # ---------------------------------------------------------------- placing lines on streams

    def _nearest(self, streams: Iterable[Stream]) -> Stream | None:
        """Of ``streams``, the one a log line named last (else allocated last)."""
        best, best_line = None, -1
        for stream in streams:
            seen = self.named.get(stream.pointer, stream.allocated.number)
            if seen > best_line:
                best, best_line = stream, seen
        return best

    def _place_send_line(self, request: str) -> tuple[Stream | None, str, bool]:
        """The stream of a line about a send request (queued, SEND_COMPLETE), and how it was placed."""
        candidates = self.outstanding
        if len(candidates) == 1:
            return next(iter(candidates)), "the only stream with sends outstanding", True
        if not candidates:
            return None, "no stream has sends outstanding", False
        known = self.requests.get(request)
        if known is not None and known in candidates:
            return known, f"its request {request} was queued on this stream", False
        named = self.last_named
        nearest = named if named is not None and named in candidates else self._nearest(candidates)
        return nearest, (f"the nearest line naming a stream with sends outstanding (line "
                         f"{self.named.get(nearest.pointer) if nearest else '?'}), among {len(candidates)}"), False

    def _SendQueued(self, r: p.SendQueued) -> None:
        stream, _, _ = self._place_send_line(r.request)
        if stream is not None:
            self.requests[r.request] = stream

    def _IndicateSendComplete(self, r: p.IndicateSendComplete) -> None:
        stream, how, certain = self._place_send_line(r.request)
        indication = Indication(r.line, "SEND_COMPLETE", request=r.request, canceled=r.canceled,
                                placed_by=how, placed_certainly=certain)
        self.requests.pop(r.request, None)  # freed on completion: the pool may hand it out again
        self._put(indication, stream)
        self._indicated(indication)

    def _put(self, indication: Indication, stream: Stream | None) -> None:
        """Place a SEND_COMPLETE line on ``stream`` (None: unplaced), taking it off where it was."""
        old = indication.stream
        if old is not None:
            old.completions.remove(indication)
            self._update(old)
        elif indication in self.unplaced:
            self.unplaced.remove(indication)
        indication.stream = stream
        if stream is None:
            self.unplaced.append(indication)
        else:
            completions = stream.completions
            completions.append(indication)
            if len(completions) > 1 and completions[-2].line.number > indication.line.number:
                completions.sort(key=lambda c: c.line.number)  # (a line moved back: kept in log order)
            self._update(stream)

    def _handlerless(self, indication: Indication) -> None:
        """A SEND_COMPLETE line followed by ``Event silently discarded``: its stream had no
        handler, which only StreamClose takes away (QuicStreamClose clears
        ClientCallbackHandler). Placed on a stream not closed, or on none, it is moved to
        the stream whose StreamClose began last."""
        placed = indication.stream
        if placed is not None and any(c.code == p.API_STREAM_CLOSE for c in placed.calls):
            return
        closes = [(c.enter.number, s) for s in self.streams.values() for c in s.calls
                  if c.code == p.API_STREAM_CLOSE and c.enter.number < indication.line.number]
        if not closes:
            return
        line, stream = max(closes, key=lambda item: item[0])
        self._put(indication, stream)
        indication.placed_by = (f"'Event silently discarded' follows it, so its stream had no handler: the stream "
                                f"closed last (StreamClose at line {line})")
        indication.placed_certainly = False

    def _IndicateStreamEvent(self, r: p.IndicateStreamEvent) -> None:
        indication = Indication(r.line, r.event, r.detail)
        obj = r.line.object  # RECEIVE names its stream
        stream = self.streams.get(obj[1]) if obj is not None else None
        if stream is not None:
            indication.placed_by = "its line names it"
        else:
            named = self.last_named
            stream = named if named is not None and named.destroyed is None else self._nearest(self._live_streams())
            indication.placed_by = "the nearest line naming a stream"
            indication.placed_certainly = False
        if stream is not None:
            stream.events.append(indication)
        self._indicated(indication)

    def _indicated(self, indication: Indication) -> None:
        self.last_indication = indication
        self.lines_since_indication = 0

    def _EventSilentDiscard(self, r: p.EventSilentDiscard) -> None:
        # QuicStreamIndicateEvent found no handler: the event of the previous Indicating line
        # (on the same thread; another thread's lines may come between) was not delivered.
        last = self.last_indication
        if last is None or last.discarded is not None:
            self.stray_discards.append(r.line)
            return
        last.discarded, last.discard_gap = r.line, self.lines_since_indication
        if last.event == "SEND_COMPLETE":
            self._handlerless(last)

    def _IndicateConnEvent(self, r: p.IndicateConnEvent) -> None:
        if r.event == "SHUTDOWN_COMPLETE":
            # Raised right after the connection's own "[conn][C] Shutdown complete" line.
            pending = [c for c in self.all_conns if c._shutdown_logged is not None and c.shutdown_complete is None]
            if pending:
                conn = max(pending, key=lambda c: c._shutdown_logged.number if c._shutdown_logged else 0)
                conn.shutdown_complete = r.line
        elif r.event == "PEER_STREAM_STARTED":
            pointer = r.detail.strip("[]").split(",")[0].strip()
            stream = self.streams.get(pointer)
            if stream is not None:
                stream.peer_started = r.line

    # ---------------------------------------------------------------- the end

    def finish(self) -> Rebuilt:
        """Match each stream's completion lines to its sends, and hand over the history."""
        extra: list[Indication] = []
        for stream in self.all_streams:
            # MsQuic completes one stream's sends in queue order (README §4.4): the k-th
            # completion line of a stream is matched to its k-th accepted send.
            owed = [s for s in stream.sends if s.status is None or s.status == PENDING]
            surplus = _surplus(stream, len(stream.completions) - len(owed))
            taken = {id(c) for c in surplus}
            for send, indication in zip(owed, [c for c in stream.completions if id(c) not in taken]):
                send.completion, indication.send = indication, send
            extra += surplus
        last = self.previous
        ends = last.line if isinstance(last, (p.IndicateSendComplete, p.IndicateStreamEvent)) else None
        return Rebuilt(self.all_conns, self.all_streams, list(self.stack), self.unplaced, self.stray_discards, ends,
                       extra)


def _surplus(stream: Stream, count: int) -> list[Indication]:
    """The ``count`` completion lines of ``stream`` that no send was owed. First those raised
    not canceled after its StreamClose returned: StreamClose cancels every send still open
    (an abortive shutdown when the stream had not shut down), so none is buffered or acked
    after it; MsQuic's send-buffer fill still raises such a line for a request the close freed.
    Then the last ones."""
    if count <= 0:
        return []
    close = stream.closed()
    after = close.exit.number if close is not None and close.exit is not None else None
    late = [c for c in stream.completions if after is not None and c.line.number > after and not c.canceled
            and c.discarded is not None][:count]
    rest = [c for c in stream.completions if all(c is not x for x in late)]
    return late + rest[len(rest) - (count - len(late)):] if count > len(late) else late


def rebuild(records: Iterable[p.Record]) -> Rebuilt:
    """The history the log's records show, read once in log order."""
    builder = Rebuilder()
    for record in records:
        builder.feed(record)
    return builder.finish()

"""Stream and connection state in MsQuic's own terms: every change is a named move in a
table, and every call's status and every event's delivery is read from tables too.

``StreamState`` holds a stream's QUIC_STREAM_FLAGS and ``ConnectionState`` a connection's
QUIC_CONNECTION_STATE, under their MsQuic names in snake_case; nothing else in the core
keeps a copy of them or writes them. The flags group into small machines (a stream's send
direction, its receive direction, its start, its start indication, its end and its handle;
a connection's close, its handshake, its end and its handle). Each machine's moves are one
table of ``(state, move) -> state``, as in h11's ``_state.py``: a move the table lacks
raises :class:`StateError` naming the machine, the state and the move, and changes
nothing; a row whose target is its own state is an explicit no-op (``move`` returns
False), so a caller never guesses whether a move applies.

Which events a stream may raise in which phase is one table (:data:`STREAM_EVENTS`), read
by the core before it delivers an event and by the ledger when it judges one. What a call
returns at once comes from (condition, status) rows checked in the order MsQuic's
``api.c`` checks them. ``python -m quicsim.core.state`` prints every table as Markdown
(the conformance document's state tables are that output).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Callable, overload

from ..enums import Status, StreamEventType
from ..errors import QuicsimError


def view(flag: str, doc: str = "") -> property:
    """A read-only property of a handle that reads ``self.state.<flag>`` (the handles show
    their state; only the core changes it)."""
    return property(attrgetter(f"state.{flag}"), doc=doc or f"MsQuic's {flag} (read-only)")


class StateError(QuicsimError, RuntimeError):
    """A move the state table does not allow: a bug in the core, never the app's fault."""


# ---------------------------------------------------------------- the move tables

#: A stream's send direction (QuicStreamSendShutdown, QuicStreamOnResetAck, the FIN's ACK).
#: ``stopping``: SendEnabled was cleared and the sends the app queued after its shutdown
#: are being canceled; the FIN or the reset is recorded next.
SEND_MOVES: dict[tuple[str, str], str] = {
    ("open", "disable"): "stopping",  # QuicStreamSendShutdown: SendEnabled = FALSE first
    ("stopping", "disable"): "stopping",  # a shutdown from a handler inside that one
    ("fin", "disable"): "fin",
    ("reset", "disable"): "reset",
    ("open", "graceful"): "fin",
    ("stopping", "graceful"): "fin",
    ("fin", "graceful"): "fin",  # a second graceful shutdown succeeds and does nothing
    ("reset", "graceful"): "reset",  # already aborted: nothing to do gracefully
    # a StreamClose from a late send's SEND_COMPLETE ended the direction inside the shutdown
    ("closed", "graceful"): "closed",
    ("open", "abort"): "reset",
    ("stopping", "abort"): "reset",
    ("fin", "abort"): "reset",
    ("reset", "abort"): "reset",
    ("fin", "acked"): "closed",  # LocalCloseAcked: the FIN (and all data) acknowledged
    ("reset", "acked"): "closed",  # or the RESET_STREAM acknowledged
    # QuicStreamSendShutdown(Silent) and IMMEDIATE treat the close as acknowledged
    ("open", "silent"): "closed",
    ("stopping", "silent"): "closed",
    ("fin", "silent"): "closed",
    ("reset", "silent"): "closed",
    ("closed", "silent"): "closed",
}

#: A stream's receive direction (QuicStreamRecvShutdown, the peer's FIN or RESET_STREAM).
#: ``stopping``: STOP_SENDING was asked for; the direction closes with the peer's answer.
RECEIVE_MOVES: dict[tuple[str, str], str] = {
    ("open", "fin"): "closed",  # RemoteCloseFin
    ("stopping", "fin"): "closed",  # the peer finished anyway
    ("open", "reset"): "closed",  # RemoteCloseReset
    ("stopping", "reset"): "closed",  # the peer's answer to STOP_SENDING
    ("closed", "fin"): "closed",  # a late frame for a direction already over
    ("closed", "reset"): "closed",
    ("open", "abort"): "stopping",  # ABORT_RECEIVE on a started stream: STOP_SENDING
    ("stopping", "abort"): "stopping",
    ("closed", "abort"): "closed",
    ("open", "abort_unstarted"): "closed",  # nothing was ever received: nothing to wait for
    # ABORT_RECEIVE once the peer's FIN came but before the application took everything:
    # as if the peer's reset were acknowledged, no STOP_SENDING and no event
    # (QuicStreamRecvShutdown)
    ("open", "abort_after_fin"): "closed",
    ("closed", "abort_unstarted"): "closed",
    # SHUTDOWN_COMPLETE (the connection's end, an IMMEDIATE shutdown) closes it for good
    ("open", "end"): "closed",
    ("stopping", "end"): "closed",
    ("closed", "end"): "closed",
}

#: The stream's RECEIVE indications (QuicStreamRecvFlush, QuicStreamReceiveComplete,
#: QuicStreamRecvSetEnabledState), from ReceiveEnabled and ReceiveCallPending: ``on``
#: indicates what comes; ``pending`` waits for StreamReceiveComplete (the handler returned
#: PENDING); ``off`` is paused (StreamReceiveSetEnabled(False), or only part was taken).
RECEIVE_CALL_MOVES: dict[tuple[str, str], str] = {
    ("on", "indicate"): "off/pending",
    ("off/pending", "complete_all"): "on",
    ("on/pending", "complete_all"): "on",
    ("off/pending", "complete_part"): "off",
    ("on/pending", "complete_part"): "on",
    ("on", "enable"): "on",
    ("off", "enable"): "on",
    ("off/pending", "enable"): "on/pending",
    ("on/pending", "enable"): "on/pending",
    ("on", "disable"): "off",
    ("off", "disable"): "off",
    ("off/pending", "disable"): "off/pending",
    ("on/pending", "disable"): "off/pending",
    # the receive direction was aborted or is over: nothing more is indicated
    ("on", "stop"): "off",
    ("off", "stop"): "off",
    ("off/pending", "stop"): "off",
    ("on/pending", "stop"): "off",
}

def _receive_call_flags(name: str) -> tuple[bool, bool]:
    return name.startswith("on"), name.endswith("/pending")


#: RECEIVE_CALL_MOVES keyed by the flags themselves: (ReceiveEnabled, ReceiveCallPending,
#: move) -> the new pair. The same table, read per RECEIVE without building names.
_RECEIVE_CALL_BY_FLAGS: dict[tuple[bool, bool, str], tuple[bool, bool]] = {
    (*_receive_call_flags(state), move): _receive_call_flags(target)
    for (state, move), target in RECEIVE_CALL_MOVES.items()
}

#: One-way flags of a stream: the move sets the flag, once (a second time is a bug).
STREAM_FLAG_MOVES: dict[str, str] = {
    "start": "started",  # QuicStreamStart succeeded
    "indicate_start": "start_indicated",  # START_COMPLETE raised (StartedIndicated), even a failure
    "receive_stop_sending": "received_stop_sending",  # the peer's STOP_SENDING was processed
    "complete_shutdown": "shutdown_complete",  # SHUTDOWN_COMPLETE raised (HandleShutdown)
    "close_handle": "handle_closed",  # StreamClose ran (HandleClosed)
}

#: A connection's close (QuicConnTryClose, QuicConnProcessShutdownTimerOperation).
#: ``closing``: ClosedLocally only (the closing period); ``draining``: ClosedRemotely only;
#: ``closed``: both.
CLOSE_MOVES: dict[tuple[str, str], str] = {
    ("open", "close_locally"): "closing",
    ("open", "close_remotely"): "draining",
    ("closing", "close_remotely"): "closed",  # the peer answered our close
    ("draining", "close_locally"): "closed",  # the app closed after the peer did
    ("closing", "close_locally"): "closing",  # already closed here (a silent close ends it)
    ("draining", "close_remotely"): "draining",
    ("closed", "close_locally"): "closed",
    ("closed", "close_remotely"): "closed",
    ("closing", "shutdown_timer"): "closed",  # the closing period ran out unanswered
    ("draining", "shutdown_timer"): "draining",  # drained: the peer's close was the last word
    ("closed", "shutdown_timer"): "closed",
}

#: One-way flags of a connection.
CONNECTION_FLAG_MOVES: dict[str, str] = {
    "connect": "connected",  # the handshake completed (Connected)
    "complete_shutdown": "shutdown_complete",  # SHUTDOWN_COMPLETE raised
    "close_handle": "handle_closed",  # ConnectionClose ran (HandleClosed)
}


def _flags_repr(name: str, state: object) -> str:
    on = [flag for flag in type(state).__slots__ if getattr(state, flag) is True]  # type: ignore[attr-defined]
    return f"<{name} {' '.join(on) or '-'}>"


def _illegal(machine: str, state: str, move: str, holder: object) -> StateError:
    return StateError(f"{machine} in state {state!r} cannot {move!r} ({holder!r})")


class ConnectionState:
    """QUIC_CONNECTION_STATE, the part the stream rules read."""

    __slots__ = ("connected", "closed_locally", "closed_remotely", "app_closed", "shutdown_by_app",
                 "silent", "shutdown_timed_out", "process_shutdown_complete", "shutdown_complete",
                 "handle_closed")

    def __init__(self) -> None:
        self.connected = False  # Connected: the handshake completed
        #: ClosedLocally: this side closed (the app, an idle or handshake timeout, a
        #: transport error found here)
        self.closed_locally = False
        #: ClosedRemotely: the peer's CONNECTION_CLOSE arrived, or a non-silent local close
        #: finished (QuicConnProcessShutdownTimerOperation sets it too)
        self.closed_remotely = False
        self.app_closed = False  # AppClosed: an application close, local or the peer's
        self.shutdown_by_app = False  # ConnectionShutdown (or ConnectionClose) was applied
        self.silent = False  # the local close sent no CONNECTION_CLOSE
        #: ShutdownCompleteTimedOut: set at the first close, cleared by a silent close and
        #: once both sides closed; SHUTDOWN_COMPLETE says peer_acknowledged_shutdown = not it
        self.shutdown_timed_out = False
        #: ProcessShutdownComplete: nothing is left to wait for (a silent close, both sides
        #: closed, or the closing or draining period ran out): SHUTDOWN_COMPLETE is due now
        self.process_shutdown_complete = False
        self.shutdown_complete = False  # SHUTDOWN_COMPLETE was raised
        self.handle_closed = False  # HandleClosed: ConnectionClose ran

    @property
    def shutdown_initiated(self) -> bool:
        return self.closed_locally or self.closed_remotely

    def __repr__(self) -> str:
        return _flags_repr("ConnectionState", self)

    def close_state(self) -> str:
        """The close machine's state, read from ClosedLocally and ClosedRemotely."""
        if self.closed_locally:
            return "closed" if self.closed_remotely else "closing"
        return "draining" if self.closed_remotely else "open"

    def try_close(self, move: str, *, silent: bool = False, application: bool = False,
                  by_app: bool = False) -> bool:
        """QuicConnTryClose: ``close_locally`` or ``close_remotely`` (or the closing or
        draining period's ``shutdown_timer``). ``application``: QUIC_CLOSE_APPLICATION;
        ``by_app``: the app's own ConnectionShutdown or ConnectionClose. Returns True for
        the connection's first close, when the caller records the close's codes and shuts
        every stream down."""
        state = self.close_state()
        target = CLOSE_MOVES.get((state, move))
        if target is None:
            raise _illegal("connection close", state, move, self)
        if move == "shutdown_timer":
            # QuicConnProcessShutdownTimerOperation: the peer counts as closed now, answered
            # or not; ShutdownCompleteTimedOut stays as it was.
            self.closed_remotely = True
            self.process_shutdown_complete = True
            return False
        first = state == "open"
        if target == state:
            # "Already closed": only a silent close forced during the closing period ends
            # it now, as if answered.
            if silent and state == "closing":
                self.shutdown_timed_out = False
                self.process_shutdown_complete = True
            return False
        if move == "close_locally":
            self.closed_locally = True
            self.shutdown_by_app = by_app
            self.silent = silent
        else:
            self.closed_remotely = True
        if first:
            self.shutdown_timed_out = True  # until the peer answers (or the close is silent)
            if application:
                self.app_closed = True
        if silent or target == "closed":
            self.shutdown_timed_out = False
            self.process_shutdown_complete = True
        return first

    def move(self, move: str) -> None:
        """A one-way flag of :data:`CONNECTION_FLAG_MOVES`; setting it twice is a bug."""
        flag = CONNECTION_FLAG_MOVES.get(move)
        if flag is None or getattr(self, flag):
            raise _illegal("connection", "set" if flag else "?", move, self)
        setattr(self, flag, True)


class StreamState:
    """QUIC_STREAM_FLAGS of one stream."""

    __slots__ = ("started", "start_indicated", "send_enabled", "local_close_fin", "local_close_reset",
                 "local_close_acked", "received_stop_sending", "sent_stop_sending", "remote_closed",
                 "receive_enabled", "receive_call_pending", "shutdown_complete", "handle_closed")

    def __init__(self, *, started: bool, has_send_side: bool, has_receive_side: bool) -> None:
        self.started = started  # Started (a peer's stream is started when it is seen)
        self.start_indicated = started  # START_COMPLETE raised (once, even for a failure)
        self.send_enabled = has_send_side  # SendEnabled
        self.local_close_fin = False  # LocalCloseFin: the graceful send shutdown applied
        self.local_close_reset = False  # LocalCloseReset: the send side aborted
        #: LocalCloseAcked: the FIN or the reset acknowledged (or a silent abort);
        #: SEND_SHUTDOWN_COMPLETE is raised then. True when there is no send direction.
        self.local_close_acked = not has_send_side
        self.received_stop_sending = False  # ReceivedStopSending
        self.sent_stop_sending = False  # SentStopSending: ABORT_RECEIVE applied
        #: RemoteCloseFin or RemoteCloseReset (or there is no receive direction)
        self.remote_closed = not has_receive_side
        self.receive_enabled = has_receive_side  # ReceiveEnabled: RECEIVE may be indicated
        self.receive_call_pending = False  # ReceiveCallPending: a RECEIVE awaits its completion
        self.shutdown_complete = False  # ShutdownComplete / HandleShutdown
        self.handle_closed = False  # HandleClosed: StreamClose ran

    def __repr__(self) -> str:
        return _flags_repr("StreamState", self)

    # -- the send direction (QuicStreamSendGetState, coarsely)

    def send_direction(self) -> str:
        if self.local_close_acked:
            return "closed"
        if self.local_close_reset:
            return "reset"
        if self.local_close_fin:
            return "fin"
        return "open" if self.send_enabled else "stopping"

    def move_send(self, move: str) -> bool:
        """Apply ``move`` (:data:`SEND_MOVES`) to the send direction; False: a no-op row."""
        state = self.send_direction()
        target = SEND_MOVES.get((state, move))
        if target is None:
            raise _illegal("send direction", state, move, self)
        self.send_enabled = False
        if target == state:
            return False
        if target == "fin":
            self.local_close_fin = True
        elif target == "reset":
            self.local_close_reset = True
        elif target == "closed":
            self.local_close_acked = True
        return True

    # -- the receive direction

    def receive_direction(self) -> str:
        if self.remote_closed:
            return "closed"
        return "stopping" if self.sent_stop_sending else "open"

    def move_receive(self, move: str) -> bool:
        """Apply ``move`` (:data:`RECEIVE_MOVES`) to the receive direction; False: a no-op row."""
        state = self.receive_direction()
        target = RECEIVE_MOVES.get((state, move))
        if target is None:
            raise _illegal("receive direction", state, move, self)
        if target == state:
            return False
        if move in ("abort", "abort_after_fin"):
            self.sent_stop_sending = True
        if target == "closed":
            self.remote_closed = True
        return True

    # -- the RECEIVE indications

    def receive_calls(self) -> str:
        return ("on" if self.receive_enabled else "off") + ("/pending" if self.receive_call_pending else "")

    def move_receive_call(self, move: str) -> bool:
        """Apply ``move`` (:data:`RECEIVE_CALL_MOVES`, read by flags: this runs per
        RECEIVE); False: a no-op row."""
        enabled, pending = self.receive_enabled, self.receive_call_pending
        target = _RECEIVE_CALL_BY_FLAGS.get((enabled, pending, move))
        if target is None:
            raise _illegal("receive calls", self.receive_calls(), move, self)
        if target == (enabled, pending):
            return False
        self.receive_enabled, self.receive_call_pending = target
        return True

    # -- the one-way flags

    def move(self, move: str) -> None:
        """A one-way flag of :data:`STREAM_FLAG_MOVES`; setting it twice is a bug."""
        flag = STREAM_FLAG_MOVES.get(move)
        if flag is None or getattr(self, flag):
            raise _illegal("stream", "set" if flag else "?", move, self)
        setattr(self, flag, True)
        if move == "complete_shutdown":
            # Both directions are over for good (QuicStreamTryCompleteShutdown).
            self.send_enabled = False
            self.remote_closed = True

    # -- which events it may raise

    def phase(self) -> str:
        """The stream's phase for :data:`STREAM_EVENTS`."""
        if self.shutdown_complete or self.handle_closed:
            return "done"
        if self.started:
            return "started"
        return "start_failed" if self.start_indicated else "unstarted"


# ---------------------------------------------------------------- which events, when

_E = StreamEventType
#: Events a stream may raise, by phase. ``unstarted``: opened, START_COMPLETE not yet
#: raised: it gets no events from the network, only what StreamClose, an ABORT|IMMEDIATE
#: shutdown or a canceled START send raise (QuicStreamShutdown, QuicStreamCompleteSendRequest).
#: ``start_failed``: START_COMPLETE said the start failed: only its shutdown may follow.
#: ``done``: SHUTDOWN_COMPLETE was raised or StreamClose ran: the handler is detached
#: (QuicStreamIndicateEvent finds no handler and discards the event).
STREAM_EVENTS: dict[str, frozenset[StreamEventType]] = {
    "unstarted": frozenset({_E.START_COMPLETE, _E.SEND_COMPLETE, _E.SEND_SHUTDOWN_COMPLETE,
                            _E.SHUTDOWN_COMPLETE}),
    "start_failed": frozenset({_E.SEND_COMPLETE, _E.SEND_SHUTDOWN_COMPLETE, _E.SHUTDOWN_COMPLETE}),
    "started": frozenset(StreamEventType),
    "done": frozenset(),
}

#: Events raised at most once per stream.
ONCE_EVENTS = frozenset({_E.START_COMPLETE, _E.SEND_SHUTDOWN_COMPLETE, _E.SHUTDOWN_COMPLETE})

#: How the ledger words an event outside its phase.
PHASE_TEXT = {
    "unstarted": "to a stream that never started",
    "start_failed": "to a stream whose start failed",
    "done": "after SHUTDOWN_COMPLETE",
}


def event_allowed(phase: str, event_type: StreamEventType) -> bool:
    return event_type in STREAM_EVENTS[phase]


# ---------------------------------------------------------------- call statuses

#: a row's condition on the connection's state (and the stream's, when there is one)
Check = Callable[[ConnectionState, "StreamState | None"], bool]
#: a per-stream call's row: it is always given the stream's state
StreamCheck = Callable[[ConnectionState, StreamState], bool]

#: MsQuicStreamOpen: ``ClosedLocally ? INVALID_STATE : ABORTED`` once either is set.
OPEN_STATUS: tuple[tuple[str, Check, Status], ...] = (
    ("ConnectionClose returned", lambda c, s: c.handle_closed, Status.INVALID_STATE),
    ("ClosedLocally", lambda c, s: c.closed_locally, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
)

#: MsQuicStreamStart (the rest is decided when the worker applies it). The stream rows read
#: the stream's own HandleClosed only: a stream holds its connection until StreamClose,
#: and ConnectionClose closes no stream handle (MsQuicStreamSend/Shutdown/Start have no
#: test of the connection's HandleClosed).
START_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed, Status.INVALID_STATE),
    ("Started", lambda c, s: s.started, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
)

#: MsQuicStreamSend once the buffers are valid: ClosedRemotely before the send side.
SEND_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
    ("!SendEnabled after a peer STOP_SENDING", lambda c, s: not s.send_enabled and s.received_stop_sending,
     Status.ABORTED),
    ("!SendEnabled", lambda c, s: not s.send_enabled, Status.INVALID_STATE),
)

#: MsQuicStreamShutdown once the parameters are valid.
SHUTDOWN_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed, Status.INVALID_STATE),
)

#: QuicStreamStart as the worker applies it: START_COMPLETE's failure status.
START_APPLY_STATUS: tuple[tuple[str, Check, Status], ...] = (
    ("ClosedLocally", lambda c, s: c.closed_locally, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
)


def send_status(conn: ConnectionState, stream: StreamState) -> Status | None:
    """SEND_STATUS for the per-send hot path: when every row is clear (the usual case)
    one test answers, without walking the table."""
    if stream.send_enabled and not (conn.closed_remotely or stream.handle_closed):
        return None
    return status(SEND_STATUS, conn, stream)


# A table of per-stream rows needs the stream; only a table of Check rows may go without.
@overload
def status(table: tuple[tuple[str, StreamCheck, Status], ...], conn: ConnectionState,
           stream: StreamState) -> Status | None: ...


@overload
def status(table: tuple[tuple[str, Check, Status], ...], conn: ConnectionState,
           stream: None = None) -> Status | None: ...


def status(table: tuple[tuple[str, Callable[..., bool], Status], ...], conn: ConnectionState,
           stream: StreamState | None = None) -> Status | None:
    """The first row of ``table`` whose condition holds, or None: the call is accepted."""
    for _name, check, result in table:
        if check(conn, stream):
            return result
    return None


# ---------------------------------------------------------------- the tables as Markdown

def markdown() -> str:
    """Every move table and the event table as Markdown (docs/conformance.md holds it)."""
    out: list[str] = []

    def machine(title: str, table: dict[tuple[str, str], str]) -> None:
        states = list(dict.fromkeys(s for s, _ in table))
        moves = list(dict.fromkeys(m for _, m in table))
        out.append(f"**{title}** (state × move → state; blank: illegal, raises StateError)\n")
        out.append("| state | " + " | ".join(f"`{m}`" for m in moves) + " |")
        out.append("|---" * (len(moves) + 1) + "|")
        for s in states:
            cells = []
            for m in moves:
                target = table.get((s, m))
                cells.append("" if target is None else ("(no-op)" if target == s else target))
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")

    machine("Stream send direction", SEND_MOVES)
    machine("Stream receive direction", RECEIVE_MOVES)
    machine("Stream RECEIVE indications", RECEIVE_CALL_MOVES)
    machine("Connection close", CLOSE_MOVES)
    out.append("**One-way flags** (set once; a second time raises StateError)\n")
    out.append("| move | stream flag |  | move | connection flag |")
    out.append("|---|---|---|---|---|")
    stream_rows, conn_rows = list(STREAM_FLAG_MOVES.items()), list(CONNECTION_FLAG_MOVES.items())
    for i in range(max(len(stream_rows), len(conn_rows))):
        left = stream_rows[i] if i < len(stream_rows) else ("", "")
        right = conn_rows[i] if i < len(conn_rows) else ("", "")
        out.append(f"| {'`%s`' % left[0] if left[0] else ''} | {left[1]} |  | "
                   f"{'`%s`' % right[0] if right[0] else ''} | {right[1]} |")
    out.append("")
    out.append("**Stream events by phase** (x: may be raised; once: START_COMPLETE, "
               "SEND_SHUTDOWN_COMPLETE, SHUTDOWN_COMPLETE)\n")
    phases = list(STREAM_EVENTS)
    out.append("| event | " + " | ".join(phases) + " |")
    out.append("|---" * (len(phases) + 1) + "|")
    for event_type in StreamEventType:
        out.append(f"| {event_type.name} | "
                   + " | ".join("x" if event_type in STREAM_EVENTS[p] else "" for p in phases) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")

"""Stream and connection state in MsQuic's own terms, and every call's status from it.

``StreamState`` holds a stream's QUIC_STREAM_FLAGS and ``ConnectionState`` a
connection's QUIC_CONNECTION_STATE, under their MsQuic names in snake_case; nothing
else in the core keeps its own copy of them. What a call returns at once is decided
here, from tables of (MsQuic's condition, status) rows checked in the order MsQuic's
``api.c`` checks them, so the rule for a status is one row, not a branch repeated in
several places. Moves of the send direction are a table too: a move the table does not
have raises :class:`StateError` naming the state and the move (as h11 does).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Callable, overload

from ..enums import Status


def view(flag: str, doc: str = "") -> property:
    """A read-only property of a handle that reads ``self.state.<flag>`` (the handles show
    their state; only the core changes it)."""
    return property(attrgetter(f"state.{flag}"), doc=doc or f"MsQuic's {flag} (read-only)")


class StateError(RuntimeError):
    """A move the state table does not allow: a bug in the core, never the app's fault."""


class ConnectionState:
    """QUIC_CONNECTION_STATE, the part the stream rules read."""

    __slots__ = ("connected", "closed_locally", "closed_remotely", "app_closed", "shutdown_by_app",
                 "silent", "shutdown_complete", "handle_closed")

    def __init__(self) -> None:
        self.connected = False  # Connected: the handshake completed
        #: ClosedLocally: this side closed (the app, an idle or handshake timeout, a
        #: transport error found here)
        self.closed_locally = False
        #: ClosedRemotely: the peer's CONNECTION_CLOSE arrived, or a non-silent local close
        #: finished (QuicConnProcessShutdownTimerOperation sets it too)
        self.closed_remotely = False
        self.app_closed = False  # AppClosed: an application close, local or the peer's
        self.shutdown_by_app = False  # ConnectionShutdown was applied
        self.silent = False  # the local close sent no CONNECTION_CLOSE
        self.shutdown_complete = False  # SHUTDOWN_COMPLETE was raised
        self.handle_closed = False  # HandleClosed: ConnectionClose returned

    @property
    def shutdown_initiated(self) -> bool:
        return self.closed_locally or self.closed_remotely

    def __repr__(self) -> str:
        return _flags_repr("ConnectionState", self)


class StreamState:
    """QUIC_STREAM_FLAGS of one stream."""

    __slots__ = ("started", "start_indicated", "send_enabled", "local_close_fin", "local_close_reset",
                 "local_close_acked", "received_stop_sending", "sent_stop_sending", "remote_closed",
                 "shutdown_complete", "handle_closed")

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
        self.shutdown_complete = False  # ShutdownComplete / HandleShutdown
        self.handle_closed = False  # HandleClosed: StreamClose ran

    def __repr__(self) -> str:
        return _flags_repr("StreamState", self)

    # -- the send direction's moves (QuicStreamSendShutdown), as a table

    def send_direction(self) -> str:
        """QuicStreamSendGetState, coarsely: the send direction's state name."""
        if self.local_close_acked:
            return "closed"
        if self.local_close_reset:
            return "reset"
        if self.local_close_fin:
            return "fin"
        return "open"

    def move_send(self, move: str) -> None:
        """Apply ``move`` ("graceful", "abort" or "acked") to the send direction."""
        state = self.send_direction()
        target = SEND_MOVES.get((state, move))
        if target is None:
            raise StateError(f"send direction in state {state!r} cannot {move!r} ({self!r})")
        if target == "fin":
            self.local_close_fin = True
        elif target == "reset":
            self.local_close_reset = True
        elif target == "closed":
            self.local_close_acked = True
        self.send_enabled = False


#: (send direction state, move) -> new state. A missing entry is an illegal move.
SEND_MOVES: dict[tuple[str, str], str] = {
    ("open", "graceful"): "fin",
    ("fin", "graceful"): "fin",  # a second graceful shutdown succeeds and does nothing
    ("reset", "graceful"): "reset",  # already aborted: nothing to do gracefully
    ("open", "abort"): "reset",
    ("fin", "abort"): "reset",
    ("reset", "abort"): "reset",
    ("fin", "acked"): "closed",
    ("reset", "acked"): "closed",
    # QuicStreamSendShutdown(Silent) and IMMEDIATE treat the close as acknowledged
    ("open", "silent"): "closed",
    ("fin", "silent"): "closed",
    ("reset", "silent"): "closed",
    ("closed", "silent"): "closed",
}


def _flags_repr(name: str, state: object) -> str:
    on = [flag for flag in type(state).__slots__ if getattr(state, flag)]  # type: ignore[attr-defined]
    return f"<{name} {' '.join(on) or '-'}>"


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

#: MsQuicStreamStart (the rest is decided when the worker applies it).
START_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed or c.handle_closed, Status.INVALID_STATE),
    ("Started", lambda c, s: s.started, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
)

#: MsQuicStreamSend once the buffers are valid: ClosedRemotely before the send side.
SEND_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed or c.handle_closed, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
    ("!SendEnabled after a peer STOP_SENDING", lambda c, s: not s.send_enabled and s.received_stop_sending,
     Status.ABORTED),
    ("!SendEnabled", lambda c, s: not s.send_enabled, Status.INVALID_STATE),
)

#: MsQuicStreamShutdown once the parameters are valid.
SHUTDOWN_STATUS: tuple[tuple[str, StreamCheck, Status], ...] = (
    ("HandleClosed", lambda c, s: s.handle_closed or c.handle_closed, Status.INVALID_STATE),
)

#: QuicStreamStart as the worker applies it: START_COMPLETE's failure status.
START_APPLY_STATUS: tuple[tuple[str, Check, Status], ...] = (
    ("ClosedLocally", lambda c, s: c.closed_locally, Status.INVALID_STATE),
    ("ClosedRemotely", lambda c, s: c.closed_remotely, Status.ABORTED),
)


def send_status(conn: ConnectionState, stream: StreamState) -> Status | None:
    """SEND_STATUS for the per-send hot path: when every row is clear (the usual case)
    one test answers, without walking the table."""
    if stream.send_enabled and not (conn.closed_remotely or stream.handle_closed or conn.handle_closed):
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

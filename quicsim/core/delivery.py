"""Event delivery for one connection and its streams: MsQuic's indicate rules
(QuicConnIndicateEvent, QuicStreamIndicateEvent), the observers, and the handler call,
in one object. Handlers of one connection never overlap; one that raises is recorded and
logged, never allowed to break the worker. Observers only watch: one that raises watches
no more (observer_failed), and the application still gets every event."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any, Callable

from .. import events as ev
from ..enums import Status
from ..observer import observer_failed, tell
from . import state

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore
    from .stream import StreamCore

logger = logging.getLogger("quicsim")


class EventDelivery:
    """Raises a connection's and its streams' events, and tells its observers."""

    def __init__(self, conn: "ConnectionCore", observers: list[Any] | tuple[Any, ...]) -> None:
        self.conn = conn
        self.observers = list(observers)
        #: some observer counts the core's probes (rare branches): only then are they reported
        self.probing = any(getattr(o, "wants_probes", False) for o in self.observers)
        #: callbacks of this connection running now (one inside another: an inline call)
        self.depth = 0
        self.handler_errors: list[BaseException] = []
        #: observers that raised and watch no more: (observer, what it raised, said as text)
        self.observer_errors: list[tuple[Any, Exception, str]] = []
        self.fault_hits: list[tuple[str, str]] = []

    # ------------------------------------------------------------ connection events

    def connection_event(self, event: ev.ConnectionEvent) -> None:
        """QuicConnIndicateEvent: the handler is detached after SHUTDOWN_COMPLETE."""
        if self.conn.state.shutdown_complete:
            return
        self.dispatch_connection(event)

    def dispatch_connection(self, event: ev.ConnectionEvent) -> None:
        conn = self.conn
        self.tell("connection_event", conn, event)
        if conn.handler is not None:
            self.call_handler(conn.handler, conn.owner, event)
        if conn.event_hook is not None:
            conn.event_hook(event)

    # ------------------------------------------------------------ stream events

    def stream_event(self, stream: "StreamCore", event: ev.StreamEvent) -> Any:
        """QuicStreamIndicateEvent: deliver ``event`` if the stream's phase allows it
        (state.STREAM_EVENTS); an event the phase does not allow is a core bug. Returns
        what the handler returned."""
        st = stream.state
        if st.started and not (st.shutdown_complete or st.handle_closed):
            return self.dispatch_stream(stream, event)  # the usual case: a started stream may raise every event
        return self.stream_event_in(stream, st.phase(), event)

    def stream_event_in(self, stream: "StreamCore", phase: str, event: ev.StreamEvent) -> Any:
        # Only the stream's own handler decides (QuicStreamIndicateEvent): ConnectionClose
        # detaches the connection's handler, not its streams'.
        if phase == "done":
            # The handler is detached at SHUTDOWN_COMPLETE and at StreamClose.
            self.discarded(stream, event)
            return None
        if state.event_allowed(phase, event.type):
            return self.dispatch_stream(stream, event)
        raise state.StateError(f"{event.type.name} raised on a stream in phase {phase!r} ({stream.state!r})")

    def dispatch_stream(self, stream: "StreamCore", event: ev.StreamEvent) -> Any:
        """Deliver ``event`` to observers, then the handler, then the event hook; returns
        what the handler returned (None when it raised)."""
        conn = self.conn
        observers = self.observers
        if observers:
            try:
                for observer in observers:
                    observer.stream_event(conn, stream, event)
            except Exception as exc:
                self.observer_failed(observer, exc, "stream_event", (conn, stream, event))
        handler = stream.handler
        result = None
        if handler is not None:
            # call_handler, inline: this is every SEND_COMPLETE's path.
            self.depth += 1
            try:
                result = handler(stream.owner, event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a handler bug (even CancelledError) must not stall the worker
                self.handler_raised(exc, event)
            finally:
                self.depth -= 1
        elif not stream.is_local:
            stream.default_peer_handler(event)
        if stream.event_hook is not None:
            stream.event_hook(event)
        return result

    def discarded(self, stream: "StreamCore", event: ev.StreamEvent) -> None:
        self.tell("event_discarded", self.conn, stream, event)

    # ------------------------------------------------------------ the handler call

    def call_handler(self, handler: Callable[..., Any], target: Any, event: Any) -> None:
        """Run one callback. Callbacks of a connection never overlap; an exception is
        recorded and logged, never allowed to break the worker."""
        self.depth += 1
        try:
            handler(target, event)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a handler bug (even CancelledError) must not stall the worker
            self.handler_raised(exc, event)
        finally:
            self.depth -= 1

    def handler_raised(self, exc: BaseException, event: Any) -> None:
        """A callback raised: recorded and logged, and the worker goes on."""
        self.handler_errors.append(exc)
        logger.error("%s: handler raised on %s:\n%s", self.conn.label, type(event).__name__,
                     "".join(traceback.format_exception(exc)))

    # ------------------------------------------------------------ observers

    def tell(self, hook: str, *args: Any) -> None:
        """Call ``hook(*args)`` on every observer (the paths taken per send or per packet
        loop inline, guarded the same way)."""
        tell(self, self.conn.label, hook, *args)

    def observer_failed(self, observer: Any, exc: Exception, hook: str, args: tuple[Any, ...]) -> None:
        """An observer raised: it watches no more (observer.observer_failed)."""
        observer_failed(self, self.conn.label, observer, exc, hook, args)

    # ------------------------------------------------------------ what observers are told besides events

    def api_call(self, stream: "StreamCore | None", name: str, status: Status | None, **args: Any) -> None:
        self.tell("api_call", self.conn, stream, name, status, args)

    def probe(self, stream: "StreamCore | None", name: str) -> None:
        """A state-coverage probe at a rare branch; callers test ``probing`` first."""
        self.tell("probe", self.conn, stream, name)

    def preempted(self, stream: "StreamCore | None", call: str) -> None:
        self.tell("preempted", self.conn, stream, call)

    def network_window(self, stream: "StreamCore | None", call: str, seconds: float,
                       let_through: dict[str, int]) -> None:
        self.tell("network_window", self.conn, stream, call, seconds, let_through)

    def applied(self, stream: "StreamCore | None", kind: str) -> None:
        observers = self.observers
        if observers:  # per operation: the loop inline (tell's guard, by hand)
            try:
                for observer in observers:
                    observer.operation_applied(self.conn, stream, kind)
            except Exception as exc:
                self.observer_failed(observer, exc, "operation_applied", (self.conn, stream, kind))

    def teardown(self) -> None:
        self.tell("teardown")

    def fault_hit(self, fault: str, stream: "StreamCore", what: str) -> None:
        self.fault_hits.append((fault, what))
        self.tell("fault_hit", self.conn, stream, fault, what)

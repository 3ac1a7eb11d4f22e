"""The observer interface: what an application can see of a connection, and nothing more.

Observers (the ledger, tracers) are told about every API call with the status it
returned, every operation the worker applied, every event delivered (or discarded),
and every injected fault that fired. They only watch: they never call back into the
connection and share no state with the core.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

#: an observer that stopped watching is said here (quicsim run says it once itself, at the end)
logger = logging.getLogger("quicsim.observers")


class Watched(Protocol):
    """What a connection's observers are held by (the core's event delivery, the MsQuic
    backend's connection): the list it calls, and what stopped watching."""

    observers: list[Any]
    observer_errors: list[tuple[Any, Exception, str]]


def observer_failed(owner: Watched, label: str, observer: Any, exc: Exception, hook: str,
                    args: tuple[Any, ...]) -> None:
    """``observer`` raised in ``hook``: it watches no more (a tracer on a full disk must not
    cost the application an event), this is said once, and the observers after it are told
    what it was being told."""
    observers = owner.observers
    after = observers[observers.index(observer) + 1:] if observer in observers else []
    # A new list: a loop over the old one (on another thread, say) is not disturbed.
    owner.observers = [o for o in observers if o is not observer]
    path = getattr(observer, "path", None)
    name = type(observer).__name__ + (f" ({path})" if path is not None else "")
    text = f"{label}: {name} stopped watching: {type(exc).__name__}: {exc} (in {hook})"
    owner.observer_errors.append((observer, exc, text))
    logger.warning("quicsim: %s", text)
    for later in after:
        try:
            getattr(later, hook)(*args)
        except Exception as again:
            observer_failed(owner, label, later, again, hook, args)


def tell(owner: Watched, label: str, hook: str, *args: Any) -> None:
    """Call ``hook(*args)`` on every observer of ``owner``, guarded (observer_failed)."""
    observers = owner.observers
    if observers:
        try:
            for observer in observers:
                getattr(observer, hook)(*args)
        except Exception as exc:
            observer_failed(owner, label, observer, exc, hook, args)


class Observer:
    """Base class with a no-op for every notification; override what you need."""

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        """An API call returned ``status`` (None for calls that return nothing)."""

    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        """StreamSend returned ``status`` (the hot path gets its own hook; by default it is
        reported as ``api_call(..., "send", ...)``)."""
        self.api_call(conn, stream, "send", status, {"send_id": send_id, "bytes": length, "flags": flags,
                                                     "client_context": client_context})

    def send_queued(self, conn: Any, stream: Any, send_id: int, offset: int, end: int, fin: bool) -> None:
        """The worker queued an accepted send at stream bytes ``[offset, end)``."""

    def sends_queued(self, conn: Any, stream: Any, queued: list[tuple[int, int, int, bool]]) -> None:
        """The worker queued these accepted sends, oldest first, as ``(send_id, offset, end,
        fin)``: one call per flush (before any callback the flush raises), by default
        passed on as one :meth:`send_queued` each."""
        for send_id, offset, end, fin in queued:
            self.send_queued(conn, stream, send_id, offset, end, fin)

    def stream_data_received(self, conn: Any, stream: Any, stream_id: int, length: int, fin: bool) -> None:
        """The QUIC stack delivered the next ``length`` bytes of stream ``stream_id`` (and its
        FIN when ``fin``), whether or not the application still receives on it. Delivery is
        in order, so they start where the stream's previous delivery ended. ``stream`` is
        None when no handle tracks the stream any more."""

    def preempted(self, conn: Any, stream: Any, call: str) -> None:
        """The worker runs now, at the preemption point after the API call ``call``
        (``Settings.preempt``); the operations it applies are reported next."""

    def network_window(self, conn: Any, stream: Any, call: str, seconds: float, let_through: dict[str, int]) -> None:
        """The preemption point after ``call`` let the network in for ``seconds`` of virtual
        time (``Settings.preempt_window_ms``); ``let_through`` counts what ran in it:
        datagrams delivered ``to_server`` / ``to_client`` and ``timers`` fired."""

    #: set True to be told of the core's probes (``probe``); the core skips them otherwise
    wants_probes = False

    def probe(self, conn: Any, stream: Any, name: str) -> None:
        """The worker reached the rare branch ``name`` (see :data:`quicsim.probes.CORE_PROBES`)."""

    def operation_applied(self, conn: Any, stream: Any, kind: str) -> None:
        """The worker applied a queued operation (``send``, ``shutdown``, ``start``, ...)."""

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        """An event is being delivered to a stream's handler."""

    def connection_event(self, conn: Any, event: Any) -> None:
        """An event is being delivered to a connection's handler."""

    def event_discarded(self, conn: Any, stream: Any, event: Any) -> None:
        """An event was raised after the stream's handler was detached and never delivered."""

    def fault_hit(self, conn: Any, stream: Any, fault: str, what: str) -> None:
        """An injected fault changed what happened."""

    def teardown(self) -> None:
        """The application's part of the run is over: what it left is judged now, before
        the teardown closes what it left open (the ledger judges; a trace marks the moment,
        so a history is judged offline at the same point)."""

"""A connected client and server over a lossy link, on either transport, in one call.

``transport="udp"``: real sockets on 127.0.0.1 with the relay between them.
``transport="memory"``: the in-memory link (deterministic on a virtual-time loop).
``backend="msquic"``: both ends are the real libmsquic (loopback UDP through the relay).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from . import api
from .ledger import Ledger
from .network import Network
from .settings import Settings
from .transport.memory import MemoryLink
from .transport.relay import Relay

TRANSPORTS = ("udp", "memory")
BACKENDS = ("simulator", "msquic")
TEARDOWN_SECONDS = 3.0
#: On virtual time waiting is free, so a teardown can outlast an idle timeout: a
#: connection that still has not finished is then really stuck.
VIRTUAL_TEARDOWN_SECONDS = 120.0


@dataclass
class Pair:
    client: api.Connection
    server: api.Connection
    listener: api.Listener
    network: Network
    ledger: Ledger
    seed: int
    transport: str
    _link: Any = field(default=None, repr=False)
    backend: str = "simulator"
    _judged: bool = field(default=False, repr=False)

    async def shutdown(self, timeout: float = TEARDOWN_SECONDS) -> bool:
        """Shut down as an application would (client first), wait boundedly for both
        SHUTDOWN_COMPLETEs, then close every handle and the link. Returns False when a
        connection had to be cut short because its SHUTDOWN_COMPLETE did not come."""
        client, server = self.client, self.server
        if client.handle_closed and server.handle_closed:
            return True
        clean = True
        try:
            clean = await shutdown_and_wait(client, timeout)
            if not server.shutdown_complete:
                try:
                    await server.wait_shutdown_complete(timeout=timeout)
                except asyncio.TimeoutError:
                    clean = False
        finally:
            self.close()
        return clean

    def judge_left(self) -> None:
        """Judge what the application left (once): the observers' teardown, so the ledger
        reports sends on never-started streams it never closed as leaks, and a trace marks
        the moment."""
        if not self._judged:
            self._judged = True
            self.client.core.observe_teardown()
            if self.server.core.observers != self.client.core.observers:
                self.server.core.observe_teardown()

    def close(self) -> None:
        """Close at once (silently where still open), after judging what the application
        left (:meth:`judge_left`)."""
        self.judge_left()
        for conn in (self.client, self.server):
            if conn is not None:
                close_with_leftovers(conn)
        self.listener.close()
        if self._link is not None:
            self._link.close()


async def shutdown_and_wait(conn: api.Connection, timeout: float) -> bool:
    """ConnectionShutdown as an application would (unless it already began), then a wait
    bounded by ``timeout`` for SHUTDOWN_COMPLETE; False when it did not come."""
    if conn.shutdown_complete:
        return True
    if not conn.shutdown_initiated:
        conn.shutdown()
    try:
        await conn.wait_shutdown_complete(timeout=timeout)
    except asyncio.TimeoutError:
        return False
    return True


def close_with_leftovers(conn: api.Connection) -> None:
    """ConnectionClose after closing the stream handles it would not (never started)."""
    for stream in conn.leftover_streams():
        stream.close()
    conn.close()


def watch_network(network: Network, observers: tuple[Any, ...], qlog: Any) -> tuple[Any, ...]:
    """The observers of a run (``qlog`` among them when given), each that watches the link
    (it has a ``network`` method) subscribed to ``network``'s datagrams."""
    if qlog is not None:
        observers = (*observers, qlog)
    for observer in observers:
        if hasattr(observer, "network"):
            network.listeners.append(observer.network)
    return observers


async def open_pair(
    *,
    transport: str = "udp",
    network: dict[str, Any] | Network | None = None,
    seed: int = 1,
    client_settings: Settings | None = None,
    server_settings: Settings | None = None,
    ledger: Ledger | None = None,
    server_handler: Callable[..., Any] | None = None,
    client_handler: Callable[..., Any] | None = None,
    observers: tuple[Any, ...] = (),
    accept_timeout: float = 10.0,
    qlog: Any = None,
    wire_log: list[str] | None = None,
    backend: str = "simulator",
    msquic_lib: str | None = None,
) -> Pair:
    """Connect a client and a server through a lossy link sharing one ledger.
    ``qlog`` (a :class:`quicsim.qlog.QlogWriter`) records a qlog per connection;
    ``wire_log`` (a list, memory transport only) gets one line per datagram sent.
    ``backend="msquic"`` runs both ends on the real libmsquic (``msquic_lib``, else
    ``$QUICSIM_MSQUIC_LIB``, else the system's); BackendError if it cannot."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "msquic":
        _check_msquic(transport, qlog, wire_log)
    loop = asyncio.get_running_loop()
    if not isinstance(network, Network):
        network = Network(network, seed, loop.time)
    observers = watch_network(network, observers, qlog)
    ledger = ledger if ledger is not None else Ledger()
    if backend == "msquic":
        from .backends.msquic import connection as msquic

        listen, connect = msquic.listen, msquic.connect
        extra: dict[str, Any] = {"msquic_lib": msquic_lib}
    else:
        listen, connect = api.listen, api.connect  # type: ignore[assignment]
        extra = {"quic_logger": qlog, "seed": seed}
    link: Any = None
    listener: Any = None
    try:
        if transport == "memory":
            link = extra["link"] = MemoryLink(network, wire_log)
        listener = await listen(handler=server_handler, settings=server_settings, ledger=ledger,
                                observers=observers, **extra)
        if transport == "udp":
            link = await Relay(("127.0.0.1", listener.port), network).start()
        client = await connect("127.0.0.1", link.port if transport == "udp" else 0, handler=client_handler,
                               settings=client_settings, ledger=ledger, observers=observers, **extra)
        server = await listener.accept(timeout=accept_timeout)
    except BaseException:
        if listener is not None:
            listener.close()
        if link is not None:
            link.close()
        raise
    # (on the library the handles are MsQuicConnection / MsQuicListener, the same API)
    return Pair(client, server, listener, network, ledger, seed, transport, link,  # type: ignore[arg-type]
                backend=backend)


def _check_msquic(transport: str, qlog: Any, wire_log: Any) -> None:
    """What the msquic backend cannot do (BackendError): both ends are the real library."""
    from .errors import BackendError

    if transport != "udp":
        raise BackendError("the msquic backend runs over loopback UDP only (the in-memory link and virtual "
                           "time are the simulator's)")
    if qlog is not None or wire_log is not None:
        raise BackendError("qlog and wire logs record the simulator's packets; the msquic backend has none")

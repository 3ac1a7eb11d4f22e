"""The asyncio-facing API: ``connect``, ``listen``, and awaitable helpers on top of the core.

``Stream`` and ``Connection`` are the core's handles plus ``wait_*`` coroutines for tests
and scenarios; every MsQuic call itself is a plain (non-async) method, as in MsQuic.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, Sequence, TypeVar, cast, overload

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.logger import QuicLogger

from . import certs as _certs
from . import events as ev
from .core import ConnectionCore, StreamCore, aioquic_adapter
from .core.send_queue import Buffer
from .enums import (ConnectionEventType, ConnectionShutdownFlags, SendFlags, Status, StreamEventType,
                    StreamOpenFlags, StreamShutdownFlags, StreamStartFlags)
from .ledger import Ledger
from .observer import Observer
from .settings import Settings
from .tls_hints import tls_hint
from .transport import memory as _memory
from .transport.udp import ConnectionDriver, open_client, open_server

DEFAULT_ALPN = "quicsim"
#: handshakes a listener keeps in progress at once; the oldest is dropped beyond this
MAX_HALF_OPEN = 64

#: What StreamSend takes: one bytes-like buffer, or a list (or tuple) of them (QUIC_BUFFER[]).
SendBuffers = Buffer | Sequence[Buffer]
#: ``handler(stream, event)``: a stream's callback (StreamOpen, SetCallbackHandler).
#: Returning ``Status.PENDING`` from a RECEIVE holds the data; other results are ignored.
StreamHandler = Callable[["Stream", ev.AnyStreamEvent], object]
#: ``handler(connection, event)``: a connection's (or a listener's) callback.
ConnectionHandler = Callable[["Connection", ev.AnyConnectionEvent], object]

if TYPE_CHECKING:
    from .core.connection import ConnectionHandler as _CoreConnectionHandler
    from .core.stream import StreamHandler as _CoreStreamHandler


class _Waiters:
    """Futures waiting for the next event of a type; empty (and free) when nobody waits."""

    __slots__ = ("_by_type",)

    def __init__(self) -> None:
        self._by_type: dict[Any, list[asyncio.Future[Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def add(self, event_type: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self._by_type.setdefault(event_type, []).append(future)
        return future

    def fire(self, event: Any) -> None:
        for key in (event.type, None):
            futures = self._by_type.pop(key, None)
            if futures:
                for future in futures:
                    if not future.done():
                        future.set_result(event)


async def wait_or_time_out(future: asyncio.Future[Any], timeout: float | None, what: Callable[[], str]) -> Any:
    """``future``'s result; past ``timeout`` a TimeoutError that says what was awaited (both backends)."""
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(f"timed out after {timeout} s waiting for {what()}") from None


class _Connecting(Protocol):
    async def wait_connected(self, timeout: float | None = ...) -> Any: ...

    def close(self) -> None: ...


_Conn = TypeVar("_Conn", bound=_Connecting)


async def connected(conn: _Conn, settings: Settings, label: str, host: str, port: int) -> _Conn:
    """``conn`` once its handshake completed (both backends); closed, and a ConnectionError
    that says so, when it does not within the handshake idle timeout."""
    try:
        await conn.wait_connected(timeout=settings.handshake_idle_timeout_ms / 1000.0)
    except asyncio.TimeoutError:
        conn.close()
        raise ConnectionError(f"{label}: handshake with {host}:{port} timed out after "
                              f"{settings.handshake_idle_timeout_ms} ms") from None
    except BaseException:
        conn.close()
        raise
    return conn


class AcceptBacklog:
    """A listener's connections whose handshake completed, waiting for ``accept()`` (both
    backends). Live ones all stay; of those that finished before anyone accepted them only
    the newest ``MAX_FINISHED``: a listener served by its handler alone, never accepting,
    keeps bounded memory however many connections it serves."""

    MAX_FINISHED = 64

    def __init__(self) -> None:
        self._ready: dict[Any, None] = {}  # insertion-ordered: the oldest first
        self._finished: collections.deque[Any] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()

    def __len__(self) -> int:
        return len(self._ready)

    def put(self, conn: Any) -> None:
        """A handshake completed (on the loop's thread)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._ready[conn] = None

    def finished(self, conn: Any) -> None:
        """``conn`` reached SHUTDOWN_COMPLETE: forget the oldest finished ones past the bound."""
        if conn in self._ready:
            self._finished.append(conn)
            while len(self._finished) > self.MAX_FINISHED:
                self._ready.pop(self._finished.popleft(), None)

    def clear(self) -> None:
        """The listener closed: nothing waits to be accepted any more."""
        self._ready.clear()
        self._finished.clear()

    async def get(self, timeout: float | None) -> Any:
        """The oldest connection waiting; past ``timeout`` a TimeoutError that says so."""
        if self._ready:
            conn = next(iter(self._ready))
            del self._ready[conn]
            return conn
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"no connection accepted within {timeout} s") from None


T = TypeVar("T")


class _Read(Generic[T]):
    """A read-only attribute of a handle: the core's own (``core.x``) or, with ``state``,
    one of its MsQuic state flags (``core.state.x``)."""

    def __init__(self, name: str, *, state: bool = False, doc: str = "") -> None:
        self._name = name
        self._state = state
        self.__doc__ = doc or f"The core's {name}."

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> "_Read[T]": ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        core = obj.core
        return getattr(core.state if self._state else core, self._name)


def _type_name(event_type: Any) -> str:
    return "any event" if event_type is None else event_type.name


class Stream:
    """A stream handle (``conn.open_stream()``, or ``event.stream`` of PEER_STREAM_STARTED).

    It wraps a :class:`~quicsim.core.StreamCore` (``.core``), where MsQuic's rules live,
    and adds the ``wait_*`` coroutines. Handlers receive this handle, never the core.
    """

    def __init__(self, core: StreamCore) -> None:
        self.core = core
        self._conn: Connection = core.connection.owner
        self._waiters = _Waiters()
        core.owner = self
        if not self._conn.preempt:
            # StreamSend is the hot path: with no preemption point to run after it, the
            # handle's send is the core's own bound method (no extra call per send).
            self.__dict__["send"] = core.send

    def __repr__(self) -> str:
        return repr(self.core)

    # MsQuic's calls: plain methods, as in MsQuic.
    def start(self, flags: StreamStartFlags = StreamStartFlags.NONE) -> Status:
        """StreamStart: PENDING; the result arrives in START_COMPLETE."""
        status = self.core.start(flags)
        if self._conn.preempt:
            self._conn.preemption_point(self.core, "start")
        return status

    def send(self, buffers: SendBuffers, flags: SendFlags = SendFlags.NONE, client_context: Any = None) -> Status:
        """StreamSend: PENDING when accepted (then exactly one SEND_COMPLETE follows)."""
        status = self.core.send(buffers, flags, client_context)
        if self._conn.preempt:
            self._conn.preemption_point(self.core, "send")
        return status

    def shutdown(self, flags: StreamShutdownFlags, error_code: int = 0) -> Status:
        """StreamShutdown: PENDING, or SUCCESS when INLINE is used inside a callback."""
        status = self.core.shutdown(flags, error_code)
        if self._conn.preempt:
            self._conn.preemption_point(self.core, "shutdown")
        return status

    def close(self) -> None:
        """StreamClose: pending sends complete (canceled) before this returns; no event
        reaches the handler afterwards."""
        self.core.close()

    def set_handler(self, handler: StreamHandler | None, context: Any = None) -> None:
        """SetCallbackHandler: route this stream's events to ``handler(stream, event)``."""
        # the core calls it with its owner (this handle) and its concrete events
        self.core.set_handler(cast("_CoreStreamHandler | None", handler), context)

    def receive_complete(self, length: int) -> Status:
        """StreamReceiveComplete: ``length`` bytes of the RECEIVE the handler held (returned
        ``Status.PENDING`` for) were taken; see :meth:`quicsim.core.StreamCore.receive_complete`."""
        return self.core.receive_complete(length)

    def receive_set_enabled(self, enabled: bool) -> Status:
        """StreamReceiveSetEnabled: pause (False) or resume (True) RECEIVE indications."""
        return self.core.receive_set_enabled(enabled)

    # What an application may read.
    @property
    def connection(self) -> "Connection":
        return cast(Connection, self.core.connection.owner)

    id = _Read[int | None]('id', doc='The QUIC stream id (None until the stream started).')
    handle = _Read[int]('handle',
                        doc='The connection-local handle number (every stream has one, started or not).')
    context = _Read[Any]('context')
    open_flags = _Read[StreamOpenFlags]('open_flags')
    is_local = _Read[bool]('is_local')
    unidirectional = _Read[bool]('unidirectional')
    started = _Read[bool]('started', state=True)
    send_enabled = _Read[bool]('send_enabled', state=True)
    send_shutdown_indicated = _Read[bool]('local_close_acked', state=True,
                                          doc='SEND_SHUTDOWN_COMPLETE was raised (or there is no send direction).')
    shutdown_complete = _Read[bool]('shutdown_complete', state=True)
    handle_closed = _Read[bool]('handle_closed', state=True)

    # Awaitables for tests and scenarios.
    async def wait_event(self, event_type: StreamEventType | None = None,
                         timeout: float | None = None) -> ev.AnyStreamEvent:
        """The next event of ``event_type`` (any type when None) delivered to this stream."""
        if self.core.event_hook is None:
            self.core.event_hook = self._waiters.fire
        return cast(ev.AnyStreamEvent, await wait_or_time_out(self._waiters.add(event_type), timeout,
                           lambda: f"{_type_name(event_type)} on {self!r}"))

    async def wait_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once SHUTDOWN_COMPLETE was delivered (at once if it already was)."""
        if self.shutdown_complete or self.handle_closed:
            return
        await self.wait_event(StreamEventType.SHUTDOWN_COMPLETE, timeout)

    async def wait_send_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once SEND_SHUTDOWN_COMPLETE was delivered (at once if it already was)."""
        if self.send_shutdown_indicated or self.shutdown_complete or self.handle_closed:
            return
        await self.wait_event(StreamEventType.SEND_SHUTDOWN_COMPLETE, timeout)


class Connection:
    """A connection handle: ``await quicsim.connect(...)`` or a listener's connection.

    It wraps a :class:`~quicsim.core.ConnectionCore` (``.core``), owns the ledger and the
    transport's driver, and adds the ``wait_*`` coroutines.
    """

    def __init__(self, quic: Any, *, settings: Settings | None = None, handler: ConnectionHandler | None = None,
                 context: Any = None, ledger: Ledger | None = None, label: str = "",
                 observers: tuple[Observer, ...] = (), seed: int = 0) -> None:
        self.ledger = ledger if ledger is not None else Ledger()
        self.core = ConnectionCore(quic, settings=settings, handler=cast("_CoreConnectionHandler | None", handler),
                                   context=context,
                                   observers=[self.ledger, *observers], label=label)
        self.core.owner = self
        #: Settings.preempt: the chance that the worker runs after an API call
        self.preempt = self.core.settings.preempt
        #: Settings.preempt_window_ms, in seconds: the longest network window drawn
        self.preempt_window = self.core.settings.preempt_window_ms / 1000.0
        # One schedule per seed and connection, whatever else the run draws.
        self._preempt_rng = random.Random(f"quicsim-preempt:{seed}:{self.core.label}")
        self.core.wrap_stream = Stream
        self._waiters = _Waiters()
        self.core.event_hook = self._fire
        self.driver: ConnectionDriver | None = None
        self._handle_closed = False

    def __repr__(self) -> str:
        return repr(self.core)

    def preemption_point(self, stream: StreamCore | None, call: str) -> None:
        """After an API call on the loop thread, outside callbacks: with probability
        ``preempt`` the worker runs now, as MsQuic's worker thread may run between two of
        the application's statements; with ``preempt_window_ms`` the network runs too
        (:mod:`quicsim.transport.window`). Calls inside callbacks already are on the
        worker, calls from other threads race for real: neither draws."""
        core = self.core
        driver = self.driver
        if core.callback_depth or not core.on_worker_thread() or driver is None:
            return
        rng = self._preempt_rng
        if rng.random() >= self.preempt:
            return
        if self.preempt_window:
            seconds = rng.uniform(0.0, self.preempt_window)
            if driver.has_network_window:
                # QuicConnDrainOperations: one connection's operation queue holds received
                # packets (FLUSH_RECV) and expired timers (TIMER_EXPIRED) as well as API calls,
                # drained in the order they came: the window runs them in that order, the
                # pass that applies the queued calls among them (scheduled when queued).
                core.observe_preempted(stream, call)
                let_through = driver.let_network_in(seconds)
                core.observe_window(stream, call, seconds, let_through)
                return
        if not core.ops:  # (no window on this loop, UDP: the queued calls only)
            return
        core.observe_preempted(stream, call)
        driver.run_worker()

    def _fire(self, event: ev.ConnectionEvent) -> None:
        if self._waiters:
            self._waiters.fire(event)

    # MsQuic's calls.
    def open_stream(self, flags: StreamOpenFlags = StreamOpenFlags.NONE, handler: StreamHandler | None = None,
                    context: Any = None) -> Stream:
        """StreamOpen. Raises :class:`~quicsim.StatusError` where MsQuic returns a failure."""
        return cast(Stream, self.core.open_stream(flags, cast("_CoreStreamHandler | None", handler), context).owner)

    def shutdown(self, flags: ConnectionShutdownFlags = ConnectionShutdownFlags.NONE,
                 error_code: int = 0) -> Status:
        """ConnectionShutdown: queued ahead of every operation already queued."""
        status = self.core.shutdown(flags, error_code)
        if self.preempt:
            self.preemption_point(None, "connection_shutdown")
        return status

    def send_datagram(self, data: Buffer, client_context: Any = None) -> Status:
        """ConnectionSendDatagram: PENDING, then DATAGRAM_SEND_STATE_CHANGED events ending
        in exactly one final state."""
        return self.core.send_datagram(data, client_context)

    def set_handler(self, handler: ConnectionHandler | None, context: Any = None) -> None:
        """SetCallbackHandler for the connection: ``handler(conn, event)``."""
        self.core.set_handler(cast("_CoreConnectionHandler | None", handler), context)

    def close(self) -> None:
        """ConnectionClose: shut down silently if still up, with the connection's
        SHUTDOWN_COMPLETE (app_close_in_progress) before it returns, then release the
        socket. Streams keep their handles: their calls and events go on until each
        stream's own StreamClose (as in MsQuic, where a stream holds its connection)."""
        core = self.core
        if self._handle_closed:
            return
        if not core.on_worker_thread():
            core.run_on_worker(self.close)  # ConnectionClose blocks until the worker ran it
            return
        self._handle_closed = True
        core.close()
        if self.driver is not None:
            self.driver.run_events()  # what aioquic still held: nothing reaches the handler now
            self.driver.release()

    def leftover_streams(self) -> list[StreamCore]:
        """Stream handles a teardown closes before ConnectionClose: the never-started ones
        (ConnectionClose ends every started stream itself)."""
        return list(self.core.unstarted)

    # What an application may read.
    label = _Read[str]('label')
    settings = _Read[Settings]('settings')
    context = _Read[Any]('context')
    is_client = _Read[bool]('is_client')
    negotiated_alpn = _Read[str | None]('negotiated_alpn')
    connected = _Read[bool]('connected', state=True)
    shutdown_initiated = _Read[bool]('shutdown_initiated', state=True)
    closed_locally = _Read[bool]('closed_locally', state=True)
    closed_remotely = _Read[bool]('closed_remotely', state=True)
    shutdown_complete = _Read[bool]('shutdown_complete', state=True)
    handle_closed = _Read[bool]('handle_closed', state=True)
    handler_errors = _Read[list[BaseException]]('handler_errors',
                                                doc="Exceptions raised by this connection's handlers (recorded, "
                                                    "never propagated).")

    # Awaitables.
    async def wait_event(self, event_type: ConnectionEventType | None = None,
                         timeout: float | None = None) -> ev.AnyConnectionEvent:
        """The next connection event of ``event_type`` (any type when None)."""
        return cast(ev.AnyConnectionEvent, await wait_or_time_out(self._waiters.add(event_type), timeout,
                           lambda: f"{_type_name(event_type)} on {self!r}"))

    async def wait_connected(self, timeout: float | None = None) -> None:
        if self.connected:
            return
        if self.shutdown_complete:
            raise ConnectionError(f"{self.label}: connection closed before the handshake completed")
        waiter = self._waiters.add(None)
        while not self.connected:
            event = await wait_or_time_out(waiter, timeout, lambda: f"CONNECTED on {self!r}")
            if event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
                raise ConnectionError(self._failure_text())
            waiter = self._waiters.add(None) if not self.connected else waiter

    async def wait_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once the connection's SHUTDOWN_COMPLETE was delivered."""
        if self.shutdown_complete:
            return
        await self.wait_event(ConnectionEventType.SHUTDOWN_COMPLETE, timeout)

    def _failure_text(self) -> str:
        close = aioquic_adapter.close_event(self.core.quic)
        reason = f": {close.reason_phrase} (error 0x{close.error_code:x})" if close else ""
        hint = ""
        if close is not None and 0x100 <= close.error_code <= 0x1FF:
            hint = f" (TLS handshake failed: {tls_hint(close.error_code - 0x100, close.reason_phrase)})"
        return f"{self.label}: connection failed{reason}{hint}"


def _quic_configuration(settings: Settings, *, is_client: bool, alpn: str) -> QuicConfiguration:
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[alpn],
        idle_timeout=settings.idle_timeout_ms / 1000.0,
        max_data=settings.conn_flow_control_window,
        max_stream_data=settings.stream_recv_window_default,
        initial_rtt=settings.initial_rtt_ms / 1000.0,
        max_datagram_frame_size=65535 if settings.datagram_receive_enabled else None,
    )


async def connect(
    host: str,
    port: int,
    *,
    handler: ConnectionHandler | None = None,
    settings: Settings | None = None,
    ledger: Ledger | None = None,
    context: Any = None,
    ca_file: str | None = None,
    server_name: str = "localhost",
    alpn: str = DEFAULT_ALPN,
    label: str = "client",
    observers: tuple[Observer, ...] = (),
    link: "_memory.MemoryLink | None" = None,
    quic_logger: QuicLogger | None = None,
    seed: int = 0,
) -> Connection:
    """ConnectionOpen + ConnectionStart over loopback UDP (or ``link``, an in-memory
    link); returns once CONNECTED.

    The server certificate is verified against the project's test CA unless ``ca_file``
    names another. ``seed`` draws the preemption schedule (``Settings.preempt``).
    Raises ConnectionError if the handshake fails or times out.
    """
    settings = settings or Settings()
    if ca_file is not None and not os.path.isfile(ca_file):
        # aioquic would read it only mid-handshake and then time out: say it now
        raise FileNotFoundError(f"ca_file {ca_file}: no such file")
    configuration = _quic_configuration(settings, is_client=True, alpn=alpn)
    configuration.quic_logger = quic_logger
    configuration.server_name = server_name
    configuration.load_verify_locations(cafile=str(ca_file or _certs.default_paths().ca))
    holder: list[Connection] = []

    def attach(driver: ConnectionDriver) -> None:
        conn = Connection(driver.quic, settings=settings, handler=handler, context=context,
                          ledger=ledger, label=label, observers=observers, seed=seed)
        conn.driver = driver
        driver.attach(conn.core)
        holder.append(conn)

    if link is not None:
        await _memory.open_client(link, configuration, attach)
    else:
        await open_client(host, port, configuration, attach)
    conn = holder[0]
    return await connected(conn, settings, label, host, port)


class Listener:
    """A listening UDP socket on loopback; each accepted connection is a ``Connection``."""

    def __init__(self, handler: ConnectionHandler | None, settings: Settings, ledger: Ledger, label: str,
                 observers: tuple[Observer, ...], seed: int = 0) -> None:
        self.handler = handler
        self.seed = seed
        self.settings = settings
        self.ledger = ledger
        self.label = label
        self.observers = observers
        #: live connections, the handshakes in progress included
        self.connections: list[Connection] = []
        self._count = 0
        self._server: Any = None
        self._accepted = AcceptBacklog()
        self.port = 0
        self.host = ""

    def _attach(self, driver: ConnectionDriver) -> None:
        self._count += 1
        n = self._count
        conn = Connection(driver.quic, settings=self.settings, handler=self._on_event, ledger=self.ledger,
                          label=f"{self.label}#{n}" if n > 1 else self.label, observers=self.observers,
                          seed=self.seed)
        conn.driver = driver
        driver.attach(conn.core)
        self.connections.append(conn)
        half_open = [c for c in self.connections if not c.connected]
        if len(half_open) > MAX_HALF_OPEN:
            # A flood of Initials (or garbage that parses as one) must not grow without
            # bound: give up on the oldest handshake still in progress.
            half_open[0].close()
            self._forget(half_open[0])

    def _forget(self, conn: Connection) -> None:
        try:
            self.connections.remove(conn)
        except ValueError:
            pass

    def _on_event(self, conn: Connection, event: ev.AnyConnectionEvent) -> None:
        if event.type is ConnectionEventType.CONNECTED:
            self._accepted.put(conn)
        if self.handler is not None:
            self.handler(conn, event)
        if event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
            self._forget(conn)  # the listener keeps live connections only
            self._accepted.finished(conn)

    async def accept(self, timeout: float | None = None) -> Connection:
        """The next connection whose handshake completed."""
        return cast(Connection, await self._accepted.get(timeout))

    def close(self) -> None:
        """Stop listening; connections still open are closed silently."""
        for conn in list(self.connections):
            conn.close()
        self._accepted.clear()
        if self._server is not None:
            aioquic_adapter.server_transport(self._server).close()
            self._server = None

    async def __aenter__(self) -> "Listener":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def listen(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handler: ConnectionHandler | None = None,
    settings: Settings | None = None,
    ledger: Ledger | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    alpn: str = DEFAULT_ALPN,
    label: str = "server",
    observers: tuple[Observer, ...] = (),
    link: "_memory.MemoryLink | None" = None,
    quic_logger: QuicLogger | None = None,
    seed: int = 0,
) -> Listener:
    """ListenerOpen + ListenerStart on loopback; ``handler(conn, event)`` gets every
    connection event of every accepted connection (CONNECTED, PEER_STREAM_STARTED, ...)."""
    settings = settings or Settings()
    paths = _certs.default_paths()
    configuration = _quic_configuration(settings, is_client=False, alpn=alpn)
    configuration.quic_logger = quic_logger
    configuration.load_cert_chain(str(cert_file or paths.cert), str(key_file or paths.key))
    listener = Listener(handler, settings, ledger if ledger is not None else Ledger(), label, observers, seed)
    if link is not None:
        listener._server = await _memory.open_server(link, configuration, listener._attach)
    else:
        listener._server = await open_server(host, port, configuration, listener._attach)
    sockname = aioquic_adapter.server_transport(listener._server).get_extra_info("sockname")
    listener.host, listener.port = sockname[0], sockname[1]
    return listener

"""Connections and listeners of the msquic backend: quicsim's Connection and Listener API
over real MsQuic handles, and ``connect`` / ``listen`` that make them.

Handlers run on MsQuic's worker threads; ``wait_*`` and ``accept`` are awaited on the
asyncio loop the connection was made on. Observers (the ledger, tracers) are told of
every call and event in the order they happened (see :mod:`.bridge`).
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
from typing import Any, Callable, cast

from ...observer import tell
from ...api import AcceptBacklog, connected, wait_or_time_out
from ...core.connection import StatusError
from ...core.rules import flag_value
from ...enums import ConnectionEventType, ConnectionShutdownFlags, MAX_VARINT, Status, StreamOpenFlags
from ...ledger import Ledger
from ...settings import Settings
from . import bindings as b
from . import bridge, event_map
from .bridge import ORDER
from .runtime import Runtime, check_settings
from .stream import MsQuicStream, _status, stream_id

_C = ConnectionEventType
_ENDING = (_C.SHUTDOWN_INITIATED_BY_TRANSPORT, _C.SHUTDOWN_INITIATED_BY_PEER, _C.SHUTDOWN_COMPLETE)


class MsQuicConnection:
    """A connection handle over a real MsQuic connection (``await connect(...)`` or a
    listener's)."""

    #: the simulator's connections carry aioquic's state here; observers find none
    quic = None
    #: the simulator's core-rule errors; the library has none to report
    state_errors: tuple[str, ...] = ()

    def __init__(self, runtime: Runtime, *, settings: Settings, handler: Callable[..., Any] | None, context: Any,
                 ledger: Ledger | None, label: str, observers: tuple[Any, ...], is_client: bool,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.runtime = runtime
        self.api = runtime.api
        self.settings = settings
        self.handler = handler
        self.context = context
        self.ledger = ledger if ledger is not None else Ledger()
        self.observers: list[Any] = [self.ledger, *observers]
        #: observers that raised and watch no more: (observer, what it raised, as text)
        self.observer_errors: list[tuple[Any, Exception, str]] = []
        self.label = label
        self.is_client = is_client
        self.loop = loop
        self.h = b.HQUIC()
        self.connected = False
        self.shutdown_initiated = False
        self.closed_locally = False
        self.closed_remotely = False
        self.shutdown_complete = False
        self.handle_closed = False
        self.negotiated_alpn: str | None = None
        self.handler_errors: list[BaseException] = []
        #: local streams opened and not started; started streams (by handle) not shut down yet
        self.unstarted: dict[MsQuicStream, None] = {}
        self.streams: dict[int, MsQuicStream] = {}
        #: every stream handle not closed yet (the teardown closes them)
        self.open_handles: dict[MsQuicStream, None] = {}
        self._send_ids = itertools.count(1)
        self._stream_handles = itertools.count(1)
        self._datagrams: dict[int, tuple[Any, int, b.Buffers]] = {}
        self._datagram_ids = itertools.count(1)
        self._close_reason: tuple[Any, int] | None = None
        self._delivered: set[ConnectionEventType] = set()
        self._waiters = bridge.Waiters(loop)
        self.key = bridge.register(self)

    @property
    def core(self) -> "MsQuicConnection":
        return self

    @property
    def owner(self) -> "MsQuicConnection":
        return self

    def __repr__(self) -> str:
        return f"<msquic connection {self.label}>"

    def next_send_id(self) -> int:
        return next(self._send_ids)

    def next_stream_handle(self) -> int:
        return next(self._stream_handles)

    # ------------------------------------------------------------------ observers

    def tell(self, hook: str, *args: Any) -> None:
        """Tell every observer, guarded: one that raises watches no more (observer_failed)."""
        tell(self, self.label, hook, *args)

    def observe_call(self, stream: MsQuicStream | None, name: str, status: Any, args: dict[str, Any]) -> None:
        with ORDER:
            self.tell("api_call", self, stream, name, status, args)

    def observe_send(self, stream: MsQuicStream, send_id: int, status: Status, length: int, flags: int,
                     client_context: Any) -> None:
        self.tell("send_call", self, stream, send_id, status, length, flags, client_context)

    def observe_teardown(self) -> None:
        """The application's part is over: the observers judge what it left."""
        with ORDER:
            self.tell("teardown")

    # ------------------------------------------------------------------ stream bookkeeping

    def stream_started(self, stream: MsQuicStream, ok: bool) -> None:
        self.unstarted.pop(stream, None)
        if ok:
            self.streams[stream.handle] = stream

    def stream_done(self, stream: MsQuicStream) -> None:
        self.unstarted.pop(stream, None)
        self.streams.pop(stream.handle, None)

    def stream_closed(self, stream: MsQuicStream) -> None:
        self.stream_done(stream)
        self.open_handles.pop(stream, None)

    # ------------------------------------------------------------------ MsQuic's calls

    def open_stream(self, flags: StreamOpenFlags = StreamOpenFlags.NONE, handler: Callable[..., Any] | None = None,
                    context: Any = None) -> MsQuicStream:
        """StreamOpen. Raises :class:`~quicsim.StatusError` where the library fails it."""
        iflags = flag_value(flags, StreamOpenFlags)
        handle = b.HQUIC()
        if self.handle_closed or iflags < 0:
            status = Status.INVALID_STATE if self.handle_closed else Status.INVALID_PARAMETER
        else:
            stream = MsQuicStream(self, handle, flags=StreamOpenFlags(iflags), is_local=True, handler=handler,
                                  context=context)
            status = _status(self.api.StreamOpen(self.h, iflags, bridge.stream_callback, stream.key,
                                                 ctypes.byref(handle)))
            if not status.failed:
                self.unstarted[stream] = None
                self.open_handles[stream] = None
                self.observe_call(stream, "open_stream", Status.SUCCESS, {"flags": iflags})
                return stream
            bridge.unregister(stream.key)
        self.observe_call(None, "open_stream", status, {"flags": iflags})
        raise StatusError(status, f"StreamOpen failed: {status.name}")

    def shutdown(self, flags: ConnectionShutdownFlags = ConnectionShutdownFlags.NONE, error_code: int = 0) -> Status:
        """ConnectionShutdown (the library's call returns nothing: PENDING once made)."""
        iflags = flag_value(flags, ConnectionShutdownFlags)
        args = {"flags": iflags, "error_code": error_code}
        if self.handle_closed:
            status = Status.INVALID_STATE
        elif iflags < 0 or not isinstance(error_code, int) or not 0 <= error_code <= MAX_VARINT:
            status = Status.INVALID_PARAMETER
        else:
            with ORDER:
                call = bridge.begin_call(lambda s: self.observe_call(None, "connection_shutdown", s, args),
                                         Status.PENDING)
                self.api.ConnectionShutdown(self.h, iflags, error_code)
                bridge.end_call(call, Status.PENDING)
            # (the library raises no SHUTDOWN_INITIATED event for the application's own)
            self.shutdown_initiated = True
            if not self.closed_remotely:
                self.closed_locally = True
            return Status.PENDING
        self.observe_call(None, "connection_shutdown", status, args)
        return status

    def send_datagram(self, data: Any, client_context: Any = None) -> Status:
        """DatagramSend: PENDING, then DATAGRAM_SEND_STATE_CHANGED events."""
        payload = bytes(data)
        datagram_id = next(self._datagram_ids)
        if self.handle_closed:
            return Status.INVALID_STATE
        buffers = b.Buffers([payload])
        key = bridge.new_key()
        self._datagrams[key] = (client_context, datagram_id, buffers)
        with ORDER:
            status = _status(self.api.DatagramSend(self.h, buffers.array, buffers.count, 0, key))
            if status.failed:
                del self._datagrams[key]
            self.tell("api_call", self, None, "send_datagram", status,
                      {"datagram_id": datagram_id if not status.failed else None,
                       "bytes": len(payload), "client_context": client_context})
        return status

    def set_handler(self, handler: Callable[..., Any] | None, context: Any = None) -> None:
        """SetCallbackHandler for the connection: ``handler(conn, event)``."""
        self.handler = handler
        self.context = context

    def close(self) -> None:
        """ConnectionClose: blocks until the library shut the connection down (silently
        if it was up). Stream handles stay valid until their own StreamClose."""
        if self.handle_closed:
            return
        if self.h:
            self.api.ConnectionClose(self.h)  # blocking: outside ORDER (see bridge)
        self.handle_closed = True
        bridge.unregister(self.key)
        self.observe_call(None, "connection_close", None, {})

    # ------------------------------------------------------------------ events

    def _peer_stream(self, handle: int, flags: int) -> MsQuicStream:
        h = b.HQUIC(handle)
        stream = MsQuicStream(self, h, flags=StreamOpenFlags(flags & 1), is_local=False, handler=None,
                              context=None)
        self.api.SetCallbackHandler(h, ctypes.cast(bridge.stream_callback, ctypes.c_void_p), stream.key)
        stream.id = stream_id(self.api, h)
        self.streams[stream.handle] = stream
        self.open_handles[stream] = None
        return stream

    def _datagram_of(self, client_context: int) -> tuple[Any, int]:
        sent = self._datagrams.get(client_context)
        if sent is None:
            return f"<unknown datagram 0x{client_context:x}>", 0
        return sent[0], sent[1]

    def on_event(self, event: b.QUIC_CONNECTION_EVENT) -> int:
        """A QUIC_CONNECTION_EVENT from the library (on its thread)."""
        qev = event_map.connection_event(event, self._peer_stream, self._datagram_of)
        if qev is None:
            return 0
        t = qev.type
        if t is _C.CONNECTED:
            self.connected = True
            self.negotiated_alpn = qev.negotiated_alpn
        elif t in _ENDING:
            self.shutdown_initiated = True
            if t is _C.SHUTDOWN_INITIATED_BY_PEER:
                self.closed_remotely = True
                self._close_reason = ("closed by the peer", qev.error_code)
            elif t is _C.SHUTDOWN_INITIATED_BY_TRANSPORT:
                self._close_reason = (qev.status, qev.error_code)
            else:
                self.shutdown_complete = True
        elif t is _C.DATAGRAM_SEND_STATE_CHANGED and qev.state >= 3:  # QUIC_DATAGRAM_SEND_STATE_IS_FINAL
            self._datagrams.pop(event.DATAGRAM_SEND_STATE_CHANGED.ClientContext or 0, None)
        with ORDER:
            bridge.flush_calls()
            self.tell("connection_event", self, qev)
        if self.handler is not None:
            bridge.run_handler(self.handler, self, qev, self.handler_errors)
        if t is _C.CONNECTED or t is _C.SHUTDOWN_COMPLETE:
            self._delivered.add(t)
        self._waiters.fire(qev)
        return 0

    def callback_failed(self, exc: BaseException) -> None:
        self.handler_errors.append(exc)

    # ------------------------------------------------------------------ awaitables

    async def wait_event(self, event_type: ConnectionEventType | None = None, timeout: float | None = None) -> Any:
        """The next connection event of ``event_type`` (any type when None)."""
        future = self._waiters.add(event_type)
        assert future is not None
        return await wait_or_time_out(future, timeout,
                                      lambda: f"{event_type.name if event_type else 'any event'} on {self!r}")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once CONNECTED was delivered; ConnectionError if the connection ended first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while _C.CONNECTED not in self._delivered:
            if _C.SHUTDOWN_COMPLETE in self._delivered:
                raise ConnectionError(self.failure_text())
            future = self._waiters.add(None, lambda: bool(self._delivered))
            if future is not None:
                left = None if deadline is None else max(0.0, deadline - loop.time())
                await wait_or_time_out(future, left, lambda: f"CONNECTED on {self!r}")

    async def wait_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once the connection's SHUTDOWN_COMPLETE was delivered."""
        future = self._waiters.add(_C.SHUTDOWN_COMPLETE,
                                   lambda: _C.SHUTDOWN_COMPLETE in self._delivered or self.handle_closed)
        if future is not None:
            await wait_or_time_out(future, timeout, lambda: f"SHUTDOWN_COMPLETE on {self!r}")

    def failure_text(self) -> str:
        reason = ""
        if self._close_reason is not None:
            what, code = self._close_reason
            reason = f": {what.name if isinstance(what, Status) else what} (error 0x{code:x})"
        return f"{self.label}: connection failed{reason}"

    # ------------------------------------------------------------------ the runner's view

    def leftover_streams(self) -> list[MsQuicStream]:
        """Stream handles the teardown closes before ConnectionClose: every one still open
        (the library keeps a stream until its StreamClose)."""
        return list(self.open_handles)


class MsQuicListener:
    """A listener on loopback; each accepted connection is an :class:`MsQuicConnection`."""

    def __init__(self, runtime: Runtime, handler: Callable[..., Any] | None, settings: Settings, ledger: Ledger,
                 label: str, observers: tuple[Any, ...], configuration: b.HQUIC,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.runtime = runtime
        self.handler = handler
        self.settings = settings
        self.ledger = ledger
        self.label = label
        self.observers = observers
        self.configuration = configuration
        self.loop = loop
        #: connections whose handle is still open (the listener closes them at its close)
        self.connections: list[MsQuicConnection] = []
        self._pruned_at = 0
        self._accepted = AcceptBacklog()
        self._count = 0
        self.h = b.HQUIC()
        self.host = ""
        self.port = 0
        self.key = bridge.register(self)

    def on_event(self, event: b.QUIC_LISTENER_EVENT) -> int:
        if event.Type != b.ListenerEventType.NEW_CONNECTION:
            return 0
        api = self.runtime.api
        self._count += 1
        n = self._count
        conn = MsQuicConnection(self.runtime, settings=self.settings, handler=self._on_connection_event, context=None,
                                ledger=self.ledger, label=f"{self.label}#{n}" if n > 1 else self.label,
                                observers=self.observers, is_client=False, loop=self.loop)
        conn.h = b.HQUIC(event.NEW_CONNECTION.Connection)
        api.SetCallbackHandler(conn.h, ctypes.cast(bridge.connection_callback, ctypes.c_void_p), conn.key)
        status = api.ConnectionSetConfiguration(conn.h, self.configuration)
        if b.status_failed(status):
            bridge.unregister(conn.key)
            return int(status)  # the library refuses and closes the connection itself
        self.connections.append(conn)
        if len(self.connections) >= 2 * self._pruned_at + 64:
            # Forget the handles the application closed (amortized O(1) per connection):
            # a long-lived listener keeps what is open only.
            self.connections = [c for c in self.connections if not c.handle_closed]
            self._pruned_at = len(self.connections)
        return 0

    def _on_connection_event(self, conn: MsQuicConnection, event: Any) -> None:
        if event.type is _C.CONNECTED:
            try:
                self.loop.call_soon_threadsafe(self._accepted.put, conn)
            except RuntimeError:
                pass
        elif event.type is _C.SHUTDOWN_COMPLETE:
            try:
                self.loop.call_soon_threadsafe(self._accepted.finished, conn)
            except RuntimeError:
                pass
        if self.handler is not None:
            self.handler(conn, event)

    def callback_failed(self, exc: BaseException) -> None:
        pass  # a listener has no handler of the application's to blame

    async def accept(self, timeout: float | None = None) -> MsQuicConnection:
        """The next connection whose handshake completed."""
        return cast(MsQuicConnection, await self._accepted.get(timeout))

    def close(self) -> None:
        """ListenerClose (blocking), after closing the connections still open silently."""
        for conn in list(self.connections):
            for stream in conn.leftover_streams():
                stream.close()
            conn.close()
        self._accepted.clear()
        if self.h:
            self.runtime.api.ListenerClose(self.h)
            self.h = b.HQUIC()
            bridge.unregister(self.key)

    async def __aenter__(self) -> "MsQuicListener":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def listen(host: str = "127.0.0.1", port: int = 0, *, handler: Callable[..., Any] | None = None,
                 settings: Settings | None = None, ledger: Ledger | None = None, cert_file: str | None = None,
                 key_file: str | None = None, alpn: str = "quicsim", label: str = "server",
                 observers: tuple[Any, ...] = (), msquic_lib: str | None = None) -> MsQuicListener:
    """ListenerOpen + ListenerStart on loopback with the real library."""
    settings = settings or Settings()
    check_settings(settings, "server")
    runtime = Runtime.get(msquic_lib)
    configuration = runtime.configuration(settings, is_client=False, alpn=alpn, cert_file=cert_file,
                                          key_file=key_file)
    listener = MsQuicListener(runtime, handler, settings, ledger if ledger is not None else Ledger(), label,
                              observers, configuration, asyncio.get_running_loop())
    api = runtime.api
    b.check(api.ListenerOpen(runtime.registration, bridge.listener_callback, listener.key, ctypes.byref(listener.h)),
            "ListenerOpen")
    alpns = b.alpn_buffers(alpn)
    address = b.QUIC_ADDR.ipv4(host, port)
    try:
        b.check(api.ListenerStart(listener.h, alpns.array, alpns.count, ctypes.byref(address)), "ListenerStart")
        bound = b.QUIC_ADDR()
        length = ctypes.c_uint32(ctypes.sizeof(bound))
        b.check(api.GetParam(listener.h, b.QUIC_PARAM_LISTENER_LOCAL_ADDRESS, ctypes.byref(length),
                             ctypes.byref(bound)), "GetParam(LISTENER_LOCAL_ADDRESS)")
    except b.MsQuicError:
        listener.close()
        raise
    listener.host, listener.port = host, bound.port
    return listener


async def connect(host: str, port: int, *, handler: Callable[..., Any] | None = None, settings: Settings | None = None,
                  ledger: Ledger | None = None, context: Any = None, ca_file: str | None = None,
                  server_name: str = "localhost", alpn: str = "quicsim", label: str = "client",
                  observers: tuple[Any, ...] = (), msquic_lib: str | None = None) -> MsQuicConnection:
    """ConnectionOpen + ConnectionStart with the real library; returns once CONNECTED.
    The server's certificate is checked against quicsim's test CA unless ``ca_file``
    names another. Raises ConnectionError if the handshake fails or times out."""
    settings = settings or Settings()
    check_settings(settings, "client")
    runtime = Runtime.get(msquic_lib)
    configuration = runtime.configuration(settings, is_client=True, alpn=alpn, ca_file=ca_file)
    conn = MsQuicConnection(runtime, settings=settings, handler=handler, context=context, ledger=ledger, label=label,
                            observers=observers, is_client=True, loop=asyncio.get_running_loop())
    api = runtime.api
    try:
        b.check(api.ConnectionOpen(runtime.registration, bridge.connection_callback, conn.key, ctypes.byref(conn.h)),
                "ConnectionOpen")
        # The address to reach, so that server_name is only the TLS name (SNI).
        address = b.QUIC_ADDR.ipv4(host, port)
        b.check(api.SetParam(conn.h, b.QUIC_PARAM_CONN_REMOTE_ADDRESS, ctypes.sizeof(address),
                             ctypes.byref(address)), "SetParam(CONN_REMOTE_ADDRESS)")
        b.check(api.ConnectionStart(conn.h, configuration, b.AddressFamily.INET, server_name.encode(), port),
                "ConnectionStart")
    except b.MsQuicError as exc:
        conn.close()
        raise ConnectionError(f"{label}: {exc}") from None
    return await connected(conn, settings, label, host, port)

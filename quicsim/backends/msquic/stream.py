"""A stream of the msquic backend: quicsim's Stream API over a real MsQuic stream handle.

Calls return what the library returned; events are quicsim's event objects, delivered
to the handler on MsQuic's worker thread. Each send's buffers are copied into memory
kept until its SEND_COMPLETE (a completion the library loses keeps it: the ledger reports
the send, nothing crashes). After StreamClose the handle is gone: a later call returns
INVALID_STATE here, where the library itself would touch freed memory.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable

from ...api import wait_or_time_out
from ...core.rules import flag_value
from ...core.send_queue import normalize_buffers
from ...enums import (MAX_SEND_LENGTH, SendFlags, Status, StreamEventType, StreamOpenFlags, StreamShutdownFlags,
                      StreamStartFlags)
from . import bindings as b
from . import bridge, event_map
from .bridge import ORDER

if TYPE_CHECKING:
    from .connection import MsQuicConnection

_S = StreamEventType
_GRACEFUL_INLINE = StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE
#: events a handle may be waited on once delivered (the wait then returns at once)
_ONCE = (_S.SHUTDOWN_COMPLETE, _S.SEND_SHUTDOWN_COMPLETE, _S.START_COMPLETE)


def _status(raw: int) -> Status:
    value = b.status_value(raw)
    try:
        return Status(value)
    except ValueError:
        return Status.INTERNAL_ERROR


class MsQuicStream:
    """A stream handle (``conn.open_stream()``, or ``event.stream`` of PEER_STREAM_STARTED)."""

    def __init__(self, conn: "MsQuicConnection", handle: b.HQUIC, *, flags: StreamOpenFlags, is_local: bool,
                 handler: Callable[..., Any] | None, context: Any) -> None:
        self._conn = conn
        self._api = conn.api
        self.h = handle
        self.handle = conn.next_stream_handle()
        self.open_flags = flags
        self.is_local = is_local
        self.unidirectional = bool(flags & StreamOpenFlags.UNIDIRECTIONAL)
        self.handler = handler
        self.context = context
        self.id: int | None = None
        self.started = not is_local
        self.send_shutdown_indicated = False
        self.shutdown_complete = False
        self.handle_closed = False
        self._closing = False
        #: ClientContext value -> (client_context, send_id, buffers) of sends not yet completed
        self._sends: dict[int, tuple[Any, int, b.Buffers]] = {}
        self._delivered: set[StreamEventType] = set()
        self._waiters = bridge.Waiters(conn.loop)
        self.key = bridge.register(self)

    # The simulator's handles expose their core; here the handle is its own.
    @property
    def core(self) -> "MsQuicStream":
        return self

    @property
    def owner(self) -> "MsQuicStream":
        return self

    @property
    def connection(self) -> "MsQuicConnection":
        return self._conn

    def __repr__(self) -> str:
        where = f"id={self.id}" if self.id is not None else f"handle={self.handle}"
        return f"<msquic stream {self._conn.label} {where}>"

    # ------------------------------------------------------------------ MsQuic's calls

    def _call(self, name: str, fn: Callable[[], int], assumed: Status, **args: Any) -> Status:
        """A non-blocking call, made and reported under ORDER (see bridge)."""
        if self.handle_closed:
            status = Status.INVALID_STATE  # the library would use the freed handle
            self._conn.observe_call(self, name, status, args)
            return status
        with ORDER:
            call = bridge.begin_call(lambda s: self._conn.observe_call(self, name, s, args), assumed)
            status = _status(fn())
            bridge.end_call(call, status)
        return status

    def start(self, flags: StreamStartFlags = StreamStartFlags.NONE) -> Status:
        """StreamStart."""
        iflags = flag_value(flags, StreamStartFlags)
        if iflags < 0:
            return self._call("start", lambda: int(Status.INVALID_PARAMETER), Status.INVALID_PARAMETER, flags=iflags)
        return self._call("start", lambda: self._api.StreamStart(self.h, iflags), Status.PENDING, flags=iflags)

    def send(self, buffers: Any, flags: SendFlags = SendFlags.NONE, client_context: Any = None) -> Status:
        """StreamSend: PENDING when accepted (then exactly one SEND_COMPLETE should follow)."""
        conn = self._conn
        send_id = conn.next_send_id()
        iflags = flag_value(flags, SendFlags)
        normalized = normalize_buffers(buffers)
        length = normalized[1] if normalized is not None else 0
        if normalized is None or iflags < 0 or length > MAX_SEND_LENGTH or self.handle_closed:
            status = Status.INVALID_STATE if self.handle_closed else Status.INVALID_PARAMETER
            conn.observe_send(self, send_id, status, length, iflags, client_context)
            return status
        data = b.Buffers(normalized[0])
        key = bridge.new_key()
        self._sends[key] = (client_context, send_id, data)  # before the call: it may complete at once
        with ORDER:
            status = _status(self._api.StreamSend(self.h, data.array, data.count, iflags, key))
            if status.failed:
                del self._sends[key]
            conn.observe_send(self, send_id, status, length, iflags, client_context)
        return status

    def shutdown(self, flags: StreamShutdownFlags, error_code: int = 0) -> Status:
        """StreamShutdown: PENDING, or SUCCESS when INLINE is used inside a callback."""
        iflags = flag_value(flags, StreamShutdownFlags)
        if iflags < 0 or not isinstance(error_code, int) or error_code < 0 or error_code >= 1 << 64:
            return self._call("shutdown", lambda: int(Status.INVALID_PARAMETER), Status.INVALID_PARAMETER,
                              flags=iflags, error_code=error_code)
        inline = bool(iflags & StreamShutdownFlags.INLINE) and bridge.in_callback()
        return self._call("shutdown", lambda: self._api.StreamShutdown(self.h, iflags, error_code),
                          Status.SUCCESS if inline else Status.PENDING, flags=iflags, error_code=error_code)

    def receive_complete(self, length: int) -> Status:
        """StreamReceiveComplete (the library's call returns nothing: SUCCESS once made)."""
        if not isinstance(length, int) or length < 0:
            return Status.INVALID_PARAMETER
        return self._call("receive_complete", lambda: (self._api.StreamReceiveComplete(self.h, length), 0)[1],
                          Status.SUCCESS, length=length)

    def receive_set_enabled(self, enabled: bool) -> Status:
        """StreamReceiveSetEnabled."""
        return self._call("receive_set_enabled", lambda: self._api.StreamReceiveSetEnabled(self.h, bool(enabled)),
                          Status.PENDING, enabled=bool(enabled))

    def close(self) -> None:
        """StreamClose: blocks until the library has shut the stream down (aborting it if
        needed, its pending sends completing canceled). No event reaches the handler after."""
        if self.handle_closed or self._closing:
            # A second StreamClose of one handle (even from a callback its first close
            # raises) is undefined in MsQuic; quicsim's close of a closed handle does nothing.
            return
        self._closing = True
        self._api.StreamClose(self.h)  # blocking: outside ORDER (see bridge)
        self.handle_closed = True
        bridge.unregister(self.key)
        self._conn.stream_closed(self)
        with ORDER:
            bridge.flush_calls()
            self._conn.observe_call(self, "close", None, {})

    def set_handler(self, handler: Callable[..., Any] | None, context: Any = None) -> None:
        """SetCallbackHandler: route this stream's events to ``handler(stream, event)``."""
        self.handler = handler
        self.context = context

    # ------------------------------------------------------------------ events

    def _send_of(self, client_context: int) -> tuple[Any, int]:
        sent = self._sends.pop(client_context, None)
        if sent is None:
            return f"<unknown send 0x{client_context:x}>", 0
        return sent[0], sent[1]

    def on_event(self, event: b.QUIC_STREAM_EVENT) -> int:
        """A QUIC_STREAM_EVENT from the library (on its thread)."""
        conn = self._conn
        qev = event_map.stream_event(event, self._send_of)
        if qev is None:
            return 0
        t = qev.type
        if t is _S.START_COMPLETE:
            if qev.status is Status.SUCCESS:
                self.id = qev.id
                self.started = True
            conn.stream_started(self, qev.status is Status.SUCCESS)
        elif t is _S.SEND_SHUTDOWN_COMPLETE:
            self.send_shutdown_indicated = True
        elif t is _S.SHUTDOWN_COMPLETE:
            self.shutdown_complete = True  # (MsQuic sets HandleShutdown before indicating)
            conn.stream_done(self)
        with ORDER:
            bridge.flush_calls()
            conn.tell("stream_event", conn, self, qev)
        result = None
        if self.handler is not None:
            result = bridge.run_handler(self.handler, self, qev, conn.handler_errors)
        elif not self.is_local:
            self._default_peer_handler(qev)
        if t is _S.CANCEL_ON_LOSS:
            event.CANCEL_ON_LOSS.ErrorCode = int(qev.error_code)
        if t in _ONCE:
            self._delivered.add(t)
        self._waiters.fire(qev)
        if t is _S.RECEIVE:
            return bridge.callback_result(result)
        return 0

    def _default_peer_handler(self, event: Any) -> None:
        """A peer stream nobody handles: take every byte, finish our side once the peer
        finished (FIN or reset), and close the handle at SHUTDOWN_COMPLETE."""
        t = event.type
        if t is _S.PEER_SEND_SHUTDOWN or t is _S.PEER_SEND_ABORTED:
            bridge.run_handler(lambda s, e: s.shutdown(_GRACEFUL_INLINE), self, event, self._conn.handler_errors)
        elif t is _S.SHUTDOWN_COMPLETE:
            bridge.run_handler(lambda s, e: s.close(), self, event, self._conn.handler_errors)

    def callback_failed(self, exc: BaseException) -> None:
        self._conn.handler_errors.append(exc)

    # ------------------------------------------------------------------ awaitables

    async def wait_event(self, event_type: StreamEventType | None = None, timeout: float | None = None) -> Any:
        """The next event of ``event_type`` (any type when None) delivered to this stream."""
        future = self._waiters.add(event_type)
        assert future is not None
        return await wait_or_time_out(future, timeout,
                                      lambda: f"{event_type.name if event_type else 'any event'} on {self!r}")

    async def _wait_once(self, event_type: StreamEventType, timeout: float | None) -> None:
        future = self._waiters.add(event_type, lambda: event_type in self._delivered or self.handle_closed)
        if future is not None:
            await wait_or_time_out(future, timeout, lambda: f"{event_type.name} on {self!r}")

    async def wait_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once SHUTDOWN_COMPLETE was delivered (at once if it already was)."""
        await self._wait_once(_S.SHUTDOWN_COMPLETE, timeout)

    async def wait_send_shutdown_complete(self, timeout: float | None = None) -> None:
        """Return once SEND_SHUTDOWN_COMPLETE was delivered (at once if it already was)."""
        if _S.SHUTDOWN_COMPLETE in self._delivered:
            return
        await self._wait_once(_S.SEND_SHUTDOWN_COMPLETE, timeout)

    def pending_sends(self) -> int:
        """Sends accepted by the library whose SEND_COMPLETE has not come (yet)."""
        return len(self._sends)


def stream_id(api: Any, handle: b.HQUIC) -> int | None:
    """QUIC_PARAM_STREAM_ID (on the worker thread, inside a callback: inline)."""
    value = ctypes.c_uint64()
    length = ctypes.c_uint32(8)
    raw = api.GetParam(handle, b.QUIC_PARAM_STREAM_ID, ctypes.byref(length), ctypes.byref(value))
    return None if b.status_failed(raw) else int(value.value)

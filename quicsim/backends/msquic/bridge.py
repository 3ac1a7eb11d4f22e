"""Between MsQuic's threads and quicsim: the C callbacks, the order observers see, and
waiters on the asyncio loop.

MsQuic calls back on its worker threads (and inline, on the caller's thread, for some
calls made inside a callback). Three rules keep what observers (the ledger) see in the
order things happened:

- every API call that does not block is made and reported under :data:`ORDER`, and every
  event is reported under it too, so a send's report always precedes its SEND_COMPLETE
  (a worker that completes it at once waits for the report);
- an event raised inline by a call still in progress on the same thread (StreamShutdown
  INLINE, StreamStart from a callback) first reports that call (:func:`flush_calls`);
- blocking calls (StreamClose, ConnectionClose, ListenerClose, SetParam) are made
  outside :data:`ORDER`: the worker they wait for may need it. They are reported after.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any, Callable, cast

from . import bindings as b

#: Held while a non-blocking call is made and reported, and while an event is reported.
ORDER = threading.RLock()
_local = threading.local()

#: context value given to MsQuic -> the Python object its callbacks are for
_HANDLES: dict[int, Any] = {}
_keys = itertools.count(1)


def register(obj: Any) -> int:
    """A context value for ``obj``: MsQuic passes it back with every event."""
    key = next(_keys)
    _HANDLES[key] = obj
    return key


def unregister(key: int) -> None:
    """After the handle's Close returned: MsQuic calls back no more."""
    _HANDLES.pop(key, None)


def live_handles() -> int:
    return len(_HANDLES)


def new_key() -> int:
    """A unique ClientContext value for a send or a datagram."""
    return next(_keys)


class _Call:
    __slots__ = ("report", "assumed", "done")

    def __init__(self, report: Callable[[Any], None], assumed: Any) -> None:
        self.report = report
        self.assumed = assumed
        self.done = False


def begin_call(report: Callable[[Any], None], assumed: Any) -> _Call:
    """A call about to be made on this thread (under ORDER): ``report(status)`` runs once,
    with ``assumed`` if an inline event comes first, else with the status returned."""
    call = _Call(report, assumed)
    stack = getattr(_local, "calls", None)
    if stack is None:
        stack = _local.calls = []
    stack.append(call)
    return call


def end_call(call: _Call, status: Any) -> None:
    _local.calls.remove(call)
    if not call.done:
        call.done = True
        call.report(status)


def flush_calls() -> None:
    """Report the calls in progress on this thread (an inline event is being reported)."""
    stack = getattr(_local, "calls", None)
    if stack:
        for call in stack:
            if not call.done:
                call.done = True
                call.report(call.assumed)


def in_callback() -> bool:
    """This thread is inside one of quicsim's MsQuic callbacks (a handler runs)."""
    return bool(getattr(_local, "depth", 0))


def run_handler(handler: Callable[..., Any], handle: Any, event: Any, errors: list[BaseException]) -> Any:
    """A handler's call, counted as inside a callback; its exception is recorded and the
    callback returns normally (MsQuic must always get a status back)."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        return handler(handle, event)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a handler bug must not reach C
        errors.append(exc)
        return None
    finally:
        _local.depth -= 1


def callback_result(result: Any) -> int:
    """A handler's return value as the QUIC_STATUS the callback returns."""
    return b.status_c(result) if isinstance(result, int) and not isinstance(result, bool) else 0


def _dispatch(context: int | None, event: Any) -> int:
    obj = _HANDLES.get(context or 0)
    if obj is None:
        return 0
    try:
        return cast(int, obj.on_event(event.contents))
    except BaseException as exc:  # never into C: record it where the run reports errors
        try:
            obj.callback_failed(exc)
        except BaseException:
            pass
        return 0


@b.QUIC_STREAM_CALLBACK
def stream_callback(handle: int, context: int | None, event: Any) -> int:
    return _dispatch(context, event)


@b.QUIC_CONNECTION_CALLBACK
def connection_callback(handle: int, context: int | None, event: Any) -> int:
    return _dispatch(context, event)


@b.QUIC_LISTENER_CALLBACK
def listener_callback(handle: int, context: int | None, event: Any) -> int:
    return _dispatch(context, event)


class Waiters:
    """Futures on the loop waiting for a handle's next event of a type, fired from any
    thread. ``add`` checks ``done`` under the same lock ``fire`` takes, so a wait that
    starts while the event is being raised still sees it."""

    __slots__ = ("loop", "lock", "by_type")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.by_type: dict[Any, list[asyncio.Future[Any]]] = {}

    def add(self, event_type: Any, done: Callable[[], bool] | None = None) -> asyncio.Future[Any] | None:
        """A future for the next event of ``event_type`` (any when None); None when
        ``done()`` already holds."""
        with self.lock:
            if done is not None and done():
                return None
            future = self.loop.create_future()
            self.by_type.setdefault(event_type, []).append(future)
            return future

    def fire(self, event: Any) -> None:
        if not self.by_type:
            return
        with self.lock:
            futures = self.by_type.pop(event.type, []) + self.by_type.pop(None, [])
        if futures:
            try:
                self.loop.call_soon_threadsafe(_resolve, futures, event)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _resolve(futures: list[asyncio.Future[Any]], event: Any) -> None:
    for future in futures:
        if not future.done():
            future.set_result(event)

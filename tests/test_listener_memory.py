"""A long-lived listener gives back what finished connections held: the ledger keeps what
it needs to judge (counts, findings, per-stream books while the stream lives), never the
connections and streams themselves, and the accept backlog keeps a bounded number of
connections nobody accepted. The figures for 100,000 connections come from
``python -m bench.listener_memory``; these tests check the mechanism on a few."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

import quicsim
from quicsim import ConnectionEventType, Ledger, SendFlags, Status, StreamEventType, events as ev
from quicsim.api import MAX_HALF_OPEN, AcceptBacklog
from quicsim.core import ConnectionCore
from quicsim.settings import Settings

from .conftest import eventually, send_garbage_initials


class _Conn:
    """A connection as the ledger sees one (weakly referable, as the real ones are)."""

    def __init__(self, label: str = "c") -> None:
        self.label = label
        self.settings = Settings()


class _Stream:
    def __init__(self, stream_id: int | None = 0, handle: int = 1) -> None:
        self.id = stream_id
        self.handle = handle


def _send(ledger: Ledger, conn: _Conn, stream: _Stream, send_id: int) -> None:
    ledger.api_call(conn, stream, "send", Status.PENDING,
                    {"send_id": send_id, "bytes": 1, "flags": 0, "client_context": send_id})


def _start(ledger: Ledger, conn: _Conn, stream: _Stream) -> None:
    ledger.stream_event(conn, stream, ev.StartComplete(status=Status.SUCCESS, id=0, peer_accepted=True))


def _live(label: str) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects()
               if isinstance(obj, ConnectionCore) and obj.label.split("#")[0] == label)


# ------------------------------------------------------------ the ledger holds no object


def test_the_ledger_keeps_no_connection_or_stream_alive():
    ledger = Ledger()
    conn, stream = _Conn(), _Stream()
    _start(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context=1, send_id=1))
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    ledger.connection_event(conn, ev.ConnectionShutdownComplete(handshake_completed=True,
                                                                peer_acknowledged_shutdown=True,
                                                                app_close_in_progress=False))
    ledger.api_call(conn, stream, "close", None, {})
    conn_ref, stream_ref = weakref.ref(conn), weakref.ref(stream)
    del conn, stream
    _send(ledger, _Conn("other"), _Stream(4, 2), 2)  # the send path's cache moves to another stream
    gc.collect()
    assert conn_ref() is None and stream_ref() is None
    assert ledger.ok and ledger.report()["sends"] == 2 and ledger.report()["completions"] == 1


def test_a_stream_freed_with_a_send_pending_is_a_leak():
    """Once freed, nothing can complete its send: reported at once, with its last id."""
    ledger = Ledger()
    conn, stream = _Conn(), _Stream(stream_id=None)
    ledger.api_call(conn, stream, "open_stream", Status.SUCCESS, {})
    stream.id = 8  # assigned at StreamStart
    _start(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    _send(ledger, conn, _Stream(12, 3), 2)  # another stream takes the send path's cache
    del stream
    gc.collect()
    assert [(leak["stream_id"], leak["send"], leak["detected"]) for leak in ledger.leaks] == [
        (8, 1, "when its stream was freed, never completed")]
    assert ledger.pending == 1  # the other stream's send


def test_a_never_started_stream_freed_unclosed_is_judged_as_at_the_end():
    """MsQuic completes a never-started stream's sends only at StreamClose: freed without
    one, they are the leak ``judge_unclosed`` would have reported."""
    ledger = Ledger()
    conn, stream = _Conn(), _Stream(stream_id=None, handle=5)
    _send(ledger, conn, stream, 1)
    _send(ledger, conn, _Stream(12, 3), 2)
    del stream
    gc.collect()
    assert [(leak["stream_handle"], leak["detected"]) for leak in ledger.leaks] == [
        (5, "on a never-started stream whose handle was never closed")]


# ------------------------------------------------------------ the accept backlog


@pytest.mark.asyncio
async def test_the_accept_backlog_keeps_live_connections_and_the_newest_finished():
    backlog = AcceptBacklog()
    conns = [object() for _ in range(AcceptBacklog.MAX_FINISHED + 10)]
    for conn in conns:
        backlog.put(conn)
    live = conns[3]
    for conn in conns:
        if conn is not live:
            backlog.finished(conn)
    assert len(backlog) == AcceptBacklog.MAX_FINISHED + 1
    assert await backlog.get(0) is live  # the oldest still there: live ones are never dropped
    # 9 of the MAX_FINISHED + 9 finished ones were dropped, the oldest first (0..2, 4..9).
    assert await backlog.get(0) is conns[10]
    assert len(backlog) == AcceptBacklog.MAX_FINISHED - 1
    empty = AcceptBacklog()
    waiting = asyncio.ensure_future(empty.get(5))
    await asyncio.sleep(0)  # the accept is waiting now
    empty.put(live)
    assert await waiting is live and len(empty) == 0  # handed over, not queued
    with pytest.raises(asyncio.TimeoutError, match="no connection accepted within 0.01 s"):
        await empty.get(0.01)


@pytest.mark.asyncio
async def test_a_connection_that_finished_before_accept_is_still_accepted():
    ended = asyncio.get_running_loop().create_future()

    def on_event(conn, event):
        if event.type is ConnectionEventType.SHUTDOWN_COMPLETE and not ended.done():
            ended.set_result(conn)

    listener = await quicsim.listen(handler=on_event)
    try:
        client = await quicsim.connect("127.0.0.1", listener.port)
        client.shutdown()
        server = await asyncio.wait_for(ended, 10)
        assert await listener.accept(timeout=5) is server
        client.close()
    finally:
        listener.close()


# ------------------------------------------------------------ over UDP


@pytest.mark.asyncio
async def test_a_listener_serving_one_connection_after_another_frees_them():
    """Served with its handler alone, never accepting: what is left after 12 connections
    is what the backlog may keep, and nothing once the listener is closed."""

    def on_event(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(lambda stream, e: None)

    listener = await quicsim.listen(handler=on_event, label="served")
    try:
        for n in range(12):
            client = await quicsim.connect("127.0.0.1", listener.port)
            done = asyncio.get_running_loop().create_future()
            stream = client.open_stream(handler=lambda s, e, done=done: (
                e.type is StreamEventType.SEND_COMPLETE and not done.done() and done.set_result(e.canceled)))
            stream.start()
            stream.send(b"r" * 100, flags=SendFlags.FIN, client_context=n)
            assert await asyncio.wait_for(done, 10) is False
            client.shutdown()
            await client.wait_shutdown_complete(timeout=10)
            stream.close()
            client.close()
        assert listener.ledger.ok, listener.ledger.summary()
        assert listener.ledger.report()["completions"] == 0  # the client's sends, on its own ledger
        # Nobody accepted them: the backlog keeps the finished ones (12 <= MAX_FINISHED).
        assert len(listener._accepted) == 12
        assert _live("served") == 12
    finally:
        listener.close()
    assert _live("served") == 0


@pytest.mark.asyncio
async def test_garbage_initials_are_freed_once_given_up():
    listener = await quicsim.listen(label="junk")
    sent = MAX_HALF_OPEN + 40
    try:
        send_garbage_initials(listener.port, sent)
        await eventually(lambda: listener._count >= sent, "every Initial to reach the listener")
        # Only the handshakes still in progress are kept.
        assert _live("junk") <= MAX_HALF_OPEN
    finally:
        listener.close()
    assert _live("junk") == 0

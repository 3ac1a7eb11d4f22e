"""Rule 3: every cancellation path delivers canceled completions oldest first, then
SEND_SHUTDOWN_COMPLETE(graceful=False), then SHUTDOWN_COMPLETE."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import (
    ConnectionEventType,
    ConnectionShutdownFlags,
    Settings,
    SendFlags,
    Status,
    StatusError,
    StreamEventType,
    StreamShutdownFlags,
)

from .conftest import Recorder, close_pair, make_pair, round_trip

pytestmark = pytest.mark.asyncio

CHUNK = 64 * 1024
N = 40  # 2.5 MiB: far more than the peer's 1 MiB stream window, so most stay unacknowledged


def _assert_cancel_shape(rec: Recorder, n: int = N, graceful_done: bool = False) -> None:
    done = rec.completions()
    assert [c for c, _ in done] == list(range(n)), "completions in send order, each once"
    assert any(canceled for _, canceled in done), "some sends were still in flight"
    first_canceled = next(i for i, (_, canceled) in enumerate(done) if canceled)
    assert all(canceled for _, canceled in done[first_canceled:]), "acked ones first, then canceled"
    types = rec.types()
    last_send_complete = max(i for i, t in enumerate(types) if t == "SEND_COMPLETE")
    ssc = types.index("SEND_SHUTDOWN_COMPLETE")
    assert last_send_complete < ssc < types.index("SHUTDOWN_COMPLETE") == len(types) - 1
    assert rec.events[ssc].graceful is False


async def _loaded_stream(pair, rec):
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    for i in range(N):
        assert stream.send(bytes(CHUNK), client_context=i) is Status.PENDING
    # the first send acknowledged (a round trip): the rest are in flight or queued behind
    # the peer's 1 MiB window
    await stream.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
    return stream


@pytest.mark.parametrize("flags", [
    StreamShutdownFlags.ABORT_SEND,
    StreamShutdownFlags.ABORT,
    StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE,
])
async def test_local_abort(pair, flags):
    rec = Recorder()
    stream = await _loaded_stream(pair, rec)
    assert stream.shutdown(flags, error_code=9) is Status.PENDING
    if flags == StreamShutdownFlags.ABORT_SEND:
        # The receive side stays open until the peer resets its own side in response.
        pass
    await stream.wait_shutdown_complete(timeout=5)
    _assert_cancel_shape(rec)
    assert pair.client.ledger.ok, pair.client.ledger.summary()


async def test_immediate_completes_without_waiting_for_the_peer(pair):
    rec = Recorder()
    stream = await _loaded_stream(pair, rec)
    stream.shutdown(StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE, error_code=1)
    await asyncio.sleep(0)  # one worker pass, no network round trip
    assert stream.shutdown_complete
    _assert_cancel_shape(rec)


async def test_peer_stop_sending():
    def on_server_stream(stream, event):
        if event.type is StreamEventType.RECEIVE:
            stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE | StreamShutdownFlags.INLINE, 77)

    def server_handler(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(on_server_stream)

    pair = await make_pair(server_handler=server_handler)
    try:
        rec = Recorder()
        stream = await _loaded_stream(pair, rec)
        await stream.wait_send_shutdown_complete(timeout=5)
        types = rec.types()
        pra = types.index("PEER_RECEIVE_ABORTED")
        assert rec.events[pra].error_code == 77
        first_canceled = next(i for i, e in enumerate(rec.events)
                              if e.type is StreamEventType.SEND_COMPLETE and e.canceled)
        assert pra < first_canceled, "PEER_RECEIVE_ABORTED comes before the cancellations"
        # After the STOP_SENDING was processed, a send is ABORTED (not INVALID_STATE).
        assert stream.send(b"x", client_context="after") is Status.ABORTED
        stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE, 0)
        await stream.wait_shutdown_complete(timeout=5)
        _assert_cancel_shape(rec)
        assert pair.client.ledger.ok, pair.client.ledger.summary()
    finally:
        await close_pair(pair)


async def test_local_connection_shutdown(pair):
    recs, streams = [], []
    for _ in range(3):
        rec = Recorder()
        recs.append(rec)
        streams.append(await _loaded_stream(pair, rec))
    conn_rec = Recorder()
    pair.client.set_handler(conn_rec)
    pair.client.shutdown(ConnectionShutdownFlags.NONE, error_code=3)
    await pair.client.wait_shutdown_complete(timeout=5)
    for rec in recs:
        _assert_cancel_shape(rec)
        sc = rec.events[-1]
        assert sc.connection_shutdown and sc.connection_shutdown_by_app and not sc.connection_closed_remotely
    # A local shutdown raises no SHUTDOWN_INITIATED_* event; SHUTDOWN_COMPLETE comes last.
    assert conn_rec.types() == ["SHUTDOWN_COMPLETE"]
    assert sc.connection_error_code == 3 and sc.connection_close_status is Status.INTERNAL_ERROR
    # The non-silent close finished, so MsQuic set ClosedRemotely: sends and starts are
    # ABORTED now, on a never-started stream too; StreamOpen stays INVALID_STATE
    # (ClosedLocally is checked first).
    assert streams[0].send(b"x") is Status.ABORTED
    fresh = pair.client.open_stream  # opened before? no: StreamOpen itself fails
    with pytest.raises(Exception) as info:
        fresh()
    assert info.value.status is Status.INVALID_STATE
    assert pair.client.ledger.ok, pair.client.ledger.summary()


async def test_statuses_after_a_silent_local_shutdown(pair):
    never_started = pair.client.open_stream()
    started = pair.client.open_stream()
    started.start()
    await started.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    pair.client.shutdown(ConnectionShutdownFlags.SILENT)
    await pair.client.wait_shutdown_complete(timeout=5)
    assert not pair.client.closed_remotely
    assert started.send(b"x") is Status.INVALID_STATE  # its send side was aborted
    # After a SILENT shutdown a never-started stream still accepts sends (PENDING) ...
    rec = Recorder()
    never_started.set_handler(rec)
    assert never_started.send(b"x", client_context="held") is Status.PENDING
    assert never_started.start() is Status.PENDING  # ... and a start fails only when applied
    await never_started.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    assert rec.events[0].status is Status.INVALID_STATE
    never_started.close()  # the send completes here, canceled
    assert rec.completions() == [("held", True)]
    assert pair.client.ledger.ok, pair.client.ledger.summary()


async def test_peer_closes_connection_mid_send():
    def server_handler(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(lambda s, e: e.type is StreamEventType.RECEIVE and conn.shutdown(
                ConnectionShutdownFlags.NONE, 0x55))

    pair = await make_pair(server_handler=server_handler)
    try:
        conn_rec = Recorder()
        pair.client.set_handler(conn_rec)
        never_started = pair.client.open_stream()
        rec = Recorder()
        stream = await _loaded_stream(pair, rec)
        await pair.client.wait_shutdown_complete(timeout=5)
        assert never_started.start() is Status.ABORTED  # StreamStart after a peer close
        _assert_cancel_shape(rec)
        sc = rec.events[-1]
        assert sc.connection_closed_remotely and sc.connection_shutdown
        # QuicStreamIndicateShutdownComplete: AppClosed is set by the peer's application
        # close too; the status is QuicErrorCodeToStatus(0x55), INTERNAL_ERROR.
        assert sc.connection_shutdown_by_app and sc.connection_error_code == 0x55
        assert sc.connection_close_status is Status.INTERNAL_ERROR
        assert conn_rec.types() == ["SHUTDOWN_INITIATED_BY_PEER", "SHUTDOWN_COMPLETE"]
        assert conn_rec.events[0].error_code == 0x55
        assert stream.send(b"x") is Status.ABORTED
        assert stream.start() is Status.INVALID_STATE  # already started
        with pytest.raises(Exception) as info:
            pair.client.open_stream()
        assert info.value.status is Status.ABORTED
        assert pair.client.ledger.ok, pair.client.ledger.summary()
    finally:
        await close_pair(pair)


async def test_bare_connection_close_fields(pair):
    """MsQuicConnectionClose without a shutdown: SILENT | QUIC_STATUS with ABORTED and no
    APPLICATION flag, so by_app is False, the error INTERNAL_ERROR (1), the status ABORTED."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    pair.client.close()
    sc = rec.events[-1]
    assert sc.type is StreamEventType.SHUTDOWN_COMPLETE and sc.connection_shutdown
    assert not sc.connection_shutdown_by_app and not sc.connection_closed_remotely
    assert sc.connection_error_code == 1 and sc.connection_close_status is Status.ABORTED


async def test_idle_timeout_with_unacknowledged_data():
    settings = Settings(idle_timeout_ms=400)
    pair = await make_pair(client_settings=settings, server_settings=settings)
    try:
        conn_rec = Recorder()
        pair.client.set_handler(conn_rec)
        pair.server.close()  # silent: the server vanishes, nothing tells the client
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(5):
            stream.send(bytes(1000), client_context=i)
        never_started = pair.client.open_stream(handler=Recorder())
        await pair.client.wait_shutdown_complete(timeout=10)
        assert rec.completions() == [(i, True) for i in range(5)]
        assert conn_rec.types() == ["SHUTDOWN_INITIATED_BY_TRANSPORT", "SHUTDOWN_COMPLETE"]
        assert conn_rec.events[0].status is Status.CONNECTION_IDLE
        # QuicConnProcessIdleTimerOperation closes *locally* (INTERNAL_SILENT | QUIC_STATUS):
        assert rec.events[-1].connection_closed_remotely is False
        assert rec.events[-1].connection_shutdown and not rec.events[-1].connection_shutdown_by_app
        assert rec.events[-1].connection_close_status is Status.CONNECTION_IDLE
        assert stream.send(b"x") is Status.INVALID_STATE
        assert never_started.send(b"y", client_context="held") is Status.PENDING
        assert never_started.start() is Status.PENDING
        await never_started.wait_event(StreamEventType.START_COMPLETE, timeout=5)
        assert never_started.core.handler.events[0].status is Status.INVALID_STATE
        with pytest.raises(StatusError) as info:
            pair.client.open_stream()
        assert info.value.status is Status.INVALID_STATE
        never_started.close()
        assert never_started.core.handler.completions() == [("held", True)]
        assert pair.client.ledger.ok, pair.client.ledger.summary()
    finally:
        await close_pair(pair)


async def test_stream_close_with_pending_sends(pair):
    rec = Recorder()
    stream = await _loaded_stream(pair, rec)
    before = len(rec.completions())
    stream.close()
    # Everything completed before close() returned.
    assert len(rec.completions()) == N > before
    _assert_cancel_shape(rec)
    assert rec.events[-1].app_close_in_progress
    assert stream.send(b"x") is Status.INVALID_STATE
    assert pair.client.ledger.ok, pair.client.ledger.summary()


async def test_stream_close_on_unstarted_stream_cancels_its_sends(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.send(b"a", client_context="a")
    stream.send(b"b", client_context="b")
    stream.close()
    assert rec.completions() == [("a", True), ("b", True)]
    # QuicStreamClose -> QuicStreamShutdown(ABORT | IMMEDIATE) raises both shutdown
    # completions on a never-started stream too.
    assert rec.types() == ["SEND_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    assert rec.events[2].graceful is False and rec.events[3].app_close_in_progress is True
    assert pair.client.ledger.ok


async def test_abort_immediate_on_a_never_started_stream_completes_it(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    assert stream.shutdown(StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE) is Status.PENDING
    # Accepted (the abort is not applied yet), then canceled when the abort is applied.
    assert stream.send(b"a", SendFlags.START, client_context="a") is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    # The canceled START send says first that the start failed (QuicStreamCompleteSendRequest).
    assert rec.types() == ["START_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    assert rec.events[0].status is Status.ABORTED and rec.events[1].canceled
    assert rec.events[3].app_close_in_progress is False
    assert stream.start() is Status.PENDING
    await round_trip(pair.client)  # a whole exchange with the peer: a start to apply would have been
    assert len(rec.events) == 4, "a shut-down stream never starts"
    stream.close()
    assert pair.client.ledger.ok, pair.client.ledger.summary()

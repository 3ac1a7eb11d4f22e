"""Rule 4 and MsQuic's own event sequences (EventTest.cpp): order and once-only."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import ConnectionEventType, StreamEventType, StreamShutdownFlags

from .conftest import Recorder, close_pair, eventually, make_pair, round_trip

pytestmark = pytest.mark.asyncio

_QUIET = {"SEND_COMPLETE", "IDEAL_SEND_BUFFER_SIZE"}


def _shape(rec: Recorder) -> list[str]:
    return [t for t in rec.types() if t not in _QUIET]


async def _pair_with_server_streams():
    server_streams: list[Recorder] = []

    def server_handler(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            rec = Recorder(_server_default)
            server_streams.append(rec)
            event.stream.set_handler(rec)

    pair = await make_pair(server_handler=server_handler)
    return pair, server_streams


def _server_default(stream, event):
    # What EventTest's server does: shut its side down gracefully once the peer's is done.
    if event.type is StreamEventType.PEER_SEND_SHUTDOWN:
        stream.shutdown(StreamShutdownFlags.GRACEFUL)


async def test_send_twice_then_graceful():
    pair, server_streams = await _pair_with_server_streams()
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        stream.send(b"one", client_context=1)
        stream.send(b"two", client_context=2)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=5)
        await eventually(lambda: bool(server_streams) and "SHUTDOWN_COMPLETE" in _shape(server_streams[0]),
                         "the server stream to finish")
        client = _shape(rec)
        assert client in (
            ["START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "RECEIVE", "PEER_SEND_SHUTDOWN", "SHUTDOWN_COMPLETE"],
            ["START_COMPLETE", "RECEIVE", "PEER_SEND_SHUTDOWN", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"],
        )
        server = _shape(server_streams[0])
        receives = server[: server.index("PEER_SEND_SHUTDOWN")]
        assert receives and set(receives) == {"RECEIVE"}
        assert server_streams[0].events[len(receives) - 1].flags.name == "FIN"
        assert server[len(receives):] == ["PEER_SEND_SHUTDOWN", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    finally:
        await close_pair(pair)


async def test_send_then_abort():
    pair, server_streams = await _pair_with_server_streams()
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        stream.send(b"data", client_context=1)
        await eventually(lambda: bool(server_streams) and "RECEIVE" in _shape(server_streams[0]),
                         "the peer to receive it before the abort")
        stream.shutdown(StreamShutdownFlags.ABORT, 0)
        await stream.wait_shutdown_complete(timeout=5)
        await eventually(lambda: "SHUTDOWN_COMPLETE" in _shape(server_streams[0]), "the peer stream to finish")
        assert _shape(rec) == ["START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
        peer = server_streams[0]
        await asyncio.sleep(0)
        assert _shape(peer) == ["RECEIVE", "PEER_SEND_ABORTED", "PEER_RECEIVE_ABORTED",
                                "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    finally:
        await close_pair(pair)


async def test_connection_shutdown_on_connected(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await asyncio.sleep(0)
    pair.client.shutdown()
    await pair.client.wait_shutdown_complete(timeout=5)
    assert _shape(rec) == ["START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]


async def test_connection_shutdown_complete_comes_after_every_stream(pair):
    order: list[str] = []
    pair.client.set_handler(lambda c, e: order.append(f"conn:{e.type.name}"))
    streams = []
    for n in range(4):
        s = pair.client.open_stream(handler=lambda s, e, n=n: order.append(f"s{n}:{e.type.name}"))
        s.start()
        s.send(bytes(10_000), client_context=n)
        streams.append(s)
    await asyncio.sleep(0.01)  # some in flight; the order checked holds for any amount
    pair.client.shutdown()
    await pair.client.wait_shutdown_complete(timeout=5)
    assert order[-1] == "conn:SHUTDOWN_COMPLETE"
    for n in range(4):
        assert order.count(f"s{n}:SHUTDOWN_COMPLETE") == 1
    assert pair.client.ledger.ok


async def test_nothing_after_shutdown_complete_and_once_only(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"x", client_context=1)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    n = len(rec.events)
    # Anything the application does now reaches no handler.
    stream.shutdown(StreamShutdownFlags.ABORT, 1)
    stream.start()
    await round_trip(pair.client)
    pair.client.shutdown()
    await pair.client.wait_shutdown_complete(timeout=5)
    stream.close()
    assert len(rec.events) == n
    types = rec.types()
    for once in ("START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"):
        assert types.count(once) == 1
    assert types[-1] == "SHUTDOWN_COMPLETE"
    assert pair.client.ledger.ok


async def test_unstarted_stream_gets_no_events_until_close(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await round_trip(pair.client)
    pair.client.shutdown()
    await pair.client.wait_shutdown_complete(timeout=5)
    assert rec.events == []  # the connection's end does not touch a never-started stream
    stream.close()
    assert rec.types() == ["SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    assert pair.client.ledger.ok


async def test_the_hot_path_event_builders_make_the_same_frozen_events():
    """SEND_COMPLETE and RECEIVE are built without the dataclass __init__ on the hot path:
    each field must land where the dataclass would put it, and the events stay frozen."""
    import dataclasses

    from quicsim import ReceiveFlags
    from quicsim import events as ev

    fast = ev.send_complete(True, "ctx", 7)
    slow = ev.SendComplete(canceled=True, client_context="ctx", send_id=7)
    assert (fast.canceled, fast.client_context, fast.send_id) == (True, "ctx", 7)
    assert fast == slow and repr(fast) == repr(slow)
    data = b"abc"
    fast_r = ev.receive(10, data, ReceiveFlags.FIN)
    slow_r = ev.Receive(absolute_offset=10, total_buffer_length=3, buffers=(data,), flags=ReceiveFlags.FIN)
    assert fast_r == slow_r and repr(fast_r) == repr(slow_r)
    assert fast_r.type is StreamEventType.RECEIVE and fast.type is StreamEventType.SEND_COMPLETE
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.canceled = False  # type: ignore[misc]

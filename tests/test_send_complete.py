"""Rule 1 (exactly once, canceled meaning, order) over real loopback UDP."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import SendFlags, Settings, Status, StreamEventType, StreamShutdownFlags

from .conftest import Recorder, close_pair, make_pair, round_trip

pytestmark = pytest.mark.asyncio


async def test_three_sends_shutdown_then_late_send(pair):
    """The issue-4307 shape: 4 PENDING, 3 acknowledged, the late one canceled, ledger ok."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    assert stream.start() is Status.PENDING
    statuses = [stream.send(b"x" * 1000, client_context=f"req-{i}") for i in range(3)]
    await asyncio.sleep(0)  # the worker applies the three sends
    assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    statuses.append(stream.send(b"late", client_context="req-late"))
    await stream.wait_shutdown_complete(timeout=5)

    assert statuses == [Status.PENDING] * 4
    # MsQuic cancels the late send when the worker applies the shutdown: before the older
    # sends' acknowledgements (rule 5's one exception), which then come in send order.
    assert rec.completions() == [("req-late", True), ("req-0", False), ("req-1", False), ("req-2", False)]
    report = pair.client.ledger.report()
    assert report["ok"], pair.client.ledger.summary()
    assert (report["sends"], report["completions"], report["canceled"]) == (4, 4, 1)


async def test_late_send_rides_with_unflushed_batch(pair):
    """MsQuicStreamSend queues no new operation while earlier sends are unflushed, so a
    send made after the shutdown call is flushed with them, before the shutdown applies."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    for i in range(3):
        stream.send(b"x" * 100, client_context=i)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    assert stream.send(b"late", client_context="late") is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [(0, False), (1, False), (2, False), ("late", False)]
    assert pair.client.ledger.ok


async def test_acknowledged_completions_in_send_order(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    for i in range(200):
        assert stream.send(bytes(1500), client_context=i) is Status.PENDING
    stream.send(b"", SendFlags.FIN, client_context="fin")
    await stream.wait_shutdown_complete(timeout=10)
    assert rec.completions() == [(i, False) for i in range(200)] + [("fin", False)]
    # (SEND_SHUTDOWN_COMPLETE before or after the peer's FIN events, as MsQuic's own
    # event tests allow: with the FIN's ACK in the peer's FIN packet it comes first)
    assert rec.types()[-1] == "SHUTDOWN_COMPLETE"
    assert [e.graceful for e in rec.events if e.type is StreamEventType.SEND_SHUTDOWN_COMPLETE] == [True]
    assert pair.client.ledger.ok


async def test_completion_waits_for_acknowledgement(pair):
    """canceled=False only once the peer acknowledged the bytes: not at send time."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(bytes(50_000), client_context="big")
    await asyncio.sleep(0)
    assert rec.completions() == []  # applied and written, not yet acknowledged
    await stream.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
    assert rec.completions() == [("big", False)]
    server_stream = pair.server_events.events[-1].stream  # PEER_STREAM_STARTED
    assert server_stream.core.recv_offset == 50_000  # the peer really received it all


async def test_buffers_list_memoryview_and_empty(pair):
    received = bytearray()

    def on_server_stream(s, e):
        if e.type is StreamEventType.RECEIVE:
            received.extend(e.data)
        elif e.type is StreamEventType.PEER_SEND_SHUTDOWN:
            s.shutdown(StreamShutdownFlags.GRACEFUL)

    pair.server.set_handler(lambda c, e: e.type.name == "PEER_STREAM_STARTED" and e.stream.set_handler(
        on_server_stream))
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    assert stream.send([b"ab", bytearray(b"cd"), memoryview(b"ef")], client_context="list") is Status.PENDING
    assert stream.send(b"", client_context="empty") is Status.PENDING
    assert stream.send(memoryview(b"gh"), SendFlags.FIN, client_context="fin") is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    assert bytes(received) == b"abcdefgh"
    assert rec.completions() == [("list", False), ("empty", False), ("fin", False)]


async def test_send_with_start_flag_starts_the_stream(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    assert stream.send(b"hi", SendFlags.START | SendFlags.FIN, client_context=1) is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.types()[0] == "START_COMPLETE" and rec.events[0].status is Status.SUCCESS
    assert rec.completions() == [(1, False)]


async def test_sends_before_start_are_held_until_start(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    for i in range(3):
        assert stream.send(b"abc", client_context=i) is Status.PENDING
    await round_trip(pair.client)
    assert rec.events == []  # unstarted streams get no events
    stream.start()
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [(0, False), (1, False), (2, False)]
    assert pair.client.ledger.ok


async def test_many_streams_all_complete():
    pair = await make_pair(server_settings=Settings(peer_bidi_stream_count=200))
    try:
        recs = []
        streams = []
        for n in range(50):
            rec = Recorder()
            s = pair.client.open_stream(handler=rec)
            s.start()
            for i in range(5):
                s.send(bytes(300), client_context=(n, i))
            s.send(b"", SendFlags.FIN, client_context=(n, "fin"))
            recs.append(rec)
            streams.append(s)
        for s in streams:
            await s.wait_shutdown_complete(timeout=10)
        for n, rec in enumerate(recs):
            assert rec.completions() == [((n, i), False) for i in range(5)] + [((n, "fin"), False)]
        assert pair.client.ledger.report()["completions"] == 300
        assert pair.client.ledger.ok and pair.listener.ledger.ok
    finally:
        await close_pair(pair)

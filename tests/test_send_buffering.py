"""Send buffering (MsQuic's default SendBufferingEnabled, rule 4): sends complete when
copied into the connection's buffer while it holds less than the ideal size; the rest as
acknowledgements free room; an abort cancels exactly the sends not yet buffered."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import SendFlags, Settings, StreamEventType, StreamShutdownFlags
from quicsim.core.send_buffer import MIN_IDEAL, ideal_for
from quicsim.pair import open_pair

from .conftest import Recorder, round_trip

pytestmark = pytest.mark.asyncio

CHUNK = 16 * 1024
COUNT = 64  # 1 MiB
BUFFERED = Settings(send_buffering=True)


async def _pair():
    return await open_pair(transport="memory", client_settings=BUFFERED, server_settings=BUFFERED)


async def test_first_128_kib_complete_before_any_ack_the_rest_as_acks_free_room():
    pair = await _pair()
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        await asyncio.sleep(0)
        sender = None
        for i in range(COUNT):
            stream.send(bytes(CHUNK), SendFlags.FIN if i == COUNT - 1 else SendFlags.NONE, client_context=i)
        await asyncio.sleep(0)  # the worker applies the sends; nothing can be acknowledged yet
        sender = stream.core.quic_stream.sender
        assert sender._buffer_start == 0, "no acknowledgement so far"
        early = rec.completions()
        assert early == [(i, False) for i in range(MIN_IDEAL // CHUNK)]  # 8 sends = 128 KiB
        assert pair.client.core.send_buffer.buffered_bytes == MIN_IDEAL
        await stream.wait_shutdown_complete(timeout=30)
        assert rec.completions() == [(i, False) for i in range(COUNT)]
        assert pair.client.core.send_buffer.buffered_bytes == 0
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()


async def test_abort_cancels_exactly_the_unbuffered_sends():
    pair = await _pair()
    try:
        def abort_at_20(stream, event):
            # INLINE from the 20th completion: the abort applies right here, between two
            # completions, so the split is exact.
            if event.type is StreamEventType.SEND_COMPLETE and event.client_context == 19:
                stream.shutdown(StreamShutdownFlags.ABORT | StreamShutdownFlags.INLINE, 3)

        rec = Recorder(abort_at_20)
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(COUNT):
            stream.send(bytes(CHUNK), client_context=i)
        await stream.wait_shutdown_complete(timeout=10)
        done = rec.completions()
        assert done == [(i, False) for i in range(20)] + [(i, True) for i in range(20, COUNT)]
        assert pair.client.core.send_buffer.buffered_bytes == 0
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()


async def test_unstarted_streams_are_never_buffered():
    pair = await _pair()
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.send(bytes(100), client_context="early")
        await round_trip(pair.client)
        assert rec.completions() == []
        stream.start()
        await asyncio.sleep(0)
        # QuicStreamStart queues the stream for sending but fills no buffer (seen on the
        # library: a send flushed before the start completes on its ACK, or at the next fill)
        assert rec.completions() == []
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=10)
        assert rec.completions() == [("early", False)]
    finally:
        await pair.shutdown()


async def test_ideal_size_follows_the_congestion_window_and_is_announced():
    assert ideal_for(0) == MIN_IDEAL and ideal_for(MIN_IDEAL) == MIN_IDEAL + MIN_IDEAL // 2  # 1.5x steps
    assert ideal_for(10**12) == 128 * 1024 * 1024
    pair = await _pair()
    try:
        sizes = []
        stream = pair.client.open_stream(handler=lambda s, e: e.type is StreamEventType.IDEAL_SEND_BUFFER_SIZE
                                         and sizes.append(e.byte_count))
        stream.start()
        for i in range(300):
            stream.send(bytes(CHUNK), client_context=i)
        stream.send(b"", SendFlags.FIN)
        await stream.wait_shutdown_complete(timeout=60)
        assert sizes and max(sizes) > MIN_IDEAL and all(s == MIN_IDEAL or s == ideal_for(s - 1) for s in sizes)
        assert pair.ledger.ok
    finally:
        await pair.shutdown()


async def test_an_ack_frees_the_buffer_room_of_the_sends_it_covers_only():
    """QuicSendBufferConnectionAdjust's room comes back per acknowledged send: an ACK of
    the first send's bytes frees that send's room, not the next one's (whose bytes were
    lost), so a send waiting for room is not completed early."""
    from .core_pair import CorePair

    pair = CorePair(client_settings=BUFFERED, server_settings=BUFFERED)
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(bytes(1000), client_context="a")
    pair.client.process_operations()
    first = pair.hold(pair.client)
    stream.send(bytes(1000), client_context="b")
    pair.client.process_operations()
    assert pair.drop(pair.client) == 1, "b went out in a datagram of its own, and is lost"
    assert rec.completions() == [("a", False), ("b", False)], "both completed when copied"
    buffer = pair.client.send_buffer
    assert buffer.buffered_bytes == 2000
    pair.release(pair.server, first)
    pair.deliver(pair.server)  # the ACK of a's bytes only
    assert stream.quic_stream.sender._buffer_start == 1000, "a, and only a, is acknowledged"
    assert buffer.buffered_bytes == 1000, "b's bytes are still unacknowledged"

"""DELAY_SEND, CANCEL_ON_LOSS, INDICATE_PEER_ACCEPT with PEER_ACCEPTED, STREAMS_AVAILABLE."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import (
    ConnectionEventType,
    SendFlags,
    Settings,
    Stream,
    StreamEventType,
    StreamShutdownFlags,
    StreamStartFlags,
)
from quicsim.pair import open_pair

from .conftest import Recorder, eventually, round_trip

pytestmark = pytest.mark.asyncio


def _receiving_server(pair, received: list, codes: list | None = None, peer_events: list | None = None):
    def on_stream(stream, event):
        if peer_events is not None:
            peer_events.append(event.type.name)
        if event.type is StreamEventType.RECEIVE:
            received.append(event.data)
        elif event.type is StreamEventType.PEER_SEND_ABORTED and codes is not None:
            codes.append(event.error_code)
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
        elif event.type is StreamEventType.PEER_SEND_SHUTDOWN:
            stream.shutdown(StreamShutdownFlags.GRACEFUL)

    pair.server.set_handler(lambda c, e: e.type is ConnectionEventType.PEER_STREAM_STARTED
                            and e.stream.set_handler(on_stream))


async def _started_stream(pair) -> tuple[list[bytes], Recorder, Stream]:
    """A client stream started towards a server that keeps what it receives (that list),
    with its recorder, after one whole exchange: the connection is quiet when it returns."""
    received: list[bytes] = []
    _receiving_server(pair, received)
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await round_trip(pair.client)
    return received, rec, stream


async def test_delay_send_only_delays_the_flush():
    """QuicSendQueueFlushForStream: a DELAY_SEND send joins its stream at once but the
    connection does not flush for it; the next flush for any reason (here another
    stream's exchange) writes it."""
    pair = await open_pair(transport="memory")
    try:
        received, rec, stream = await _started_stream(pair)
        await asyncio.sleep(1)  # a second of virtual time: every ACK of that is in, all quiet
        assert stream.send(b"held-", SendFlags.DELAY_SEND, client_context="held") == -2
        await asyncio.sleep(1)  # nothing flushes: nothing on the wire
        assert b"".join(received) == b"" and rec.completions() == []
        await round_trip(pair.client)  # another stream's flush writes it too
        await eventually(lambda: b"".join(received) == b"held-", "the peer to receive the delayed data")
        await eventually(lambda: rec.completions() == [("held", False)], "its acknowledgement")
        stream.send(b"tail", SendFlags.DELAY_SEND, client_context="tail")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)  # the FIN's flush sends it
        await stream.wait_shutdown_complete(timeout=5)
        assert b"".join(received) == b"held-tail" and pair.ledger.ok
    finally:
        await pair.shutdown()


async def test_delay_send_with_buffering_completes_on_copy():
    pair = await open_pair(transport="memory", client_settings=Settings(send_buffering=True))
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
        stream.send(b"x" * 100, SendFlags.DELAY_SEND, client_context="d")
        await stream.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
        assert rec.completions() == [("d", False)]  # buffered and completed like any other
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=5)
        assert pair.ledger.ok
    finally:
        await pair.shutdown()


async def test_cancel_on_loss_aborts_with_the_handlers_code():
    pair = await open_pair(transport="memory", network={"loss": 0.3}, seed=3)
    try:
        codes: list[int] = []
        peer_events: list[str] = []
        _receiving_server(pair, [], codes, peer_events)

        def on_event(stream, event):
            if event.type is StreamEventType.CANCEL_ON_LOSS:
                event.error_code = 77  # MsQuic lets the handler choose the abort code

        rec = Recorder(on_event)
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(40):
            stream.send(bytes(3000), SendFlags.CANCEL_ON_LOSS, client_context=i)
        await stream.wait_send_shutdown_complete(timeout=30)
        types = rec.types()
        assert types.count("CANCEL_ON_LOSS") == 1
        after = types[types.index("CANCEL_ON_LOSS") + 1:]
        assert "SEND_SHUTDOWN_COMPLETE" in after
        done = rec.completions()
        assert [c for c, _ in done] == list(range(40)) and done[-1][1] is True
        await eventually(lambda: bool(codes), "the peer to see the abort")
        assert codes == [77]
        # QuicStreamOnLoss shuts down both directions: the peer is asked to stop too.
        await stream.wait_shutdown_complete(timeout=30)
        assert "PEER_SEND_ABORTED" in peer_events and "PEER_RECEIVE_ABORTED" in peer_events, peer_events
        assert types.index("CANCEL_ON_LOSS") < rec.types().index("SHUTDOWN_COMPLETE")
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()


async def test_cancel_on_loss_fires_when_only_the_fin_is_lost():
    """A lost frame that carries no data but the FIN also triggers QuicStreamOnLoss."""
    from .core_pair import CorePair

    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"data", SendFlags.CANCEL_ON_LOSS, client_context="d")
    pair.client.process_operations()
    pair.deliver(pair.client)  # the data arrives
    pair.deliver(pair.server)  # and is acknowledged
    assert rec.completions() == [("d", False)]
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    pair.client.process_operations()
    assert pair.drop(pair.client) == 1  # the packet with the FIN-only frame is lost
    for _ in range(10):  # probes and ACKs until aioquic declares it lost
        pair.fire_timer(pair.client)
        pair.deliver(pair.client)
        pair.deliver(pair.server)
        if "CANCEL_ON_LOSS" in rec.types():
            break
    assert "CANCEL_ON_LOSS" in rec.types(), rec.types()
    assert rec.types()[-1] == "SEND_SHUTDOWN_COMPLETE" or "SHUTDOWN_COMPLETE" in rec.types()


async def test_peer_accepted_and_streams_available():
    pair = await open_pair(transport="memory", server_settings=Settings(peer_bidi_stream_count=2))
    try:
        conn_events = Recorder()
        pair.client.set_handler(conn_events)
        first = [pair.client.open_stream() for _ in range(2)]
        for s in first:
            s.start()
        rec = Recorder()
        blocked = pair.client.open_stream(handler=rec)
        blocked.start(StreamStartFlags.INDICATE_PEER_ACCEPT)
        blocked.send(b"waiting", client_context="w")
        await eventually(lambda: bool(rec.events), "START_COMPLETE")
        assert rec.events[0].type is StreamEventType.START_COMPLETE and rec.events[0].peer_accepted is False
        assert "PEER_ACCEPTED" not in rec.types()
        for s in first:  # finishing streams lets the peer raise its limit (MAX_STREAMS)
            s.send(b"x", SendFlags.FIN)
        await blocked.wait_event(StreamEventType.PEER_ACCEPTED, timeout=10)
        assert "STREAMS_AVAILABLE" in conn_events.types()
        available = [e for e in conn_events.events if e.type is ConnectionEventType.STREAMS_AVAILABLE][-1]
        assert available.bidirectional_count >= 1
        blocked.shutdown(StreamShutdownFlags.GRACEFUL)
        await blocked.wait_shutdown_complete(timeout=10)
        assert rec.completions() == [("w", False)] and pair.ledger.ok
    finally:
        await pair.shutdown()


async def test_cancel_on_loss_never_cancels_an_acknowledged_send():
    for seed in (10, 11, 12):
        pair = await open_pair(transport="memory", network={"loss": 0.2}, seed=seed)
        try:
            prefix = {}

            def on_event(stream, event):
                if event.type is StreamEventType.CANCEL_ON_LOSS:
                    prefix["acked"] = stream.core.quic_stream.sender._buffer_start

            rec = Recorder(on_event)
            stream = pair.client.open_stream(handler=rec)
            stream.start()
            for i in range(60):
                stream.send(bytes(3000), SendFlags.CANCEL_ON_LOSS, client_context=i)
            await stream.wait_send_shutdown_complete(timeout=30)
            if "acked" in prefix:
                for i, canceled in rec.completions():
                    if (i + 1) * 3000 <= prefix["acked"]:
                        assert canceled is False, f"seed {seed}: send {i} was acknowledged"
            assert pair.ledger.ok
        finally:
            await pair.shutdown()


async def test_delay_send_data_is_buffered_and_flushed_by_the_next_send():
    """With buffering on, DELAY_SEND data is copied into the buffer like any other send; a
    later send of another stream flushes it, so the buffer empties as ACKs come."""
    buffered = Settings(send_buffering=True)
    pair = await open_pair(transport="memory", client_settings=buffered, server_settings=buffered)
    try:
        a_rec = Recorder()
        a = pair.client.open_stream(handler=a_rec)
        a.start()
        a.send(bytes(128 * 1024), SendFlags.DELAY_SEND, client_context="held")
        b_rec = Recorder()
        b = pair.client.open_stream(handler=b_rec)
        b.start()
        for i in range(4):
            b.send(bytes(1000), client_context=i)
        await asyncio.sleep(0)
        assert a_rec.completions() == [("held", False)]  # completed on copy, filling the buffer
        await eventually(lambda: len(b_rec.completions()) == 4, "B's sends to get buffer room")
        a.shutdown(StreamShutdownFlags.GRACEFUL)
        b.shutdown(StreamShutdownFlags.GRACEFUL)
        await a.wait_shutdown_complete(timeout=10)
        await b.wait_shutdown_complete(timeout=10)
        assert pair.client.core.send_buffer.buffered_bytes == 0 and pair.ledger.ok
    finally:
        await pair.shutdown()


async def test_a_loss_before_the_first_cancel_on_loss_send_does_not_cancel_it():
    """QuicStreamOnLoss acts only for a stream flagged CANCEL_ON_LOSS when the loss is
    detected: a loss repaired before any such send leaves a later one alone."""
    from .core_pair import CorePair

    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"plain", client_context="plain")
    pair.client.process_operations()
    assert pair.drop(pair.client) == 1  # lost: aioquic detects it and sends it again
    for _ in range(10):
        pair.fire_timer(pair.client)
        pair.deliver(pair.client)
        pair.deliver(pair.server)
        if rec.completions():
            break
    assert rec.completions() == [("plain", False)], "repaired and acknowledged"
    stream.send(b"flagged", SendFlags.CANCEL_ON_LOSS, client_context="flagged")
    pair.client.process_operations()
    pair.deliver(pair.client)
    pair.deliver(pair.server)
    assert rec.completions() == [("plain", False), ("flagged", False)]
    assert "CANCEL_ON_LOSS" not in rec.types(), rec.types()


async def test_streams_available_follows_max_streams_with_no_stream_waiting():
    """STREAMS_AVAILABLE when the peer's MAX_STREAMS raises the limit, even when no stream
    is blocked on it (the core then looks at the limits only because the frame came)."""
    pair = await open_pair(transport="memory", server_settings=Settings(peer_bidi_stream_count=1))
    try:
        conn_events = Recorder()
        pair.client.set_handler(conn_events)
        stream = pair.client.open_stream()
        stream.start()
        stream.send(b"x", SendFlags.FIN)
        before = conn_events.types().count("STREAMS_AVAILABLE")
        await stream.wait_shutdown_complete(timeout=10)  # the peer finishes it and raises its limit
        await eventually(lambda: conn_events.types().count("STREAMS_AVAILABLE") > before,
                         "STREAMS_AVAILABLE after the peer's MAX_STREAMS")
        available = [e for e in conn_events.events if e.type is ConnectionEventType.STREAMS_AVAILABLE][-1]
        assert available.bidirectional_count >= 1
    finally:
        await pair.shutdown()


@pytest.mark.parametrize("flags, canceled", [(SendFlags.PRIORITY_WORK, False), (SendFlags.NONE, True)])
async def test_priority_work_send_is_applied_ahead_of_a_queued_shutdown(flags, canceled):
    """QUIC_SEND_FLAG_PRIORITY_WORK queues the send's flush ahead of the operations already
    queued: made after StreamShutdown(GRACEFUL) in the same tick, it is written before the
    FIN and acknowledged; without the flag the shutdown is applied first and the send,
    flushed after the FIN, completes canceled."""
    pair = await open_pair(transport="memory")
    try:
        received, rec, stream = await _started_stream(pair)
        assert stream.send(b"first", client_context="first") == -2
        await eventually(lambda: rec.completions() == [("first", False)], "the first send's acknowledgement")
        assert stream.shutdown(StreamShutdownFlags.GRACEFUL) == -2
        assert stream.send(b"late", flags, client_context="late") == -2  # the shutdown is not applied yet
        await stream.wait_shutdown_complete(timeout=10)
        assert rec.completions() == [("first", False), ("late", canceled)]
        assert (b"".join(received) == b"firstlate") is not canceled
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()

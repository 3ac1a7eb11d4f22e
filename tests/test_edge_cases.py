"""Edge cases where the MsQuic rules are easy to get wrong: re-entrant handlers, odd
buffers, late peer frames, failed starts, priority work. In-memory link, no loss."""

from __future__ import annotations

import array
import asyncio
import quicsim

import pytest

from quicsim import (
    ConnectionEventType,
    SendFlags,
    Settings,
    Status,
    StreamEventType,
    StreamOpenFlags,
    StreamShutdownFlags,
    StreamStartFlags,
)
from quicsim.pair import open_pair

import pytest_asyncio

from .conftest import Recorder, eventually, judge, round_trip, send_garbage_initials

pytestmark = pytest.mark.asyncio


async def test_close_from_the_shutdown_complete_handler(mem):
    """The usual MsQuic pattern: StreamClose inside SHUTDOWN_COMPLETE. It must not
    re-deliver SHUTDOWN_COMPLETE (MsQuic sets HandleShutdown before indicating)."""
    rec = Recorder(lambda s, e: e.type is StreamEventType.SHUTDOWN_COMPLETE and s.close())
    stream = mem.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"x", client_context=1)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.types().count("SHUTDOWN_COMPLETE") == 1
    assert stream.handle_closed and mem.ledger.ok


async def test_memoryview_of_wide_items_counts_bytes(mem):
    received = bytearray()

    def on_server(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(lambda s, e: (e.type is StreamEventType.RECEIVE and received.extend(e.data),
                                                   e.type is StreamEventType.PEER_SEND_SHUTDOWN
                                                   and s.shutdown(StreamShutdownFlags.GRACEFUL)))

    mem.server.set_handler(on_server)
    rec = Recorder()
    stream = mem.client.open_stream(handler=rec)
    stream.start()
    words = array.array("I", range(1000))
    assert stream.send(memoryview(words), client_context="words") is Status.PENDING
    assert stream.send(memoryview(bytes(10))[::2], client_context="strided") is Status.INVALID_PARAMETER
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [("words", False)]
    assert bytes(received) == words.tobytes()


async def test_peer_stream_is_started_once_even_with_late_frames(mem):
    started = []

    def on_server(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            started.append(event.stream.id)
            event.stream.set_handler(lambda s, e: e.type is StreamEventType.RECEIVE and s.close())

    mem.server.set_handler(on_server)
    stream = mem.client.open_stream()
    stream.start()
    for i in range(20):
        stream.send(bytes(2000), client_context=i)
        await asyncio.sleep(0.001)
    stream.shutdown(StreamShutdownFlags.ABORT)
    await stream.wait_shutdown_complete(timeout=5)
    await eventually(lambda: bool(started), "the server to see the stream")
    assert started == [0]


async def test_failed_start_with_shutdown_on_fail_completes(mem):
    limit = mem.client.core.quic._remote_max_streams_bidi
    for _ in range(limit):
        mem.client.open_stream().start()
    rec = Recorder()
    stream = mem.client.open_stream(handler=rec)
    stream.send(b"x", client_context="never-sent")
    stream.start(StreamStartFlags.FAIL_BLOCKED | StreamStartFlags.SHUTDOWN_ON_FAIL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.types() == ["START_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    assert rec.events[0].status is Status.STREAM_LIMIT_REACHED
    assert rec.completions() == [("never-sent", True)]


async def test_start_complete_once_after_a_failed_start(mem):
    limit = mem.client.core.quic._remote_max_streams_bidi
    for _ in range(limit):
        mem.client.open_stream().start()
    rec = Recorder()
    stream = mem.client.open_stream(handler=rec)
    stream.start(StreamStartFlags.FAIL_BLOCKED)
    await asyncio.sleep(0)
    stream.start()
    await eventually(lambda: "START_COMPLETE" in rec.types(), "START_COMPLETE")
    assert rec.types().count("START_COMPLETE") == 1
    assert mem.ledger.ok, mem.ledger.summary()


async def test_priority_work_stays_behind_connection_shutdown_and_in_order(mem):
    a_rec, b_rec = Recorder(), Recorder()
    a = mem.client.open_stream(handler=a_rec)
    b = mem.client.open_stream(handler=b_rec)
    mem.client.shutdown()
    a.start(StreamStartFlags.PRIORITY_WORK)
    b.start(StreamStartFlags.PRIORITY_WORK)
    assert [op.kind for op in mem.client.core.ops] == ["conn_shutdown", "start", "start"]
    assert [op.stream for op in mem.client.core.ops][1:] == [a.core, b.core]
    await asyncio.sleep(0)
    assert a_rec.events[0].status is Status.INVALID_STATE and b_rec.events[0].status is Status.INVALID_STATE


async def test_start_then_close_inside_a_handler_leaves_nothing_behind(mem):
    made = []

    def on_event(stream, event):
        if event.type is StreamEventType.START_COMPLETE and not made:
            other = stream.connection.open_stream()
            other.start()
            other.close()
            made.append(other)

    stream = mem.client.open_stream(handler=on_event)
    stream.start()
    await eventually(lambda: bool(made), "the handler to open the other stream")
    assert made and made[0].id is None and not made[0].started
    assert list(mem.client.core.streams) == [stream.id]


async def test_inline_graceful_shutdown_may_cancel_an_earlier_accepted_send(mem):
    """A send accepted before an INLINE graceful shutdown but not yet applied is canceled
    by it, during the call, ahead of an older send still awaiting its ACK (rule 5)."""
    rec = Recorder()
    stream = mem.client.open_stream(handler=rec)
    stream.start()
    await asyncio.sleep(0)
    stream.send(bytes(30_000), client_context="older")
    await asyncio.sleep(0)  # applied and written: it waits for its ACK now
    assert stream.send(b"queued", client_context="accepted-before") is Status.PENDING  # not applied yet
    statuses = []

    def shut(s, e):
        statuses.append(s.shutdown(StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE))
        statuses.append(list(rec.completions()))

    mem.client.core.call_handler(shut, stream, None)  # as if from a callback
    assert statuses == [Status.SUCCESS, [("accepted-before", True)]]  # canceled inside the call
    await stream.wait_send_shutdown_complete(timeout=5)
    assert rec.completions() == [("accepted-before", True), ("older", False)]
    names = rec.types()
    assert names.index("SEND_SHUTDOWN_COMPLETE") > max(i for i, n in enumerate(names) if n == "SEND_COMPLETE")
    assert [e.graceful for e in rec.events if e.type is StreamEventType.SEND_SHUTDOWN_COMPLETE] == [True]
    assert mem.ledger.ok, mem.ledger.summary()


async def test_reset_code_survives_close_from_a_cancel_callback():
    pair = await open_pair(transport="memory")
    try:
        seen = []

        def on_server(conn, event):
            if event.type is ConnectionEventType.PEER_STREAM_STARTED:
                event.stream.set_handler(lambda s, e: e.type is StreamEventType.PEER_SEND_ABORTED
                                         and seen.append(e.error_code))

        pair.server.set_handler(on_server)
        stream = pair.client.open_stream(
            handler=lambda s, e: e.type is StreamEventType.SEND_COMPLETE and e.canceled and s.close())
        stream.start()
        for i in range(30):
            stream.send(bytes(64 * 1024), client_context=i)
        await asyncio.sleep(0.01)  # some in flight; the checks hold for any amount
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, 42)
        await eventually(lambda: bool(seen), "the peer to see the abort")
        assert seen == [42]
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()


async def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        Settings(idle_timeout_ms=-1)


async def test_close_from_a_completion_while_closing_still_completes_every_send(mem):
    """Found by the fuzzer: StreamClose on an unstarted stream cancels its sends; the first
    canceled SEND_COMPLETE's handler closes the stream again. The rest must still complete."""
    rec = Recorder(lambda s, e: e.type is StreamEventType.SEND_COMPLETE and s.close())
    stream = mem.server.open_stream(handler=rec)
    stream.send(b"", client_context="a")
    stream.send(b"", client_context="b")
    stream.send(b"", client_context="c")
    stream.close()
    assert rec.completions() == [("a", True), ("b", True), ("c", True)]
    assert mem.ledger.ok, mem.ledger.summary()


async def test_listener_keeps_live_connections_only_and_bounds_half_open_ones():
    """A flood of client Initials that never finish their handshake stays bounded, and a
    connection leaves ``listener.connections`` once it reached SHUTDOWN_COMPLETE."""
    from quicsim.api import MAX_HALF_OPEN

    listener = await quicsim.listen()
    try:
        client = await quicsim.connect("127.0.0.1", listener.port)
        server = await listener.accept(timeout=5)
        assert listener.connections == [server]
        client.shutdown()
        await server.wait_shutdown_complete(timeout=5)
        assert listener.connections == []
        client.close()
        sent = MAX_HALF_OPEN + 40
        send_garbage_initials(listener.port, sent)
        await eventually(lambda: listener._count >= 1 + sent, "every Initial to reach the listener", timeout=10)
        assert len(listener.connections) <= MAX_HALF_OPEN
    finally:
        listener.close()


async def test_close_from_the_late_cancel_of_a_start_fin_flush_does_not_start_the_stream(mem):
    """Found as a user would: a handler closes a never-started stream from the canceled
    completion raised while the worker flushes its START|FIN send. The flush must not
    start the closed stream afterwards (before, the peer saw it open and an in-memory run
    never ended)."""
    rec = Recorder(lambda s, e: e.type is StreamEventType.SEND_COMPLETE and s.close())
    stream = mem.client.open_stream(handler=rec)
    stream.send(b"a", SendFlags.START | SendFlags.FIN, client_context="first")
    stream.send(b"b", client_context="late")
    probe = await round_trip(mem.client)
    assert stream.handle_closed and stream.id is None, "a closed stream never starts"
    assert rec.completions() == [("late", True), ("first", True)]
    # The round trip's own stream took the first id; the server may still hold its side.
    assert probe.id == 0 and set(mem.server.core.streams) <= {probe.id}, "the peer never saw it"


async def test_close_from_the_start_complete_of_a_canceled_start_send_still_completes_it(mem):
    """Found by the fuzzer: a canceled START send on a never-started stream first raises
    START_COMPLETE(ABORTED); a handler that closes the stream right there must still see
    that send's SEND_COMPLETE (before, it was raised after the close and lost)."""
    rec = Recorder(lambda s, e: e.type is StreamEventType.START_COMPLETE and s.close())
    stream = mem.client.open_stream(StreamOpenFlags.UNIDIRECTIONAL, handler=rec)
    stream.send(b"", SendFlags.FIN, client_context="fin")
    stream.send(b"", SendFlags.START | SendFlags.FIN, client_context="late-start")
    stream.close()
    assert rec.types()[0] == "START_COMPLETE" and rec.events[0].status is Status.ABORTED
    assert sorted(rec.completions()) == [("fin", True), ("late-start", True)]
    assert rec.types()[-1] == "SHUTDOWN_COMPLETE"
    assert mem.ledger.ok, mem.ledger.summary()


@pytest_asyncio.fixture
async def mem_one_stream():
    """A memory pair whose server lets the client open one bidirectional stream at a time."""
    p = await open_pair(transport="memory", server_settings=Settings(peer_bidi_stream_count=1))
    yield p
    await p.shutdown()
    judge(p.ledger)


async def round_trip_on(stream) -> None:
    """Finish ``stream`` gracefully and wait for its end (frees the peer's stream slot)."""
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=10)


async def test_an_abort_on_a_stream_the_peer_has_not_allowed_waits_for_the_limit(mem_one_stream):
    """A started stream blocked by the peer's stream limit, then aborted: its RESET_STREAM
    and STOP_SENDING wait until the peer allows the stream. Sent at once (as aioquic
    would), the peer closes the connection with STREAM_LIMIT_ERROR."""
    first = mem_one_stream.client.open_stream()
    first.start()
    blocked_rec = Recorder()
    blocked = mem_one_stream.client.open_stream(handler=blocked_rec)
    blocked.start()
    blocked.send(b"never sent", client_context="blocked")
    await asyncio.sleep(0)  # the worker applied both starts and the send
    assert blocked.core.quic_stream is not None and blocked.core.quic_stream.is_blocked
    blocked.shutdown(StreamShutdownFlags.ABORT)
    await asyncio.sleep(0)  # ... and the abort, while the stream is still blocked
    await round_trip_on(first)  # frees the peer's one slot: the held frames go out now
    await blocked.wait_shutdown_complete(timeout=10)
    assert mem_one_stream.client.connected and not mem_one_stream.client.shutdown_initiated
    assert blocked_rec.completions() == [("blocked", True)]
    assert "SHUTDOWN_COMPLETE" in blocked_rec.types()


async def test_a_canceled_start_send_completes_before_the_sends_queued_after_it(mem):
    """QuicStreamCompleteSendRequest raises START_COMPLETE(ABORTED) and then the START
    send's own SEND_COMPLETE, before the abort goes on to the sends queued behind it: a
    close from a late cancel's completion cancels the flushed batch oldest first."""
    rec = Recorder(lambda s, e: e.type is StreamEventType.SEND_COMPLETE and e.client_context == "late" and s.close())
    stream = mem.client.open_stream(handler=rec)
    stream.send(b"a", SendFlags.START, client_context="first")
    stream.send(b"b", SendFlags.FIN, client_context="second")
    stream.send(b"c", client_context="late")
    await round_trip(mem.client)
    assert stream.handle_closed and stream.id is None, "a closed stream never starts"
    assert rec.types()[:3] == ["SEND_COMPLETE", "START_COMPLETE", "SEND_COMPLETE"], rec.types()
    assert rec.completions() == [("late", True), ("first", True), ("second", True)]
    assert mem.ledger.ok, mem.ledger.summary()


async def test_a_send_from_the_completion_a_graceful_shutdown_canceled_is_refused(mem):
    """The graceful shutdown clears SendEnabled before it cancels the sends queued after
    it, so a send from one of those completions' handlers is refused (INVALID_STATE)
    rather than accepted behind the FIN."""
    statuses = []

    def on_event(stream, event):
        if event.type is StreamEventType.SEND_COMPLETE and event.client_context == "late":
            statuses.append(stream.send(b"x", client_context="from-handler"))

    rec = Recorder(on_event)
    stream = mem.client.open_stream(handler=rec)
    stream.start()
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    stream.send(b"late", client_context="late")
    await stream.wait_send_shutdown_complete(timeout=5)
    assert rec.completions() == [("late", True)]
    assert statuses == [Status.INVALID_STATE]
    assert mem.ledger.ok, mem.ledger.summary()

"""ConnectionClose as the real library does it (shared/msquic-observed.md §3.1-3.3):
a stream holds its connection until StreamClose, so ConnectionClose closes no stream
handle; stream calls and events go on, and only each stream's own handler decides
whether an event is delivered. In-memory link, no loss."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from quicsim import (
    ConnectionEventType,
    ConnectionShutdownFlags,
    Status,
    StatusError,
    StreamEventType,
    StreamShutdownFlags,
)
from quicsim.pair import open_pair

from .conftest import Recorder, eventually, judge

@pytest_asyncio.fixture
async def mem():
    """A memory pair torn down at once: after the client's silent ConnectionClose the
    server would only find out by its idle timeout."""
    p = await open_pair(transport="memory")
    yield p
    p.close()
    judge(p.ledger)

E = StreamEventType


class Log:
    """One list of what every handler of the client saw, in delivery order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def stream(self, name: str, on_event=None):
        def handler(stream, event):
            text = f"{name} {event.type.name}"
            if event.type is E.SEND_COMPLETE:
                text = f"{name} {event.client_context}{'c' if event.canceled else 'a'}"
            elif event.type is E.START_COMPLETE:
                text += f"({event.status.name})"
            elif event.type is E.SHUTDOWN_COMPLETE:
                text += f"(acip={int(event.app_close_in_progress)})"
            if event.type is not E.IDEAL_SEND_BUFFER_SIZE:
                self.lines.append(text)
            if on_event is not None:
                on_event(stream, event)
        return handler

    def connection(self, conn, event) -> None:
        if event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
            self.lines.append(f"conn SHUTDOWN_COMPLETE(acip={int(event.app_close_in_progress)})")


@pytest.mark.asyncio
async def test_calls_and_events_after_connection_close_go_on_for_the_streams(mem):
    """§3.1 (close-after-connclose): after ConnectionClose, StreamShutdown on a stream and
    StreamSend on a never-started stream return PENDING; StreamClose of the never-started
    stream then delivers a canceled SEND_COMPLETE for each of its sends, SEND_SHUTDOWN_COMPLETE
    and SHUTDOWN_COMPLETE(app_close_in_progress). Nothing is lost (quicsim used to refuse
    the calls and drop the events: a leak with no fault on)."""
    log = Log()
    mem.client.set_handler(log.connection)
    u = mem.client.open_stream(handler=log.stream("u"))
    assert u.send(b"u" * 10, client_context="U1") is Status.PENDING
    s = mem.client.open_stream(handler=log.stream("s"))
    s.start()
    await s.wait_event(E.START_COMPLETE, timeout=5)
    mem.client.close()
    assert log.lines[-3:] == ["s SEND_SHUTDOWN_COMPLETE", "s SHUTDOWN_COMPLETE(acip=0)",
                              "conn SHUTDOWN_COMPLETE(acip=1)"]
    assert s.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    assert u.send(b"u" * 10, client_context="U2") is Status.PENDING
    assert s.send(b"s") is Status.INVALID_STATE  # its send side was shut down with the connection
    del log.lines[:]
    u.close()
    assert log.lines == ["u U1c", "u U2c", "u SEND_SHUTDOWN_COMPLETE", "u SHUTDOWN_COMPLETE(acip=1)"]
    s.close()
    assert log.lines[4:] == []
    assert mem.ledger.ok, mem.ledger.summary()


@pytest.mark.asyncio
async def test_a_start_after_connection_close_is_answered(mem):
    """§3.1 (start-after-connclose): StreamStart on a never-started stream after
    ConnectionClose returns PENDING and is answered START_COMPLETE(INVALID_STATE)."""
    log = Log()
    u = mem.client.open_stream(handler=log.stream("u"))
    mem.client.close()
    assert u.start() is Status.PENDING
    await u.wait_event(E.START_COMPLETE, timeout=5)
    assert log.lines == ["u START_COMPLETE(INVALID_STATE)"]
    u.close()
    assert log.lines[1:] == ["u SEND_SHUTDOWN_COMPLETE", "u SHUTDOWN_COMPLETE(acip=1)"]
    assert mem.ledger.ok, mem.ledger.summary()


@pytest.mark.asyncio
async def test_connection_close_inside_the_shutdown_walk_loses_nothing(mem):
    """§3.2 (connclose-in-walk): ConnectionShutdown overtakes the queued sends of streams
    a and b; a's handler calls ConnectionClose at its first canceled completion. The
    connection's SHUTDOWN_COMPLETE comes inline, then the walk goes on and every send
    still completes (quicsim used to drop them: a leak with no fault on)."""
    log = Log()
    mem.client.set_handler(log.connection)

    def close_on_first_cancel(stream, event):
        if event.type is E.SEND_COMPLETE and event.canceled and not mem.client.handle_closed:
            mem.client.close()

    a = mem.client.open_stream(handler=log.stream("a", close_on_first_cancel))
    b = mem.client.open_stream(handler=log.stream("b"))
    a.start()
    b.start()
    await b.wait_event(E.START_COMPLETE, timeout=5)
    a.send(b"x" * 100, client_context="A1")
    b.send(b"x" * 100, client_context="B1")
    b.send(b"x" * 100, client_context="B2")
    mem.client.shutdown()
    await eventually(lambda: b.shutdown_complete, "b's SHUTDOWN_COMPLETE")
    assert [line for line in log.lines if "START" not in line] == [
        "a A1c", "conn SHUTDOWN_COMPLETE(acip=1)", "a SEND_SHUTDOWN_COMPLETE", "a SHUTDOWN_COMPLETE(acip=0)",
        "b B1c", "b B2c", "b SEND_SHUTDOWN_COMPLETE", "b SHUTDOWN_COMPLETE(acip=0)"]
    assert mem.ledger.ok, mem.ledger.summary()


@pytest.mark.asyncio
async def test_an_inline_connection_close_leaves_queued_operations_for_later(mem):
    """§3.3 (connclose-inline-queued-start): StreamStart queued just before an inline
    ConnectionClose (from a's SEND_COMPLETE) is applied after the close:
    a SSC, a SC, conn SC, then n START_COMPLETE(INVALID_STATE)."""
    log = Log()
    mem.client.set_handler(log.connection)
    opened = []

    def open_start_close(stream, event):
        if event.type is E.SEND_COMPLETE and not event.canceled:
            n = mem.client.open_stream(handler=log.stream("n"))
            opened.append(n)
            assert n.start() is Status.PENDING
            mem.client.close()

    a = mem.client.open_stream(handler=log.stream("a", open_start_close))
    a.start()
    a.send(b"x" * 100, client_context="A1")
    await eventually(lambda: opened and opened[0].core.state.start_indicated, "n's START_COMPLETE")
    assert [line for line in log.lines if "START_COMPLETE(SUCCESS)" not in line] == [
        "a A1a", "a SEND_SHUTDOWN_COMPLETE", "a SHUTDOWN_COMPLETE(acip=0)", "conn SHUTDOWN_COMPLETE(acip=1)",
        "n START_COMPLETE(INVALID_STATE)"]
    opened[0].close()
    a.close()
    assert mem.ledger.ok, mem.ledger.summary()


@pytest.mark.asyncio
async def test_connection_close_from_the_application_applies_what_was_queued_first(mem):
    """From the application thread ConnectionClose is queued at the tail: a StreamStart
    queued before it is applied first (the stream starts, then is shut down with the
    connection), as on the real library."""
    rec = Recorder()
    n = mem.client.open_stream(handler=rec)
    n.start()
    mem.client.close()
    assert rec.types() == ["START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"]
    assert rec.events[0].status is Status.SUCCESS
    assert mem.ledger.ok, mem.ledger.summary()


# ------------------------------------------------------------------ peer_acknowledged_shutdown


def _ends(run) -> dict:
    """Run ``run(pair)`` on a virtual-time memory pair; returns each side's connection
    SHUTDOWN_COMPLETE fields and when it came (virtual seconds after the call)."""
    from quicsim.transport.virtual_loop import run_virtual

    async def main():
        pair = await open_pair(transport="memory", client_settings=None)
        loop = asyncio.get_running_loop()
        seen = {}
        for side in ("client", "server"):
            conn = getattr(pair, side)
            conn.set_handler(lambda c, e, side=side: e.type is ConnectionEventType.SHUTDOWN_COMPLETE
                             and seen.setdefault(side, (e, loop.time())))
        start = loop.time()
        await run(pair)
        for conn in (pair.client, pair.server):
            await conn.wait_shutdown_complete(timeout=30)
        pair.close()
        return {side: (e.peer_acknowledged_shutdown, e.app_close_in_progress, round(t - start, 3))
                for side, (e, t) in seen.items()}

    return run_virtual(main(), seed=1, budget=60)


def test_peer_acknowledged_shutdown_is_set_as_msquic_sets_it():
    """§3.5, as QuicConnTryClose sets ShutdownCompleteTimedOut (and as the library did):
    the side whose close the peer answers says 1 at once; the side the peer closed drains
    for max(15 ms, 2 RTT) and says 0; a silent close says 1; ConnectionClose during the
    closing period ends it, as answered (1)."""
    async def local_close(pair):
        pair.client.shutdown()

    async def peer_close(pair):
        pair.server.shutdown()

    async def silent(pair):
        pair.client.shutdown(ConnectionShutdownFlags.SILENT)
        pair.server.shutdown(ConnectionShutdownFlags.SILENT)

    async def close_while_closing(pair):
        pair.client.shutdown()
        await asyncio.sleep(0)
        pair.client.close()

    ends = _ends(local_close)
    assert ends["client"][:2] == (True, False) and ends["client"][2] < 0.05  # answered within one RTT
    assert ends["server"][:2] == (False, False) and 0.015 <= ends["server"][2] < 0.1  # drained
    ends = _ends(peer_close)
    assert ends["server"][:2] == (True, False) and ends["client"][:2] == (False, False)
    assert ends["server"][2] < ends["client"][2] < 0.1
    ends = _ends(silent)
    assert ends["client"][:2] == (True, False) and ends["server"][:2] == (True, False)
    ends = _ends(close_while_closing)
    assert ends["client"][:2] == (True, True)


def test_an_unanswered_close_times_out_and_says_so():
    """A close the peer never answers (the network is down): the closing period runs
    out (3 PTO) and peer_acknowledged_shutdown is 0."""
    async def blackholed(pair):
        pair.network.blackhole(60)
        pair.client.shutdown()

    ends = _ends(blackholed)
    assert ends["client"][:2] == (False, False)


@pytest.mark.asyncio
async def test_stream_open_after_the_peers_close_and_a_local_shutdown(mem):
    """§3.6: after the peer's close, the app's ConnectionShutdown still sets ClosedLocally
    once the worker applied it: StreamOpen says ABORTED right after the call (only
    ClosedRemotely is set yet) and INVALID_STATE afterwards, as on the library."""
    mem.server.shutdown()
    await mem.client.wait_shutdown_complete(timeout=5)
    mem.client.shutdown()
    with pytest.raises(StatusError) as first:
        mem.client.open_stream()
    await asyncio.sleep(0)  # the worker applies the shutdown
    with pytest.raises(StatusError) as later:
        mem.client.open_stream()
    assert (first.value.status, later.value.status) == (Status.ABORTED, Status.INVALID_STATE)


def test_no_new_peer_stream_once_the_connection_is_closed():
    """Frames of a stream the peer opened arrive after ConnectionShutdown was applied but
    before the CONNECTION_CLOSE left (found by the fuzzer, seed 301005): MsQuic creates no
    peer stream once the connection is closed (QuicStreamSetGetStreamForPeer), so no
    PEER_STREAM_STARTED and no stream left open past the connection's end."""
    from .core_pair import CorePair

    pair = CorePair()
    pair.handshake()
    server_events = Recorder()
    pair.server.set_handler(server_events)
    stream = pair.client.open_stream()
    stream.start()
    stream.send(b"x" * 10, client_context="x")
    pair.client.process_operations()
    in_flight = pair.hold(pair.client)
    pair.server.shutdown()
    pair.server.process_operations()  # the close is applied, not yet sent
    pair.release(pair.server, in_flight)
    assert "PEER_STREAM_STARTED" not in server_events.types()
    assert pair.server.streams == {}


@pytest.mark.parametrize("second", ["start", "start-send"])
def test_a_second_start_beside_a_failed_one_may_start_the_stream_silently(second):
    """StreamStart(FAIL_BLOCKED) fails (the peer allows no more streams) and a second
    StreamStart (or a send with START), accepted before that failure was delivered, starts
    the stream: MsQuic raises START_COMPLETE once per stream
    (QuicStreamIndicateStartComplete), so the stream's events come with no second
    START_COMPLETE, and the ledger must not call them events of a stream whose start
    failed (found by the fuzzer, seeds 300144 and 701750)."""
    from quicsim import SendFlags, Settings, StreamStartFlags

    async def main():
        pair = await open_pair(transport="memory", server_settings=Settings(peer_bidi_stream_count=1))
        try:
            rec = Recorder()
            first = pair.client.open_stream()
            first.start()
            blocked = pair.client.open_stream(handler=rec)
            assert blocked.start(StreamStartFlags.FAIL_BLOCKED) is Status.PENDING
            if second == "start":
                assert blocked.start() is Status.PENDING  # accepted: the failure is not known yet
            else:
                assert blocked.send(b"", SendFlags.START, client_context="s") is Status.PENDING
            await eventually(lambda: rec.types()[:1] == ["START_COMPLETE"], "the failed start")
            assert rec.events[0].status is Status.STREAM_LIMIT_REACHED
            first.shutdown(StreamShutdownFlags.GRACEFUL)  # frees the slot: the stream gets going
            blocked.shutdown(StreamShutdownFlags.GRACEFUL)
            await eventually(lambda: blocked.shutdown_complete, "the started stream's end")
            assert rec.types().count("START_COMPLETE") == 1 and "SHUTDOWN_COMPLETE" in rec.types()
            assert pair.ledger.ok, pair.ledger.summary()
        finally:
            await pair.shutdown()

    from quicsim.transport.virtual_loop import run_virtual
    run_virtual(main(), seed=1, budget=120)


@pytest.mark.asyncio
async def test_a_start_send_whose_start_fails_shuts_the_stream_down_at_once(mem):
    """§3.10 (start-send-after-silent): a send with START on a never-started stream after a
    SILENT ConnectionShutdown: QuicStreamSendFlush starts the stream with
    IMMEDIATE|SHUTDOWN_ON_FAIL, so the failed start shuts it down at once:
    START_COMPLETE(INVALID_STATE), SEND_COMPLETE(canceled), SEND_SHUTDOWN_COMPLETE(0),
    SHUTDOWN_COMPLETE, with no StreamClose (quicsim held the send until StreamClose)."""
    from quicsim import SendFlags

    log = Log()
    u = mem.client.open_stream(handler=log.stream("u"))
    mem.client.shutdown(ConnectionShutdownFlags.SILENT)
    await mem.client.wait_shutdown_complete(timeout=5)
    assert u.send(b"s" * 10, SendFlags.START, client_context="S") is Status.PENDING
    await eventually(lambda: u.shutdown_complete, "the stream's SHUTDOWN_COMPLETE")
    assert log.lines == ["u START_COMPLETE(INVALID_STATE)", "u Sc", "u SEND_SHUTDOWN_COMPLETE",
                         "u SHUTDOWN_COMPLETE(acip=0)"]
    u.close()
    assert mem.ledger.ok, mem.ledger.summary()


def test_a_silently_started_stream_is_not_judged_as_never_started():
    """The stream a second StreamStart started after a failed FAIL_BLOCKED one has its
    stream id and is in the connection's table: the connection's end cancels its sends.
    The ledger must not report them at the teardown as sends of a never-started stream
    left open (found by the fuzzer, seed 601445)."""
    from quicsim import SendFlags, Settings, StreamStartFlags

    async def main():
        limit = Settings(peer_bidi_stream_count=1)
        pair = await open_pair(transport="memory", client_settings=limit, server_settings=limit)
        first = pair.client.open_stream()
        first.start()
        second = pair.client.open_stream()
        second.start(StreamStartFlags.FAIL_BLOCKED)
        second.send(b"", SendFlags.FIN, client_context="fin")
        second.start()
        await eventually(lambda: second.id is not None, "the second start")
        pair.close()
        return pair.ledger, second

    ledger, second = run_virtual(main(), seed=1, budget=120)
    assert second.id == 4 and not second.handle_closed
    assert ledger.ok, ledger.summary()


def run_virtual(coro, seed, budget):
    from quicsim.transport.virtual_loop import run_virtual as run
    return run(coro, seed=seed, budget=budget)

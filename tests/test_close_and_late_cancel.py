"""StreamClose and the cancel of late sends, where the mutation run (python -m bench.mutation)
found them unchecked: what close applies first, the abort code it sends, what it leaves
behind, and what the late-send faults report. Memory link on virtual time, except the
close from another thread, which needs a real loop."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import ConnectionEventType, SendFlags, Settings, Status, StreamEventType, StreamShutdownFlags
from quicsim.observer import Observer
from quicsim.pair import open_pair
from quicsim.transport.virtual_loop import run_virtual

from .conftest import Recorder, close_pair, eventually, judge, make_pair


def _closed_after_start_and_send(reach_server: bool):
    async def body():
        pair = await open_pair(transport="memory")
        try:
            server_streams = Recorder()

            def on_server(conn, event):
                if event.type is ConnectionEventType.PEER_STREAM_STARTED:
                    event.stream.set_handler(server_streams)

            pair.server.set_handler(on_server)
            rec = Recorder()
            stream = pair.client.open_stream(handler=rec)
            stream.start()
            stream.send(b"x" * 100, client_context="a")
            if reach_server:
                await asyncio.sleep(0.05)  # virtual time: "a" reaches the server and is acknowledged
            stream.send(b"y" * 100, client_context="b")  # accepted, not yet applied
            stream.close()  # on the loop, outside any callback
            after = (stream.shutdown(StreamShutdownFlags.GRACEFUL), stream.start(), stream.send(b"z"))
            stream.close()  # a second close does nothing
            await asyncio.sleep(0.05)  # the abort reaches the server
            return rec, server_streams, after, pair.ledger
        finally:
            await pair.shutdown()

    return run_virtual(body())


@pytest.mark.parametrize("reach_server", [False, True])
def test_close_applies_what_was_queued_before_it_then_aborts_with_code_zero(reach_server):
    rec, server_streams, after, ledger = _closed_after_start_and_send(reach_server)
    # The blocking close runs after the start and sends queued before it: START_COMPLETE first.
    assert rec.types() == ["START_COMPLETE", "SEND_COMPLETE", "SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE",
                           "SHUTDOWN_COMPLETE"]
    assert rec.completions() == [("a", not reach_server), ("b", True)]  # (context, canceled)
    assert after == (Status.INVALID_STATE, Status.INVALID_STATE, Status.INVALID_STATE)
    assert ledger.ok, ledger.summary()
    if reach_server:  # the stream exists at the server: StreamClose's abort carries code 0
        aborted = [e for e in server_streams.events if e.type is StreamEventType.PEER_SEND_ABORTED]
        assert [e.error_code for e in aborted] == [0]


@pytest.mark.asyncio
async def test_close_from_another_thread_waits_for_the_worker():
    pair = await make_pair()
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        stream.send(b"x" * 1000, client_context="a")
        await stream.wait_event(StreamEventType.START_COMPLETE, timeout=10)
        await asyncio.to_thread(stream.close)
        # StreamClose returned: the send's completion (acknowledged or canceled, as the
        # ACK raced the close) and SHUTDOWN_COMPLETE were delivered before it.
        assert rec.types()[-1] == "SHUTDOWN_COMPLETE"
        assert [context for context, _canceled in rec.completions()] == ["a"]
        judge(pair.client.ledger)
    finally:
        await close_pair(pair)


class _Seen(Observer):
    def __init__(self) -> None:
        self.faults: list = []
        self.discarded: list = []

    def fault_hit(self, conn, stream, fault, what) -> None:
        self.faults.append((conn.label, stream.handle, fault, what))

    def event_discarded(self, conn, stream, event) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            self.discarded.append((stream.handle, event.client_context, event.canceled))


def _late_send_under(fault):
    async def body():
        seen = _Seen()
        pair = await open_pair(transport="memory", client_settings=Settings(faults=[fault]), observers=(seen,))
        try:
            stream = pair.client.open_stream(handler=Recorder())
            stream.start()
            stream.send(b"x" * 100, client_context="early")
            await asyncio.sleep(0)
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
            stream.send(b"late", client_context="late")
            late_id = pair.ledger.pending_sends()[-1]["send_id"]
            await stream.wait_shutdown_complete(timeout=10)
            return seen, stream.handle, late_id, pair.ledger
        finally:
            await pair.shutdown()

    return run_virtual(body())


def test_a_dropped_late_send_is_reported_as_the_fault_on_its_stream():
    seen, handle, late_id, ledger = _late_send_under("drop-send-after-shutdown")
    assert seen.faults == [("client", handle, "drop-send-after-shutdown", f"send client:{late_id} dropped")]
    assert [leak["client_context"] for leak in ledger.leaks] == ["'late'"]


def test_a_deferred_late_completion_is_raised_after_shutdown_complete_and_discarded():
    seen, handle, _late_id, ledger = _late_send_under("discard-after-shutdown-complete")
    assert seen.discarded == [(handle, "late", True)]
    assert [leak["client_context"] for leak in ledger.leaks] == ["'late'"]


class _Ids(Observer):
    def __init__(self) -> None:
        self.accepted: list = []

    def send_call(self, conn, stream, send_id, status, length, flags, client_context) -> None:
        if status is Status.PENDING:
            self.accepted.append((client_context, send_id))


def test_canceled_start_sends_tell_the_start_failed_once_and_carry_their_send_ids():
    """Sends with START that a graceful shutdown on the never-started stream overtook are
    canceled late: one START_COMPLETE (ABORTED, peer not accepted) before the first
    canceled completion, not one per send, and each completion carries its send's id."""
    async def body():
        ids = _Ids()
        pair = await open_pair(transport="memory", observers=(ids,))
        try:
            rec = Recorder()
            stream = pair.client.open_stream(handler=rec)
            stream.shutdown(StreamShutdownFlags.GRACEFUL)  # applied before the sends
            for name in ("a", "b"):
                assert stream.send(b"x", SendFlags.START, client_context=name) is Status.PENDING
            await asyncio.sleep(0)
            stream.close()
            return rec, ids.accepted, pair.ledger
        finally:
            await pair.shutdown()

    rec, accepted, ledger = run_virtual(body())
    assert rec.types()[:3] == ["START_COMPLETE", "SEND_COMPLETE", "SEND_COMPLETE"]
    assert rec.types().count("START_COMPLETE") == 1
    start = rec.events[0]
    assert (start.status, start.peer_accepted) == (Status.ABORTED, False)
    done = [(e.client_context, e.send_id, e.canceled) for e in rec.events if e.type is StreamEventType.SEND_COMPLETE]
    assert done == [(name, send_id, True) for name, send_id in accepted]
    assert ledger.ok, ledger.summary()

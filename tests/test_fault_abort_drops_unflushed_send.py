"""The ``abort-drops-unflushed-send`` fault: an abort that forgets the sends the worker
had not flushed yet. Each abortive path is driven with the fault off (every send
completes exactly once, canceled) and on (the unflushed ones never complete, the ledger
names them and the fault reports each)."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from quicsim import ConnectionShutdownFlags, Settings, Status, StreamEventType, StreamShutdownFlags
from quicsim.faults import FAULTS
from quicsim.pair import open_pair

from .conftest import Recorder

pytestmark = pytest.mark.asyncio
FAULT = "abort-drops-unflushed-send"


@pytest_asyncio.fixture(params=[False, True], ids=["fault-off", "fault-on"])
async def faulted(request):
    pair = await open_pair(transport="memory", client_settings=Settings(faults=[FAULT] if request.param else []))
    yield request.param, pair
    await pair.shutdown()


def _lost(pair) -> list[str]:
    return [str(leak["client_context"]).strip("'") for leak in pair.ledger.leaks]


async def test_it_is_registered_from_its_own_module():
    fault = FAULTS[FAULT]
    assert fault.__module__ == "quicsim.faults.abort_drops_unflushed_send" and not fault.in_library


async def test_stream_abort_drops_the_sends_not_yet_flushed(faulted):
    """A sent and flushed, then ABORT_SEND queued and B, C accepted behind it: the abort
    cancels A (queued on the stream) and, with the fault, drops B and C."""
    fault, pair = faulted
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    assert stream.send(b"a" * 5000, client_context="A") is Status.PENDING
    await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    assert stream.core.sends.requests and not stream.core.sends.api_requests  # A flushed, not acknowledged
    stream.shutdown(StreamShutdownFlags.ABORT_SEND, 7)
    for context in "BC":
        assert stream.send(b"x", client_context=context) is Status.PENDING
    await stream.wait_send_shutdown_complete(timeout=5)
    await asyncio.sleep(0)
    hits = pair.client.core.fault_hits
    if fault:
        assert rec.completions() == [("A", True)]
        assert _lost(pair) == ["B", "C"]
        assert [name for name, _ in hits] == [FAULT, FAULT] and hits[0][1].endswith("dropped by the abort")
    else:
        assert rec.completions() == [("A", True), ("B", True), ("C", True)]
        assert pair.ledger.ok and not hits


async def test_connection_shutdown_overtaking_the_flush_drops_the_send(faulted):
    """ConnectionShutdown jumps the queue: its silent abort finds the send still unflushed."""
    fault, pair = faulted
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    assert stream.send(b"x", client_context="A") is Status.PENDING
    pair.client.shutdown(ConnectionShutdownFlags.NONE, 0)
    await stream.wait_shutdown_complete(timeout=5)
    await asyncio.sleep(0)
    if fault:
        assert rec.completions() == [] and _lost(pair) == ["A"]
    else:
        assert rec.completions() == [("A", True)] and pair.ledger.ok

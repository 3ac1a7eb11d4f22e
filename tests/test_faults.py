"""The fault registry and the ``reentrant-close`` fault: MsQuic's own lost completion.

Each path where MsQuic completes a detached batch of sends is driven twice: with the
fault off every send completes exactly once; with it on, a StreamClose from one of the
batch's completions loses the rest, and the ledger names them.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

import quicsim
from quicsim import Settings, Status, StreamEventType, StreamShutdownFlags
from quicsim.faults import ABORT, CORRECT, FAULTS, LATE, Fault, seams_for
from quicsim.pair import open_pair

from .conftest import Recorder

pytestmark = pytest.mark.asyncio
SEAMS = ("cancel_send", "stream_close", "unstarted_close", "close_inside_batch")


async def test_each_fault_is_one_module_naming_its_seams():
    assert quicsim.FAULTS is FAULTS
    for name, fault in FAULTS.items():
        assert fault.name == name and fault.description and fault.msquic
        assert fault.__module__ == f"quicsim.faults.{name.replace('-', '_')}", "one module per fault, named for it"
        hooked = [seam for seam in SEAMS if getattr(fault, seam) is not getattr(Fault, seam)]
        assert hooked, f"{name} hooks no seam"
    assert seams_for([]) is CORRECT
    chain = seams_for(["unstarted-stream-leak", "reentrant-close"])
    assert isinstance(chain, FAULTS["reentrant-close"]) and isinstance(chain.inner, FAULTS["unstarted-stream-leak"])
    assert chain.inner.inner is CORRECT


class _Target:
    """A stream as a seam sees it (faults.FaultTarget), recording what is done to it."""

    def __init__(self) -> None:
        self.done: list[tuple] = []

    def send_name(self, request) -> str:
        return f"c:{request.send_id}"

    def __getattr__(self, name):
        return lambda *args, **kw: self.done.append((name, *args, *kw.values())) or 0


async def test_a_seam_a_fault_leaves_alone_goes_on_to_the_next_fault_then_to_the_correct_behaviour():
    request = type("Request", (), {"send_id": 4})()
    for faults, where, done in [
        ([], LATE, [("complete_send", request, True)]),
        (["drop-send-after-shutdown"], LATE, [("drop_send", request),
                                              ("fault_hit", "drop-send-after-shutdown", "send c:4 dropped")]),
        (["drop-send-after-shutdown"], ABORT, [("complete_send", request, True)]),
        # both hook the late send: the first by name acts, the other is not asked
        (["drop-send-after-shutdown", "discard-after-shutdown-complete"], LATE, [("park_send", request)]),
        (["reentrant-close", "drop-send-after-shutdown"], LATE,
         [("drop_send", request), ("fault_hit", "drop-send-after-shutdown", "send c:4 dropped")]),
    ]:
        target = _Target()
        seams_for(faults).cancel_send(target, request, where)
        assert target.done == done, (faults, where)
    target = _Target()
    seams_for(["reentrant-close"]).stream_close(target)
    CORRECT.close_inside_batch(target)
    assert target.done == []
    seams_for(["reentrant-close"]).close_inside_batch(target)
    assert [d[0] for d in target.done] == ["strand_taken", "fault_hit"]


async def _pair(fault: bool):
    settings = Settings(faults=["reentrant-close"] if fault else [])
    return await open_pair(transport="memory", client_settings=settings)


def _closing_on(context):
    """A handler that records events and closes the stream on ``context``'s completion."""
    return Recorder(lambda s, e: e.type is StreamEventType.SEND_COMPLETE and e.client_context == context
                    and s.close())


@pytest_asyncio.fixture(params=[False, True], ids=["fault-off", "fault-on"])
async def faulted(request):
    pair = await _pair(request.param)
    yield request.param, pair
    await pair.shutdown()


def _lost(pair) -> list[str]:
    return [leak["client_context"] for leak in pair.ledger.leaks]


async def test_graceful_loop(faulted):
    """QuicStreamSendShutdown(Graceful): the "Bad app!" loop over late sends."""
    fault, pair = faulted
    rec = _closing_on("B")
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"a", client_context="A")
    await stream.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    assert stream.send(b"b", client_context="B") is Status.PENDING
    assert stream.send(b"c", client_context="C") is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    await asyncio.sleep(0)
    # MsQuic still delivers what QuicStreamClose raises itself.
    assert rec.types()[-2:] == ["SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE"] or fault is False
    if fault:
        assert rec.completions() == [("A", False), ("B", True)]
        assert _lost(pair) == ["'C'"] and pair.client.core.fault_hits[0][0] == "reentrant-close"
    else:
        assert rec.completions() == [("A", False), ("B", True), ("C", True)]
        assert pair.ledger.ok and not pair.client.core.fault_hits


async def test_abortive_cancel(faulted):
    """QuicStreamSendShutdown(!Graceful): queued requests first, then the detached list."""
    fault, pair = faulted
    rec = _closing_on("B")
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    stream.shutdown(StreamShutdownFlags.ABORT_SEND, 7)
    for context in "BCD":
        assert stream.send(b"x", client_context=context) is Status.PENDING
    await stream.wait_send_shutdown_complete(timeout=5)
    await asyncio.sleep(0)
    if fault:
        assert rec.completions() == [("B", True)]
        assert _lost(pair) == ["'C'", "'D'"]
    else:
        assert rec.completions() == [("B", True), ("C", True), ("D", True)]
        assert pair.ledger.ok


async def test_connection_shutdown_overtakes_a_pending_send(faulted):
    """ConnectionShutdown jumps the queue: the silent abort cancels a send whose STRM_SEND
    operation is still queued, from the detached list."""
    fault, pair = faulted
    rec = _closing_on("B")
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await stream.wait_event(StreamEventType.START_COMPLETE, timeout=5)
    stream.send(b"b", client_context="B")
    stream.send(b"c", client_context="C")
    pair.client.shutdown()
    await pair.client.wait_shutdown_complete(timeout=5)
    if fault:
        assert rec.completions() == [("B", True)] and _lost(pair) == ["'C'"]
    else:
        assert rec.completions() == [("B", True), ("C", True)] and pair.ledger.ok


async def test_close_outside_a_batch_loses_nothing_even_with_the_fault():
    """The fault is MsQuic's path exactly: a close with no detached batch in flight (here
    from an acknowledged completion) completes every remaining send."""
    pair = await _pair(True)
    try:
        rec = _closing_on("A")
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for context in "ABC":
            stream.send(b"x" * 3000, client_context=context)
        await stream.wait_shutdown_complete(timeout=5)
        assert rec.completions()[0] == ("A", False) and len(rec.completions()) == 3
        assert pair.ledger.ok and not pair.client.core.fault_hits
    finally:
        await pair.shutdown()

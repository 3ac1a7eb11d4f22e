"""The wrapper's tests, written as a project that uses quicsim would write them: the
plugin's ``quicsim_pair`` (a client and server over a lossy loopback link, with the
exactly-once check at the end of each test) and ``quicsim_buffers`` (which contexts
quicsim has not completed yet). Run from this folder: ``python -m pytest``."""

from __future__ import annotations

import pytest

from buffered_sender import BufferedSender

CHUNKS = [b"a" * 1000, b"b" * 1000, b"c" * 1000]


@pytest.mark.asyncio
async def test_every_buffer_is_freed_acked_or_canceled(quicsim_pair, quicsim_buffers):
    sender = BufferedSender(quicsim_pair.client)
    await sender.send_then_shut_down(CHUNKS, late=[b"late"])
    assert sender.outstanding == {}
    quicsim_buffers.assert_matches(sender.outstanding.keys())
    # the late send is canceled as soon as the worker applies it, possibly before the older
    # sends are acknowledged (MsQuic's one exception to send order): compare without order
    assert sorted(sender.freed) == [("buf-0", False), ("buf-1", False), ("buf-2", False), ("buf-3", True)]


@pytest.mark.asyncio
@pytest.mark.quicsim(loss=0.1, delay_ms=5, seed=3)
async def test_every_buffer_is_freed_on_a_lossy_link(quicsim_pair, quicsim_buffers):
    sender = BufferedSender(quicsim_pair.client)
    await sender.send_then_shut_down(CHUNKS * 5, late=[b"late-1", b"late-2"])
    quicsim_buffers.assert_matches(sender.outstanding.keys())
    assert sender.outstanding == {} and len(sender.freed) == 17


@pytest.mark.asyncio
async def test_a_wrapper_that_keeps_canceled_buffers_is_caught(quicsim_pair, quicsim_buffers):
    sender = BufferedSender(quicsim_pair.client, free_canceled=False)
    await sender.send_then_shut_down(CHUNKS, late=[b"late"])
    assert quicsim_buffers.held() == []  # quicsim completed every send ...
    assert quicsim_buffers.mismatches(sender.outstanding.keys()) == [
        "still held by the application, but its send completed: 'buf-3'"]  # ... the wrapper leaked one
    with pytest.raises(AssertionError, match="buf-3"):
        quicsim_buffers.assert_matches(sender.outstanding.keys())


@pytest.mark.asyncio
@pytest.mark.quicsim(faults=["drop-send-after-shutdown"], expect="leak")
async def test_a_lost_completion_leaves_the_buffer_held(quicsim_pair, quicsim_buffers):
    # the fault loses the late send's SEND_COMPLETE; expect="leak": the test passes only if
    # the ledger reports that leak at the end
    sender = BufferedSender(quicsim_pair.client)
    await sender.send_then_shut_down(CHUNKS, late=[b"late"])
    assert list(sender.outstanding) == ["buf-3"] and quicsim_buffers.held() == ["buf-3"]
    quicsim_buffers.assert_matches(sender.outstanding.keys())  # the wrapper is right to hold it

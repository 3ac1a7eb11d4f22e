"""Rule 2: calls are queued and applied by the worker in call order; the race window."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import ConnectionShutdownFlags, SendFlags, Status, StreamShutdownFlags

from .conftest import Recorder

pytestmark = pytest.mark.asyncio


async def _started(pair, rec=None):
    stream = pair.client.open_stream(handler=rec or Recorder())
    stream.start()
    await asyncio.sleep(0)
    assert stream.started
    return stream


async def test_shutdown_then_send_same_tick_is_accepted_then_canceled(pair):
    rec = Recorder()
    stream = await _started(pair, rec)
    assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    assert stream.send(b"late", client_context="late") is Status.PENDING  # not applied yet
    assert stream.send_enabled  # nothing applied before the worker runs
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [("late", True)]
    assert pair.client.ledger.ok


async def test_send_after_applied_shutdown_is_rejected_without_event(pair):
    rec = Recorder()
    stream = await _started(pair, rec)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await asyncio.sleep(0)  # the worker applies the shutdown
    assert stream.send(b"too late", client_context="x") is Status.INVALID_STATE
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == []
    report = pair.client.ledger.report()
    assert report["rejected"] == 1 and report["sends"] == 0 and report["ok"]


async def test_send_after_fin_send(pair):
    rec = Recorder()
    stream = await _started(pair, rec)
    assert stream.send(b"last", SendFlags.FIN, client_context="fin") is Status.PENDING
    assert stream.send(b"after-fin", client_context="same-batch") is Status.PENDING
    await asyncio.sleep(0)
    # Both were flushed together; the one after the FIN is canceled as the worker applies it.
    assert ("same-batch", True) in rec.completions()
    assert stream.send(b"later", client_context="rejected") is Status.INVALID_STATE
    await stream.wait_shutdown_complete(timeout=5)
    assert sorted(rec.completions()) == [("fin", False), ("same-batch", True)]
    assert pair.client.ledger.ok


async def test_operations_apply_in_call_order(pair):
    """start, send, shutdown queued in one tick apply in that order: the send is not late."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"data", client_context="d")
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.types()[0] == "START_COMPLETE"
    assert rec.completions() == [("d", False)]


async def test_connection_shutdown_jumps_the_queue(pair):
    """ConnectionShutdown is applied before operations queued earlier: the queued start
    fails (INVALID_STATE: the app closed the connection) and the queued send is canceled."""
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"data", client_context="queued")
    pair.client.shutdown(ConnectionShutdownFlags.NONE, 0)
    await pair.client.wait_shutdown_complete(timeout=5)
    assert rec.events[0].type.name == "START_COMPLETE"
    assert rec.events[0].status is Status.INVALID_STATE  # QuicStreamStart after a local close
    stream.close()
    assert rec.completions() == [("queued", True)]
    assert pair.client.ledger.ok, pair.client.ledger.summary()


async def test_inline_calls_from_a_handler(pair):
    """Inside a callback, send is applied inline and INLINE shutdown returns SUCCESS."""
    statuses = []

    def on_event(stream, event):
        if event.type.name == "START_COMPLETE":
            statuses.append(stream.send(b"inline", client_context="inline"))
            statuses.append(stream.shutdown(StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE))
            statuses.append(stream.send(b"after", client_context="after"))

    rec = Recorder(on_event)
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    await stream.wait_shutdown_complete(timeout=5)
    assert statuses == [Status.PENDING, Status.SUCCESS, Status.INVALID_STATE]
    assert rec.completions() == [("inline", False)]

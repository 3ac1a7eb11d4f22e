"""The ledger catches each injected fault over real UDP, stays ok without faults, and
flags every kind of violation when fed known-bad observations directly."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import quicsim
from quicsim import FAULTS, Ledger, Settings, Status, StreamShutdownFlags, events as ev

from .conftest import Recorder, close_pair, make_pair


async def _issue_4307_script(faults=()):
    """3 sends, graceful shutdown, 1 late send; returns (statuses, completions, ledger)."""
    pair = await make_pair(client_settings=Settings(faults=faults))
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        statuses = [stream.send(b"x" * 1000, client_context=f"req-{i}") for i in range(3)]
        await asyncio.sleep(0)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        statuses.append(stream.send(b"late", client_context="req-late"))
        await stream.wait_shutdown_complete(timeout=5)
        return statuses, rec.completions(), pair.client.ledger
    finally:
        await close_pair(pair)


@pytest.mark.asyncio
async def test_no_fault_ledger_ok():
    statuses, done, ledger = await _issue_4307_script()
    assert statuses == [Status.PENDING] * 4 and len(done) == 4
    assert ledger.ok and ledger.report()["leaks"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["drop-send-after-shutdown", "discard-after-shutdown-complete"])
async def test_fault_loses_the_late_completion_and_ledger_names_it(fault):
    statuses, done, ledger = await _issue_4307_script(faults=[fault])
    assert statuses == [Status.PENDING] * 4
    assert done == [("req-0", False), ("req-1", False), ("req-2", False)]  # 4 sends, 3 completions
    report = ledger.report()
    assert not report["ok"]
    assert [leak["client_context"] for leak in report["leaks"]] == ["'req-late'"]
    leak = report["leaks"][0]
    assert leak["connection"] == "client" and leak["stream_id"] == 0 and leak["bytes"] == 4
    assert "req-late" in ledger.summary()


@pytest.mark.asyncio
async def test_discard_fault_on_stream_close():
    pair = await make_pair(client_settings=Settings(faults=["discard-after-shutdown-complete"]))
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(40):
            stream.send(bytes(64 * 1024), client_context=i)
        await asyncio.sleep(0.01)  # some in flight; completions + leaks == 40 holds for any amount
        stream.close()
        leaks = pair.client.ledger.report()["leaks"]
        assert leaks and all(leak["detected"] == "after StreamClose returned" for leak in leaks)
        assert len(rec.completions()) + len(leaks) == 40
    finally:
        await close_pair(pair)


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", [None, "unstarted-stream-leak"])
async def test_unstarted_stream_after_connection_shutdown(fault):
    pair = await make_pair(client_settings=Settings(faults=[fault] if fault else []))
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        pair.client.shutdown()
        await asyncio.sleep(0)
        assert stream.send(b"a", client_context="unstarted-send") is Status.PENDING
        await pair.client.wait_shutdown_complete(timeout=5)
        stream.close()
        report = pair.client.ledger.report()
        if fault is None:
            assert rec.completions() == [("unstarted-send", True)] and report["ok"]
        else:
            assert rec.completions() == []
            assert [leak["client_context"] for leak in report["leaks"]] == ["'unstarted-send'"]
            assert report["leaks"][0]["detected"] == "at its connection's SHUTDOWN_COMPLETE"
    finally:
        await close_pair(pair)


def test_unknown_fault_is_a_value_error_naming_the_valid_ones():
    with pytest.raises(ValueError) as info:
        Settings(faults=["no-such-fault"])
    for name in FAULTS:
        assert name in str(info.value)
    assert set(quicsim.FAULTS) == {
        "drop-send-after-shutdown", "discard-after-shutdown-complete", "unstarted-stream-leak"}


# -- the ledger on hand-made observations (known-bad inputs for the detector itself)

def _fake():
    conn = SimpleNamespace(label="c")
    stream = SimpleNamespace(id=0, handle=1, is_local=True, handle_closed=False)
    return conn, stream


def _send(ledger, conn, stream, send_id, status=Status.PENDING, flags=0, ctx=None):
    ledger.api_call(conn, stream, "send", status,
                    {"send_id": send_id, "bytes": 1, "flags": flags, "client_context": ctx or send_id})


def _complete(ledger, conn, stream, send_id, canceled=False, ctx=None):
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=canceled, client_context=ctx or send_id,
                                                      send_id=send_id))


def _started(ledger, conn, stream):
    ledger.stream_event(conn, stream, ev.StartComplete(status=Status.SUCCESS, id=0, peer_accepted=True))


def test_ledger_flags_duplicates_rejected_unknown_and_order():
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    _send(ledger, conn, stream, 2)
    _send(ledger, conn, stream, 3, status=Status.INVALID_STATE)
    _complete(ledger, conn, stream, 2)  # before send 1: out of order
    _complete(ledger, conn, stream, 1)
    _complete(ledger, conn, stream, 1)  # duplicate
    _complete(ledger, conn, stream, 3)  # rejected
    _complete(ledger, conn, stream, 99)  # unknown
    text = "\n".join(ledger.violations)
    with pytest.raises(AssertionError, match="before older send 1"):
        ledger.assert_ok()
    assert "before older send 1" in text
    assert "duplicate SEND_COMPLETE for send 1" in text
    assert "rejected send 3" in text
    assert "unknown send 99" in text
    assert not ledger.ok


def test_ledger_allows_only_the_late_canceled_exception():
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    ledger.api_call(conn, stream, "shutdown", Status.PENDING, {"flags": StreamShutdownFlags.GRACEFUL})
    _send(ledger, conn, stream, 2)
    _complete(ledger, conn, stream, 2, canceled=True)  # rule 5: allowed
    _complete(ledger, conn, stream, 1)
    assert ledger.ok, ledger.summary()
    ledger.assert_ok()  # raises nothing on a clean ledger
    _send(ledger, conn, stream, 3)
    _send(ledger, conn, stream, 4)
    _complete(ledger, conn, stream, 4, canceled=False)  # a late send acked early: not allowed
    assert not ledger.ok


def test_ledger_flags_events_after_shutdown_complete_and_repeats():
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    _started(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    assert [leak["send_id"] for leak in ledger.leaks] == [1]
    _complete(ledger, conn, stream, 1, canceled=True)
    text = "\n".join(ledger.violations)
    assert "START_COMPLETE delivered twice" in text
    assert "SEND_COMPLETE delivered after SHUTDOWN_COMPLETE" in text


def test_ledger_flags_client_context_mismatch_and_unstarted_events():
    ledger = Ledger()
    conn, stream = _fake()
    _send(ledger, conn, stream, 1, ctx="a")
    ledger.stream_event(conn, stream, ev.PeerSendShutdown())
    _started(ledger, conn, stream)
    _complete(ledger, conn, stream, 1, ctx="b")
    text = "\n".join(ledger.violations)
    assert "never started" in text
    assert "client_context='b', expected 'a'" in text

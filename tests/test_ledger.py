"""The ledger catches each injected fault over real UDP, stays ok without faults, and
flags every kind of violation when fed known-bad observations directly."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import quicsim
from quicsim import FAULTS, Ledger, SendFlags, Settings, Status, StreamShutdownFlags, events as ev

from quicsim.pair import open_pair

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
        # MsQuic leaves a never-started stream's sends pending until StreamClose.
        assert rec.completions() == [] and pair.client.ledger.pending == 1 and pair.client.ledger.ok
        stream.close()
        report = pair.client.ledger.report()
        if fault is None:
            assert rec.completions() == [("unstarted-send", True)] and report["ok"]
        else:
            assert rec.completions() == []
            assert [leak["client_context"] for leak in report["leaks"]] == ["'unstarted-send'"]
            assert report["leaks"][0]["detected"] == "at its SHUTDOWN_COMPLETE"
    finally:
        await close_pair(pair)


@pytest.mark.asyncio
async def test_a_never_started_stream_left_open_is_a_leak_at_judgement():
    pair = await make_pair()
    try:
        stream = pair.client.open_stream()
        assert stream.send(b"a", client_context="held") is Status.PENDING
        pair.client.shutdown()
        await pair.client.wait_shutdown_complete(timeout=5)
        assert pair.client.ledger.ok
        pair.client.ledger.judge_unclosed()
        leaks = pair.client.ledger.report()["leaks"]
        assert [leak["client_context"] for leak in leaks] == ["'held'"]
        assert leaks[0]["detected"] == "on a never-started stream whose handle was never closed"
    finally:
        await close_pair(pair)


def test_unknown_fault_is_a_value_error_naming_the_valid_ones():
    with pytest.raises(ValueError) as info:
        Settings(faults=["no-such-fault"])
    for name in FAULTS:
        assert name in str(info.value)
    assert set(quicsim.FAULTS) >= {
        "drop-send-after-shutdown", "discard-after-shutdown-complete", "unstarted-stream-leak", "reentrant-close"}


# -- the ledger on hand-made observations (known-bad inputs for the detector itself)

def _fake():
    conn = SimpleNamespace(label="c", settings=Settings())  # send buffering off: rule 5 strictly
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
    with pytest.raises(AssertionError, match="before older send c:1"):
        ledger.assert_ok()
    assert "SEND_COMPLETE (acknowledged) for send c:2 (client_context=2) before older send c:1" in text
    assert "duplicate SEND_COMPLETE for send c:1 (client_context=1)" in text
    assert "SEND_COMPLETE for a rejected send (client_context=3)" in text
    assert "SEND_COMPLETE for an unknown send (client_context=99)" in text
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


def _shutdown(ledger, conn, stream, flags=StreamShutdownFlags.GRACEFUL, status=Status.PENDING):
    ledger.api_call(conn, stream, "shutdown", status, {"flags": flags, "error_code": 0})


def _fresh():
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    return ledger, conn, stream


def test_strict_order_only_the_head_of_a_late_run_may_overtake():
    # Sends accepted after one graceful shutdown call are canceled in send order.
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1)
    _shutdown(ledger, conn, stream)
    for n in (2, 3, 4):
        _send(ledger, conn, stream, n)
    for n in (2, 3, 4):
        _complete(ledger, conn, stream, n, canceled=True)
    _complete(ledger, conn, stream, 1)
    assert ledger.ok, ledger.summary()
    # Newest first: each one overtakes an older late send.
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1)
    _shutdown(ledger, conn, stream)
    for n in (2, 3, 4):
        _send(ledger, conn, stream, n)
    for n in (4, 3, 2):
        _complete(ledger, conn, stream, n, canceled=True)
    _complete(ledger, conn, stream, 1)
    assert ledger.violations == [
        "c stream id=0: SEND_COMPLETE (canceled) for send c:4 (client_context=4) before older send c:2 (client_context=2)",
        "c stream id=0: SEND_COMPLETE (canceled) for send c:3 (client_context=3) before older send c:2 (client_context=2)"]


def test_strict_order_the_exception_needs_a_fin_or_graceful_call_and_a_cancel():
    for call in ("none", "abort", "fin"):
        ledger, conn, stream = _fresh()
        _send(ledger, conn, stream, 1, flags=SendFlags.FIN if call == "fin" else 0)
        if call == "abort":
            _shutdown(ledger, conn, stream, StreamShutdownFlags.ABORT_SEND)
        _send(ledger, conn, stream, 2)
        _complete(ledger, conn, stream, 2, canceled=True)
        _complete(ledger, conn, stream, 1, canceled=call != "fin")
        assert ledger.ok is (call == "fin"), (call, ledger.summary())
    ledger, conn, stream = _fresh()  # a late send acknowledged early is never allowed
    _send(ledger, conn, stream, 1)
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 2)
    _complete(ledger, conn, stream, 2, canceled=False)
    assert "SEND_COMPLETE (acknowledged) for send c:2" in ledger.violations[0]


def test_inline_graceful_may_cancel_one_tail_of_earlier_sends_in_order():
    def run(order):
        ledger, conn, stream = _fresh()
        for n in (1, 2, 3):
            _send(ledger, conn, stream, n)
        _shutdown(ledger, conn, stream, StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE, Status.SUCCESS)
        for n, canceled in order:
            _complete(ledger, conn, stream, n, canceled=canceled)
        return ledger

    assert run([(2, True), (3, True), (1, False)]).ok
    assert run([(3, True), (1, False), (2, False)]).ok
    assert not run([(3, True), (2, True), (1, False)]).ok  # the tail newest first
    assert not run([(2, False), (3, True), (1, False)]).ok  # the tail acknowledged early
    ledger, conn, stream = _fresh()  # without INLINE the same order is a violation
    for n in (1, 2, 3):
        _send(ledger, conn, stream, n)
    _shutdown(ledger, conn, stream)
    _complete(ledger, conn, stream, 2, canceled=True)
    assert "before older send c:1" in ledger.violations[0]


def test_completions_match_by_order_when_contexts_repeat():
    ledger, conn, stream = _fresh()
    for n in (1, 2):
        ledger.api_call(conn, stream, "send", Status.PENDING,
                        {"send_id": n, "bytes": 1, "flags": 0, "client_context": None})
    _shutdown(ledger, conn, stream)
    ledger.api_call(conn, stream, "send", Status.PENDING, {"send_id": 3, "bytes": 1, "flags": 0, "client_context": None})
    # With one context for all, an acknowledgement answers the oldest send it may, and a
    # canceled completion the late send (#3, canceled when applied after the shutdown),
    # so the two acknowledgements after it answer #1 and #2.
    for canceled in (True, False, False):
        ledger.stream_event(conn, stream, ev.SendComplete(canceled=canceled, client_context=None, send_id=0))
    assert ledger.ok and ledger.pending == 0, ledger.summary()
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context=None, send_id=0))
    assert ledger.violations == ["c stream id=0: duplicate SEND_COMPLETE for send c:2 (client_context=None)"]


@pytest.mark.asyncio
async def test_a_late_canceled_send_with_the_context_of_an_acknowledged_one_is_no_violation():
    """FIN send and a send after it share a context (None): the late one is canceled at
    once, the FIN send acknowledged later. Matching the cancel to the FIN send made the
    acknowledgement look like one for bytes the peer never received."""
    pair = await open_pair(transport="memory")
    try:
        stream = pair.client.open_stream()
        stream.start()
        stream.send(b"a", SendFlags.FIN)
        stream.send(b"b")
        await stream.wait_shutdown_complete(timeout=10)
    finally:
        await pair.shutdown()
    assert pair.ledger.ok, pair.ledger.summary()
    assert pair.ledger.report()["canceled"] == 1 and pair.ledger.report()["acked"] == 1


def test_stack_send_ids_are_not_used_to_match():
    """The stack's send ids in events are ignored: swapped ids change nothing."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, ctx="a")
    _send(ledger, conn, stream, 2, ctx="b")
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context="a", send_id=2))
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context="b", send_id=1))
    assert ledger.ok, ledger.summary()


def test_stalled_needs_a_live_started_or_starting_stream():
    ledger = Ledger()
    conn, stream = _fake()
    _send(ledger, conn, stream, 1, flags=SendFlags.FIN)  # on a stream never started
    assert ledger.mark_stalled() == []
    _send(ledger, conn, stream, 2, flags=SendFlags.START)
    assert [s["send"] for s in ledger.stall_candidates() and ledger.mark_stalled()] == [1, 2]
    ledger = Ledger()
    conn, stream = _fake()
    _send(ledger, conn, stream, 1, flags=SendFlags.FIN)
    _send(ledger, conn, stream, 2, flags=SendFlags.START)
    _complete(ledger, conn, stream, 2, canceled=True)  # a late START send starts nothing
    assert ledger.mark_stalled() == [] and ledger.ok
    _started(ledger, conn, stream)
    assert [s["client_context"] for s in ledger.mark_stalled()] == ["1"]
    assert not ledger.ok and ledger.stalled[0]["detected"] == "still pending after the liveness deadline"
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    _send(ledger, conn, stream, 1)
    ledger.api_call(conn, None, "connection_shutdown", Status.PENDING, {"flags": 0, "error_code": 0})
    assert ledger.mark_stalled() == []  # a connection being shut down is not live


@pytest.mark.parametrize("other_thread", [False, True])
def test_a_late_run_may_split_only_when_sends_came_from_another_thread(other_thread):
    """Sends from another thread race the worker: it may flush part of the sends made
    after a graceful shutdown call (those get acknowledged later) before it applies the
    shutdown, which cancels the rest at once. From one thread that cannot happen, so
    there the late sends stay in order."""
    import threading

    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)  # events come on this (the worker's) thread

    def calls():
        _send(ledger, conn, stream, 1)
        _shutdown(ledger, conn, stream)
        _send(ledger, conn, stream, 2)  # flushed before the shutdown applied
        _send(ledger, conn, stream, 3)  # applied after it: canceled at once

    if other_thread:
        worker = threading.Thread(target=calls)
        worker.start()
        worker.join()
    else:
        calls()
    _complete(ledger, conn, stream, 3, canceled=True)
    _complete(ledger, conn, stream, 1)
    _complete(ledger, conn, stream, 2)
    assert ledger.ok is other_thread, ledger.summary()


def test_a_duplicate_after_in_order_completions_is_named_with_its_send():
    """In-order completions are matched in the book's FIFO lane; a later duplicate of one of
    them must still be found and named (the lane's record of completed sends carries over)."""
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    for send_id in (1, 2, 3):
        _send(ledger, conn, stream, send_id)
    _complete(ledger, conn, stream, 1)
    _complete(ledger, conn, stream, 2)
    assert ledger.ok
    _complete(ledger, conn, stream, 2)  # duplicate of an in-order completion
    _complete(ledger, conn, stream, 3)
    assert ledger.violations == ["c stream id=0: duplicate SEND_COMPLETE for send c:2 (client_context=2)"]
    assert ledger.report()["pending"] == 0


def test_a_queued_range_that_differs_is_named_in_the_lane_as_after_it():
    """The range check of queued sends holds whether the book is still plain FIFO or not."""
    for general in (False, True):
        ledger = Ledger()
        conn, stream = _fake()
        _started(ledger, conn, stream)
        _send(ledger, conn, stream, 1)
        _send(ledger, conn, stream, 2)
        if general:
            _complete(ledger, conn, stream, 2, canceled=True)  # out of order: the book leaves the lane
            ledger.violations.clear()
        ledger.sends_queued(conn, stream, [(1, 0, 1, False)])
        assert ledger.violations == []
        ledger.sends_queued(conn, stream, [(2, 5, 6, False)] if not general else [(3, 1, 2, False)])
        if general:  # send 2 completed (canceled) before it was queued: nothing was accepted after it
            assert ledger.violations == ["c stream id=0: a send was queued at [1, 2) that was never accepted"]
        else:
            assert ledger.violations == ["c stream id=0: send c:2 (client_context=2) queued at [5, 6) fin=False, "
                                         "but the sends before it put it at [1, 2) fin=False"]

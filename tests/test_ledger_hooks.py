"""The ledger's per-send hooks (send_call, sends_queued, stream_event, stream_data_received)
judge on fast paths: the cached stream of the last send call, in-order completions and
queued ranges matched in the book's FIFO lane, RECEIVE skipped on a live, started
stream. The tests feed hand-made observations, mostly an input the ledger must reject
next to one it must accept, and check that the fast paths are taken where they should be
(a plain stream's book stays in its lane) and judge as the general rules do."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from quicsim import ConnectionEventType, Ledger, ReceiveFlags, SendFlags, Status, StreamEventType, events as ev

from .test_ledger import _complete, _fake, _fresh, _send, _shutdown, _started
from .test_ledger_strength import _ends


def _book(ledger, stream):
    return ledger._streams[id(stream)].book


def _receive(ledger, conn, stream):
    ledger.stream_event(conn, stream, ev.receive(0, b"x", ReceiveFlags.NONE))


# ------------------------------------------------------------ counts


def test_counts_over_completions_the_general_rules_judge():
    """Late sends after a graceful shutdown are canceled ahead of the older send: those
    completions take the general rules, and each one is counted."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1)
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 2)
    _send(ledger, conn, stream, 3)
    _complete(ledger, conn, stream, 2, canceled=True)
    _complete(ledger, conn, stream, 3, canceled=True)
    _complete(ledger, conn, stream, 1)
    report = ledger.report()
    assert report["ok"], ledger.summary()
    assert (report["sends"], report["completions"], report["canceled"], report["acked"], report["pending"]) == (
        3, 3, 2, 1, 0)


def test_each_rejected_send_is_counted():
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, status=Status.INVALID_STATE)
    assert ledger.report()["rejected"] == 1
    _send(ledger, conn, stream, 2)
    _send(ledger, conn, stream, 3, status=Status.INVALID_STATE)
    report = ledger.report()
    assert (report["sends"], report["rejected"], report["pending"]) == (1, 2, 1)
    assert "1 sends accepted, 0 completions (0 acked, 0 canceled), 2 rejected, 1 pending" in ledger.summary()


# ------------------------------------------------------------ the fast paths are used


def test_in_order_completions_and_queued_ranges_stay_in_the_lane_on_every_stream():
    """In-order completions and the expected queued ranges are matched in the lane, on
    the stream of the last send call and on another; a plain stream's book never turns
    general."""
    ledger, conn, first = _fresh()
    second = SimpleNamespace(id=4, handle=2)
    _started(ledger, conn, second)
    _send(ledger, conn, first, 1, ctx="a")
    _send(ledger, conn, first, 2, ctx="b", flags=SendFlags.FIN)
    _send(ledger, conn, second, 3, ctx="c")
    _send(ledger, conn, second, 4, ctx="d", flags=SendFlags.FIN)  # the last send call's stream
    ledger.sends_queued(conn, first, [(1, 0, 1, False), (2, 1, 2, True)])
    ledger.sends_queued(conn, second, [(3, 0, 1, False), (4, 1, 2, True)])
    for stream, send_id, ctx in ((first, 1, "a"), (second, 3, "c"), (first, 2, "b"), (second, 4, "d")):
        _complete(ledger, conn, stream, send_id, ctx=ctx)
    assert ledger.ok and ledger.pending == 0 and ledger.completions == 4, ledger.summary()
    assert _book(ledger, first).lane is not None and _book(ledger, second).lane is not None


def test_a_completion_with_another_context_is_judged_even_when_the_front_has_none():
    """The oldest pending send has no context (None): a completion carrying one it never
    had is a context violation, not an in-order completion."""
    ledger, conn, stream = _fresh()
    ledger.api_call(conn, stream, "send", Status.PENDING,
                    {"send_id": 1, "bytes": 1, "flags": 0, "client_context": None})
    ledger.api_call(conn, stream, "send", Status.PENDING,
                    {"send_id": 2, "bytes": 1, "flags": 0, "client_context": None})
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context=None, send_id=1))
    assert ledger.ok, ledger.summary()
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=False, client_context="x", send_id=2))
    assert ledger.violations == ["c stream id=0: SEND_COMPLETE carries client_context='x', expected None (send c:2)"]
    assert ledger.pending == 0


# ------------------------------------------------------------ queued ranges


def test_every_range_of_a_flush_is_checked_after_one_that_matched():
    """One notification may queue several sends: a range matched in the lane does not end
    the check of the ones after it."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1)
    _send(ledger, conn, stream, 2)
    _send(ledger, conn, stream, 3)
    ledger.sends_queued(conn, stream, [(1, 0, 1, False), (2, 1, 2, False)])
    assert ledger.ok, ledger.summary()
    ledger.sends_queued(conn, stream, [(3, 2, 3, False)])
    assert ledger.ok, ledger.summary()
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1)
    _send(ledger, conn, stream, 2)
    ledger.sends_queued(conn, stream, [(1, 0, 1, False), (2, 5, 6, False)])
    assert ledger.violations == ["c stream id=0: send c:2 (client_context=2) queued at [5, 6) fin=False, "
                                 "but the sends before it put it at [1, 2) fin=False"]


def test_a_queued_range_is_wrong_by_its_end_or_its_fin_alone():
    def queued(span):
        ledger, conn, stream = _fresh()
        _send(ledger, conn, stream, 1)
        ledger.sends_queued(conn, stream, [(1, *span)])
        return ledger.violations

    assert queued((0, 1, False)) == []
    assert queued((0, 2, False)) == ["c stream id=0: send c:1 (client_context=1) queued at [0, 2) fin=False, "
                                     "but the sends before it put it at [0, 1) fin=False"]
    assert queued((0, 1, True)) == ["c stream id=0: send c:1 (client_context=1) queued at [0, 1) fin=True, "
                                    "but the sends before it put it at [0, 1) fin=False"]


def test_queued_ranges_are_checked_on_a_stream_other_than_the_last_one_sent_on():
    ledger, conn, first = _fresh()
    second = SimpleNamespace(id=4, handle=2)
    _started(ledger, conn, second)
    _send(ledger, conn, first, 1)
    _send(ledger, conn, second, 2)
    ledger.sends_queued(conn, first, [(1, 0, 1, False)])
    assert ledger.ok, ledger.summary()
    _send(ledger, conn, first, 3)
    _send(ledger, conn, second, 4)
    ledger.sends_queued(conn, first, [(3, 7, 8, False)])
    assert ledger.violations == ["c stream id=0: send c:3 (client_context=3) queued at [7, 8) fin=False, "
                                 "but the sends before it put it at [1, 2) fin=False"]


# ------------------------------------------------------------ RECEIVE


def test_a_receive_on_a_started_stream_is_no_finding_but_after_shutdown_complete_it_is():
    ledger, conn, stream = _fresh()
    _receive(ledger, conn, stream)
    assert ledger.ok, ledger.summary()
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    _receive(ledger, conn, stream)
    assert ledger.violations == ["c stream id=0: RECEIVE delivered after SHUTDOWN_COMPLETE"]


def test_a_receive_on_a_local_stream_before_its_start_complete_is_flagged():
    ledger, conn, _ = _fresh()  # the connection's events are being delivered
    peer_stream = SimpleNamespace(id=1, handle=3)
    ledger.connection_event(conn, SimpleNamespace(type=ConnectionEventType.PEER_STREAM_STARTED,
                                                  stream=SimpleNamespace(core=peer_stream)))
    _receive(ledger, conn, peer_stream)  # a peer's stream needs no START_COMPLETE
    assert ledger.ok, ledger.summary()
    local = SimpleNamespace(id=None, handle=2)
    ledger.api_call(conn, local, "open_stream", Status.SUCCESS, {})
    _receive(ledger, conn, local)
    assert ledger.violations == ["c stream handle=2: RECEIVE delivered to a stream that never started"]


def test_a_receive_on_a_stream_the_ledger_never_saw_is_judged():
    """A history may name a stream first in an event: it is a local stream that never started."""
    ledger, conn, _ = _fresh()
    unseen = SimpleNamespace(id=None, handle=9)
    _receive(ledger, conn, unseen)
    assert ledger.violations == ["c stream handle=9: RECEIVE delivered to a stream that never started"]


# ------------------------------------------------------------ PEER_ACCEPTED and liveness


def test_a_stream_the_peer_has_not_accepted_cannot_stall_until_it_does():
    ledger = Ledger()
    conn, stream = _fake()
    ledger.stream_event(conn, stream, ev.StartComplete(status=Status.SUCCESS, id=0, peer_accepted=False))
    _send(ledger, conn, stream, 1)
    assert ledger.mark_stalled() == []  # waits for the peer's stream credit
    ledger.stream_event(conn, stream, SimpleNamespace(type=StreamEventType.PEER_ACCEPTED))
    assert [s["send"] for s in ledger.mark_stalled()] == [1]


def test_a_start_complete_that_does_not_say_counts_as_accepted():
    ledger = Ledger()
    conn, stream = _fake()
    ledger.stream_event(conn, stream, SimpleNamespace(type=StreamEventType.START_COMPLETE, status=Status.SUCCESS))
    _send(ledger, conn, stream, 1)
    assert [s["send"] for s in ledger.mark_stalled()] == [1]


# ------------------------------------------------------------ the wire witness


def _watched_pair():
    """A ledger on both (hand-made) ends, client stream 0 started; the server is not yet seen."""
    ledger = Ledger()
    client, server = _ends()
    stream = SimpleNamespace(id=0, handle=1)
    _started(ledger, client, stream)
    return ledger, client, server, stream


def _acknowledge_fin_send(ledger, client, stream, length=5):
    ledger.api_call(client, stream, "send", Status.PENDING,
                    {"send_id": 1, "bytes": length, "flags": int(SendFlags.FIN), "client_context": "s"})
    _complete(ledger, client, stream, 1, ctx="s")


def test_the_peer_may_be_seen_first_by_the_data_its_stack_received():
    """The server's first observation is stream data: it is paired with the client for
    the wire witness all the same."""
    for length, ok in ((5, True), (6, False)):
        ledger, client, server, stream = _watched_pair()
        ledger.stream_data_received(server, None, 0, 5, True)
        _acknowledge_fin_send(ledger, client, stream, length)
        assert ledger.ok is ok, ledger.summary()
    assert ledger.violations == [
        "client stream id=0: send client:1 (client_context='s') acknowledged but never received: bytes [5, 6) "
        "never reached server's QUIC stack (it received 5 bytes and the FIN)"]


def test_a_fin_received_with_a_later_chunk_counts():
    for chunks, ok in ((((3, False), (2, True)), True), (((3, False), (2, False)), False)):
        ledger, client, server, stream = _watched_pair()
        for length, fin in chunks:
            ledger.stream_data_received(server, None, 0, length, fin)
        _acknowledge_fin_send(ledger, client, stream)
        assert ledger.ok is ok, ledger.summary()
    assert ledger.violations == [
        "client stream id=0: send client:1 (client_context='s') acknowledged but never received: its FIN "
        "never reached server's QUIC stack (it received 5 bytes)"]


def test_an_acknowledged_completion_the_general_rules_allow_is_witnessed():
    """Sends from another thread: the late run splits where its cancel starts, and its
    older part is acknowledged after the first run completed (the general rules allow
    it). Its bytes must have reached the peer like any other acknowledged send's."""
    for received, ok in ((2, True), (1, False)):
        ledger, client, server, stream = _watched_pair()
        ledger.connection_event(server, SimpleNamespace(type=ConnectionEventType.CONNECTED))

        def calls():
            _send(ledger, client, stream, 1)
            _shutdown(ledger, client, stream)
            _send(ledger, client, stream, 2)  # flushed before the shutdown applied
            _send(ledger, client, stream, 3)  # applied after it: canceled at once

        worker = threading.Thread(target=calls)
        worker.start()
        worker.join()
        ledger.stream_data_received(server, None, 0, received, False)
        _complete(ledger, client, stream, 3, canceled=True)
        _complete(ledger, client, stream, 1)
        _complete(ledger, client, stream, 2)
        assert ledger.ok is ok and ledger.pending == 0, ledger.summary()
    assert ledger.violations == [
        "client stream id=0: send client:2 (client_context=2) acknowledged but never received: bytes [1, 2) "
        "never reached server's QUIC stack (it received 1 bytes)"]

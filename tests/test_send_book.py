"""Rule 5's book (quicsim.send_order.SendBook) on its own and through the ledger: the FIFO
lane keeps plain streams as tuples, and every way out of it judges as the general rules
do. Hand-made observations, as in test_ledger.py; each judging test has an input the
ledger must reject next to one it must accept."""

from __future__ import annotations

from collections import deque

import pytest

from quicsim import Ledger, SendFlags, Status, events as ev
from quicsim.send_order import Send, SendBook

from .test_ledger import _fake, _shutdown, _started

_FIN = int(SendFlags.FIN)
_DELAY = int(SendFlags.DELAY_SEND)


def _fresh():
    ledger = Ledger()
    conn, stream = _fake()
    _started(ledger, conn, stream)
    return ledger, conn, stream


def _send(ledger, conn, stream, send_id, ctx, flags=0, length=1):
    """A send call with exactly this client context (None included)."""
    ledger.api_call(conn, stream, "send", Status.PENDING,
                    {"send_id": send_id, "bytes": length, "flags": flags, "client_context": ctx})


def _complete(ledger, conn, stream, ctx, canceled=False):
    ledger.stream_event(conn, stream, ev.SendComplete(canceled=canceled, client_context=ctx, send_id=0))


def _judge(book, canceled, ctx):
    """A completion as the ledger judges it: the one-step path first, else the full rules."""
    done = book.complete_front(canceled, ctx)
    return (done, None, None) if done is not None else book.complete(canceled, ctx)


# ------------------------------------------------------------ the lane


class _Hashable:
    """An application object as client context: hashable by identity."""


def test_a_plain_fifo_stream_stays_in_the_lane():
    """In-order sends, their queued ranges and their completions (acknowledged, then a
    canceled one) with contexts of every kind never make a Send: the lane is what keeps
    a pending send small. Each step reports the entry it consumed."""
    contexts = [1, "two", None, b"four", 5.5, _Hashable(), [7], {"eight": 8}]
    book = SendBook()
    for seq, ctx in enumerate(contexts, 1):
        book.add(seq, 100 + seq, 10, _FIN if seq == len(contexts) else 0, ctx)
    assert book.lane is not None and len(book.lane) == len(contexts)
    for seq in range(1, len(contexts) + 1):
        assert book.lane_queued(10 * (seq - 1), 10 * seq, seq == len(contexts)), seq
    for seq, ctx in enumerate(contexts, 1):
        entry = book.complete_front(seq == len(contexts), ctx)
        assert type(entry) is tuple and entry[0] == seq and entry[4] is ctx, seq
    assert book.lane is not None and not book.lane and not book.unqueued
    assert book.by_key is None and book.runs == deque([deque()])
    assert all(type(done) is tuple for done in book.done_keys.values())
    assert book.complete_front(False, 1) is None  # nothing left: the full rules judge it


def test_the_lane_skips_a_send_completed_before_it_was_queued():
    """A send canceled before it was queued is never queued: the next queued range is the
    next send's, matched in the lane."""
    book = SendBook()
    book.add(1, 1, 10, 0, "a")
    book.add(2, 2, 10, 0, "b")
    assert book.complete_front(True, "a")[0] == 1
    assert book.lane_queued(10, 20, False)
    assert book.lane is not None and not book.unqueued


def test_leaving_the_lane_keeps_pending_completed_and_unqueued_sends():
    book = SendBook()
    for seq, ctx in ((1, "a"), (2, "b"), (3, "c")):
        book.add(seq, seq, 10, 0, ctx)
    assert book.lane_queued(0, 10, False)
    assert book.complete_front(False, "a")[0] == 1
    pending = book.pending()  # the general rules from here on
    assert book.lane is None
    assert all(type(send) is Send for send in pending) and [s.seq for s in pending] == [2, 3]
    assert [(s.offset, s.end, s.done) for s in pending] == [(10, 20, False), (20, 30, False)]
    done = book.done_keys["a"]
    assert type(done) is Send and done.seq == 1 and done.done is True
    assert book.queued() is pending[0]
    send, problem, _ = book.complete(False, "a")
    assert (send.seq, problem) == (1, "duplicate")


# ------------------------------------------------------------ one step in a general book


def test_complete_front_finishes_the_front_of_a_general_book_in_one_step():
    """Once general, the book still completes the oldest pending send in one step when
    nothing else could claim the completion: acknowledged even while a later run waits,
    canceled when there is one run only, with any kind of context."""
    unhashable = [1]
    book = SendBook()
    book.add(1, 1, 10, 0, unhashable)
    book.add(2, 2, 10, 0, "b")
    book.add(3, 3, 10, _FIN, "c")
    book.add(4, 4, 10, 0, "late")  # after the FIN: a second run, general rules
    assert book.lane is None and len(book.runs) == 2
    assert book.complete_front(True, "late") is None  # a later run could claim a cancel
    late, problem, older = book.complete(True, "late")
    assert (late.seq, problem, older) == (4, None, None)
    by_key = book.by_key
    first = book.complete_front(False, unhashable)
    assert type(first) is Send and first.seq == 1 and first.done
    assert book.complete_front(False, "b").seq == 2
    assert book.complete_front(False, "x") is None  # another context: judged in full
    assert book.by_key is by_key and "b" not in by_key and [s.seq for s in book.pending()] == [3]

    book = SendBook()
    for seq in (1, 2, 3):
        book.add(seq, seq, 10, 0, seq)
    book.pending()  # general, one run
    assert book.lane is None and len(book.runs) == 1
    assert book.complete_front(True, 1).seq == 1
    assert book.complete_front(False, 2).seq == 2
    assert book.by_key is None  # in-order completions never index the contexts
    assert book.complete_front(True, 3).seq == 3 and book.front() is None
    assert book.complete_front(False, 3) is None  # a duplicate: judged in full
    assert book.complete(False, 3)[1] == "duplicate"


# ------------------------------------------------------------ judging, lane and general alike


@pytest.mark.parametrize("general", [False, True], ids=["lane", "general"])
@pytest.mark.parametrize("sent, completed", [(None, "x"), (None, [1]), ([1], None)],
                         ids=["none-then-str", "none-then-unhashable", "unhashable-then-none"])
def test_a_completion_with_another_context_is_flagged(general, sent, completed):
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, sent)
    if general:
        _send(ledger, conn, stream, 2, "fin", flags=_FIN)
        _send(ledger, conn, stream, 3, "late")  # accepted after the FIN send
        _complete(ledger, conn, stream, "late", canceled=True)
    else:
        _send(ledger, conn, stream, 2, "next")
    assert ledger.ok, ledger.summary()
    _complete(ledger, conn, stream, completed)
    assert ledger.violations == [f"c stream id=0: SEND_COMPLETE carries client_context={completed!r}, "
                                 f"expected {sent!r} (send c:1)"]
    ledger, conn, stream = _fresh()  # the same context is no violation
    _send(ledger, conn, stream, 1, sent)
    _complete(ledger, conn, stream, sent)
    assert ledger.ok and ledger.pending == 0, ledger.summary()


def test_stack_send_ids_do_not_order_the_lane():
    """The lane orders by the ledger's own call numbers: a stack whose send ids run
    otherwise (a replayed history, another stack) is judged the same."""
    for ids in ((1, 2), (7, 1)):
        ledger, conn, stream = _fresh()
        _send(ledger, conn, stream, ids[0], "a")
        _send(ledger, conn, stream, ids[1], "b")
        ledger.sends_queued(conn, stream, [(ids[0], 0, 1, False)])
        _complete(ledger, conn, stream, "a")
        ledger.sends_queued(conn, stream, [(ids[1], 1, 2, False)])
        _complete(ledger, conn, stream, "b")
        assert ledger.ok and ledger.pending == 0, (ids, ledger.summary())
        ledger, conn, stream = _fresh()  # the second send queued at a wrong range is still named
        _send(ledger, conn, stream, ids[0], "a")
        _send(ledger, conn, stream, ids[1], "b")
        ledger.sends_queued(conn, stream, [(ids[0], 0, 1, False)])
        _complete(ledger, conn, stream, "a")
        ledger.sends_queued(conn, stream, [(ids[1], 1, 3, False)])
        assert ledger.violations == [f"c stream id=0: send c:{ids[1]} (client_context='b') queued at [1, 3) "
                                     "fin=False, but the sends before it put it at [1, 2) fin=False"], ids


@pytest.mark.parametrize("flags, queued, put", [
    (0, (0, 3, False), "[0, 1) fin=False"),  # the right offset, the wrong end
    (0, (0, 1, True), "[0, 1) fin=False"),  # a FIN the send did not carry
    (_FIN, (0, 1, False), "[0, 1) fin=True"),  # a FIN send queued without its FIN
])
def test_a_queued_range_or_fin_that_differs_is_flagged_in_the_lane(flags, queued, put):
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, "a", flags=flags)
    ledger.sends_queued(conn, stream, [(1, *queued)])
    offset, end, fin = queued
    assert ledger.violations == [f"c stream id=0: send c:1 (client_context='a') queued at [{offset}, {end}) "
                                 f"fin={fin}, but the sends before it put it at {put}"]
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, "a", flags=flags)
    ledger.sends_queued(conn, stream, [(1, 0, 1, bool(flags & _FIN))])
    assert ledger.ok, ledger.summary()


def test_a_canceled_completion_for_a_context_no_run_starts_with_is_out_of_order():
    """Two pending sends share the context, neither heads a run: a canceled completion
    for it overtakes the older send."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, "a")
    _send(ledger, conn, stream, 2, "b")
    _send(ledger, conn, stream, 3, "b")
    _complete(ledger, conn, stream, "b", canceled=True)
    assert ledger.violations == [
        "c stream id=0: SEND_COMPLETE (canceled) for send c:2 (client_context='b') "
        "before older send c:1 (client_context='a')"]
    ledger, conn, stream = _fresh()
    for seq, ctx in ((1, "a"), (2, "b"), (3, "b")):
        _send(ledger, conn, stream, seq, ctx)
    for ctx in ("a", "b", "b"):
        _complete(ledger, conn, stream, ctx, canceled=True)
    assert ledger.ok and ledger.pending == 0, ledger.summary()


def test_an_abort_after_a_late_send_of_a_shared_context_cancels_all_in_order():
    """Two sends and a late one share a context: the late one is canceled first (when the
    shutdown is applied), then an abort cancels the other two, oldest first."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, "a")
    _send(ledger, conn, stream, 2, "a")
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 3, "a")
    for _ in range(3):
        _complete(ledger, conn, stream, "a", canceled=True)
    assert ledger.ok and ledger.pending == 0, ledger.summary()
    _complete(ledger, conn, stream, "a", canceled=True)
    assert ledger.violations == ["c stream id=0: duplicate SEND_COMPLETE for send c:2 (client_context='a')"]


def test_a_send_accepted_after_the_contexts_were_indexed_joins_its_context():
    """A completion out of front order indexes the pending sends by context; a send
    accepted after that with the context of an older pending send is found after it."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, "a")
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 2, "late")
    _complete(ledger, conn, stream, "late", canceled=True)  # not the front: indexed
    _send(ledger, conn, stream, 3, "a")
    _complete(ledger, conn, stream, "a")
    _complete(ledger, conn, stream, "a", canceled=True)
    assert ledger.ok and ledger.pending == 0, ledger.summary()
    _complete(ledger, conn, stream, "a")
    assert ledger.violations == ["c stream id=0: duplicate SEND_COMPLETE for send c:3 (client_context='a')"]


def test_a_fin_send_starts_a_new_run_in_a_general_book_too():
    """As in the lane (test_ledger.py), a send accepted after a FIN send may be canceled
    before the older sends complete; the same send without the FIN before it may not."""
    for fin in (True, False):
        book = SendBook()
        book.add(1, 1, 10, 0, "a")
        book.pending()  # general rules from here on
        book.add(2, 2, 10, _FIN if fin else 0, "fin")
        book.add(3, 3, 10, 0, "late")
        late, problem, older = _judge(book, True, "late")
        assert late.seq == 3
        if fin:
            assert (problem, older) == (None, None)
        else:
            assert (problem, older.seq) == ("order", 1)


@pytest.mark.parametrize("flags, stalled", [
    ((_DELAY, _DELAY), []),  # held back by DELAY_SEND
    ((_DELAY, _DELAY, 0), [1, 2, 3]),  # a send without DELAY_SEND flushes what came before
    ((_DELAY, _DELAY, _FIN | _DELAY), [1, 2, 3]),  # so does a FIN
    ((_DELAY, 0, _DELAY), [1, 2]),
])
def test_delay_send_data_is_due_once_a_later_send_flushes_it(flags, stalled):
    ledger, conn, stream = _fresh()
    for seq, flag in enumerate(flags, 1):
        _send(ledger, conn, stream, seq, seq, flags=flag)
    assert [s["send"] for s in ledger.mark_stalled()] == stalled

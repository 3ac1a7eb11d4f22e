"""The ledger's judging where the mutation run (python -m bench.mutation) found it
untested: repeated client contexts, the INLINE tail that a graceful shutdown splits off,
and the exact findings it reports. Hand-made observations, as in test_ledger.py; each
test has an input the ledger must reject next to one it must accept."""

from __future__ import annotations

from quicsim import Ledger, SendFlags, Status, StreamShutdownFlags, events as ev

from .test_ledger import _complete, _fake, _fresh, _send, _shutdown, _started

_INLINE_GRACEFUL = StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE


def _pending(ledger):
    return [p["send"] for p in ledger.pending_sends()]


def test_a_repeated_context_does_not_hide_an_older_send():
    """Two pending sends share a context behind an older one: an acknowledged completion
    with that context answers the first of the two and overtakes the older send."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, ctx="x")
    _send(ledger, conn, stream, 2, ctx="a")
    _send(ledger, conn, stream, 3, ctx="a")
    _complete(ledger, conn, stream, 0, ctx="a")
    assert ledger.violations == [
        "c stream id=0: SEND_COMPLETE (acknowledged) for send #2 (client_context='a') "
        "before older send #1 (client_context='x')"]
    assert _pending(ledger) == [1, 3]


def test_a_repeated_context_of_late_sends_is_canceled_from_the_head_of_their_run():
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, ctx="x")
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 2, ctx="a")
    _send(ledger, conn, stream, 3, ctx="a")
    _complete(ledger, conn, stream, 0, canceled=True, ctx="a")
    assert _pending(ledger) == [1, 3]
    _complete(ledger, conn, stream, 0, canceled=True, ctx="a")
    _complete(ledger, conn, stream, 0, ctx="x")
    assert ledger.ok and ledger.pending == 0, ledger.summary()


def test_the_inline_tail_stays_behind_the_sends_before_it():
    """An INLINE graceful shutdown cancels the tail of the unapplied sends: the rest of
    the tail and the older sends are still owed, oldest first, and a leak names each."""
    ledger, conn, stream = _fresh()
    for n in (1, 2, 3, 4):
        _send(ledger, conn, stream, n)
    _shutdown(ledger, conn, stream, _INLINE_GRACEFUL, Status.SUCCESS)
    _complete(ledger, conn, stream, 3, canceled=True)
    assert _pending(ledger) == [1, 2, 4]
    _complete(ledger, conn, stream, 1)  # the oldest: in order
    assert ledger.ok, ledger.summary()
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    assert [leak["send"] for leak in ledger.leaks] == [2, 4]


def test_the_inline_tail_goes_before_sends_accepted_after_the_shutdown():
    ledger, conn, stream = _fresh()
    for n in (1, 2, 3, 4):
        _send(ledger, conn, stream, n)
    _shutdown(ledger, conn, stream, _INLINE_GRACEFUL, Status.SUCCESS)
    _send(ledger, conn, stream, 5)
    _complete(ledger, conn, stream, 3, canceled=True)
    assert _pending(ledger) == [1, 2, 4, 5]
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    assert [leak["send"] for leak in ledger.leaks] == [1, 2, 4, 5]

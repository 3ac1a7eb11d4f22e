"""The ledger's judging where the mutation run (python -m bench.mutation) found it
untested: repeated client contexts, the INLINE tail that a graceful shutdown splits off,
and the exact findings it reports. Hand-made observations, as in test_ledger.py; each
test has an input the ledger must reject next to one it must accept."""

from __future__ import annotations

from types import SimpleNamespace

from quicsim import ConnectionEventType, Ledger, SendFlags, Status, StreamShutdownFlags, events as ev

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
        "c stream id=0: SEND_COMPLETE (acknowledged) for send c:2 (client_context='a') "
        "before older send c:1 (client_context='x')"]
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


def test_a_canceled_completion_matches_the_late_send_of_its_context_not_an_older_one():
    """Context "a" is pending before and after a graceful shutdown: a canceled completion
    for it is the late one's (which may overtake), not the older one's (which may not)."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, ctx="x")
    _send(ledger, conn, stream, 2, ctx="a")
    _shutdown(ledger, conn, stream)
    _send(ledger, conn, stream, 3, ctx="a")
    _complete(ledger, conn, stream, 0, canceled=True, ctx="a")
    assert ledger.ok and _pending(ledger) == [1, 2], ledger.summary()
    _complete(ledger, conn, stream, 0, ctx="x")
    _complete(ledger, conn, stream, 0, ctx="a")
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


# -- the wire witness: one ledger on both ends (hand-made ends sharing a connection id)

def _ends(settings=None):
    settings = settings if settings is not None else SimpleNamespace(send_buffering=False)
    quic = SimpleNamespace(original_destination_connection_id=b"odcid")
    client = SimpleNamespace(label="client", quic=quic, is_client=True, settings=settings)
    server = SimpleNamespace(label="server", quic=quic, is_client=False, settings=settings)
    return client, server


def _witnessed(received, length=5, flags=SendFlags.FIN, settings=None):
    """One acknowledged send of ``length`` bytes (with ``flags``) on stream 0 after the
    server's stack received ``received`` = (bytes, FIN) on it, or nothing if None."""
    ledger = Ledger()
    client, server = _ends(settings)
    stream = SimpleNamespace(id=0, handle=1)
    _started(ledger, client, stream)
    ledger.connection_event(server, SimpleNamespace(type=ConnectionEventType.CONNECTED))  # the peer is watched
    ledger.api_call(client, stream, "send", Status.PENDING,
                    {"send_id": 1, "bytes": length, "flags": int(flags), "client_context": "s"})
    if received is not None:
        ledger.stream_data_received(server, SimpleNamespace(id=0, handle=1), 0, *received)
    _complete(ledger, client, stream, 1, ctx="s")
    return ledger


def test_the_wire_witness_names_what_never_arrived():
    assert _witnessed((5, True)).ok
    prefix = "client stream id=0: send client:1 (client_context='s') acknowledged but never received: "
    assert _witnessed((5, False)).violations == [
        prefix + "its FIN never reached server's QUIC stack (it received 5 bytes)"]
    assert _witnessed((3, True)).violations == [
        prefix + "bytes [3, 5) never reached server's QUIC stack (it received 3 bytes and the FIN)"]
    assert _witnessed((2, False), flags=0).violations == [
        prefix + "bytes [2, 5) never reached server's QUIC stack (it received 2 bytes)"]
    # A FIN alone (no bytes) the peer's stack never saw: nothing at all arrived on the stream.
    assert _witnessed(None, length=0).violations == [
        prefix + "its FIN never reached server's QUIC stack (it received 0 bytes)"]


def test_the_wire_witness_judges_only_ends_known_to_send_unbuffered():
    """With send buffering (or settings that do not say) a send completes when copied,
    before any byte left: the witness has nothing to hold it to."""
    assert not _witnessed((0, False)).ok
    assert _witnessed((0, False), settings=SimpleNamespace(send_buffering=True)).ok
    assert _witnessed((0, False), settings=SimpleNamespace()).ok  # another system's connection
    ledger = Ledger()
    client, server = _ends()
    del client.settings, server.settings
    stream = SimpleNamespace(id=0, handle=1)
    _started(ledger, client, stream)
    _send(ledger, client, stream, 1)
    _complete(ledger, client, stream, 1)
    assert ledger.ok, ledger.summary()


def test_a_graceful_shutdown_flushes_delay_send_data_so_it_can_stall():
    """DELAY_SEND data waits for a later send (it cannot stall); the FIN a graceful
    shutdown writes sends it, so from then on it is owed a completion."""
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, flags=SendFlags.DELAY_SEND)
    assert ledger.mark_stalled() == []
    _shutdown(ledger, conn, stream)
    assert [s["send"] for s in ledger.mark_stalled()] == [1]


def test_delay_send_data_is_owed_once_a_later_send_flushes_it():
    ledger, conn, stream = _fresh()
    _send(ledger, conn, stream, 1, flags=SendFlags.DELAY_SEND)
    _send(ledger, conn, stream, 2, flags=SendFlags.DELAY_SEND)
    assert ledger.mark_stalled() == []  # held back: nothing is owed yet
    _send(ledger, conn, stream, 3)
    assert [s["send"] for s in ledger.mark_stalled()] == [1, 2, 3]


def test_counts_stay_exact_through_violations_and_leaks():
    ledger, conn, stream = _fresh()
    for n in (1, 2, 3, 4):
        _send(ledger, conn, stream, n)
    _complete(ledger, conn, stream, 2, canceled=True)  # out of order: still answers send #2
    _complete(ledger, conn, stream, 1, canceled=True)
    assert (ledger.pending, ledger.canceled, ledger.completions) == (2, 2, 2)
    ledger.stream_event(conn, stream, ev.ShutdownComplete())
    assert [leak["send"] for leak in ledger.leaks] == [3, 4]
    assert ledger.pending == 0 and ledger.report()["pending"] == 0


def test_unhashable_contexts_are_told_apart_by_identity():
    ledger, conn, stream = _fresh()
    first, second = ["a"], ["a"]  # equal, unhashable, distinct objects
    _send(ledger, conn, stream, 1, ctx=first)
    _send(ledger, conn, stream, 2, ctx=second)
    _complete(ledger, conn, stream, 0, ctx=second)
    assert ledger.violations == [
        "c stream id=0: SEND_COMPLETE (acknowledged) for send c:2 (client_context=['a']) "
        "before older send c:1 (client_context=['a'])"]
    _complete(ledger, conn, stream, 0, ctx=first)
    assert ledger.pending == 0


def test_an_out_of_order_acknowledged_completion_is_still_witnessed():
    ledger = Ledger()
    client, server = _ends()
    stream = SimpleNamespace(id=0, handle=1)
    _started(ledger, client, stream)
    ledger.connection_event(server, SimpleNamespace(type=ConnectionEventType.CONNECTED))
    for n in (1, 2):
        ledger.api_call(client, stream, "send", Status.PENDING,
                        {"send_id": n, "bytes": 5, "flags": 0, "client_context": n})
    ledger.stream_data_received(server, SimpleNamespace(id=0, handle=1), 0, 5, False)  # only send 1's bytes
    _complete(ledger, client, stream, 2)
    assert ledger.violations == [
        "client stream id=0: SEND_COMPLETE (acknowledged) for send client:2 (client_context=2) "
        "before older send client:1 (client_context=1)",
        "client stream id=0: send client:2 (client_context=2) acknowledged but never received: bytes [5, 10) "
        "never reached server's QUIC stack (it received 5 bytes)"]

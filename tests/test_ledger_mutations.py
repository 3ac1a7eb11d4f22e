"""The ledger catches a broken core, by name. Each mutation below patches one core method
for the length of one test (nothing in quicsim/core changes); every test runs the same
program unmutated too, so the ledger is shown to pass the real core and fail the broken
one. All runs use the in-memory link on virtual time with one ledger on both ends.

The mutations and the core methods they patch:

- ``cancel_late_newest_first``: ``StreamCore._send_shutdown_graceful`` (its calls of
  ``StreamCore._cancel_late`` are collected and replayed newest first)
- ``acknowledge_on_queue``: ``StreamCore.apply_send_flush`` (queued sends are completed
  as acknowledged at once, via ``StreamCore._complete`` and ``SendQueue.requests``)
- ``complete_twice``: ``StreamCore._complete``
- ``hold_acknowledged``: ``SendQueue.pop_acknowledged`` (acknowledged sends stay queued
  until a shutdown cancels them)
"""

from __future__ import annotations

import asyncio

import pytest

from quicsim import Status, StreamEventType, StreamShutdownFlags, scenario
from quicsim.core.send_queue import SendQueue
from quicsim.core.stream import StreamCore
from quicsim.liveness import VIRTUAL_LIVENESS_SECONDS, liveness_phase
from quicsim.pair import open_pair
from quicsim.runner import run_job
from quicsim.transport.virtual_loop import run_virtual

from .conftest import Recorder


@pytest.fixture(autouse=True)
def _no_core_self_check(monkeypatch):
    """These mutations break the core on purpose: the ledger, not the core's own
    exactly-once check (QUICSIM_CHECK_INVARIANTS), must be what catches them."""
    monkeypatch.delenv("QUICSIM_CHECK_INVARIANTS", raising=False)

# ------------------------------------------------------------------ the mutations


def cancel_late_newest_first(monkeypatch) -> None:
    """Canceled completions of the sends a graceful shutdown (or FIN) overtakes come
    newest first instead of in send order."""
    graceful, cancel_late = StreamCore._send_shutdown_graceful, StreamCore._cancel_late

    def mutated(self):
        held: list = []
        self._cancel_late = held.append
        try:
            graceful(self)
        finally:
            del self._cancel_late
        for request in reversed(held):
            cancel_late(self, request)

    monkeypatch.setattr(StreamCore, "_send_shutdown_graceful", mutated)


def acknowledge_on_queue(monkeypatch) -> None:
    """A send is completed as acknowledged as soon as it is queued, before any ACK."""
    flush = StreamCore.apply_send_flush

    def mutated(self):
        flush(self)
        while self.sends.requests:
            self._complete(self.sends.requests.popleft(), canceled=False)

    monkeypatch.setattr(StreamCore, "apply_send_flush", mutated)


def complete_twice(monkeypatch) -> None:
    """Every SEND_COMPLETE is raised twice."""
    complete = StreamCore._complete

    def mutated(self, request, canceled):
        complete(self, request, canceled)
        complete(self, request, canceled)

    monkeypatch.setattr(StreamCore, "_complete", mutated)


def hold_acknowledged(monkeypatch) -> None:
    """Acknowledged sends are never completed on their ACK: they wait for a shutdown to
    cancel them (exactly once, but never on time)."""
    monkeypatch.setattr(SendQueue, "pop_acknowledged", lambda self, acked_offset, fin_acked: iter(()))


# ------------------------------------------------------------------ programs


async def _late_sends_after_graceful():
    """One send awaiting its ACK, a graceful shutdown, then four sends that race it."""
    pair = await open_pair(transport="memory")
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        stream.send(bytes(30_000), client_context="older")
        await asyncio.sleep(0)  # the worker applies it
        assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
        for i in range(4):
            assert stream.send(b"late", client_context=f"late-{i}") is Status.PENDING
        await stream.wait_shutdown_complete(timeout=10)
        return rec.completions(), pair.ledger
    finally:
        await pair.shutdown()


async def _three_sends_and_fin():
    pair = await open_pair(transport="memory")
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(3):
            stream.send(bytes(5_000), client_context=f"s{i}")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=10)
        return rec.completions(), pair.ledger
    finally:
        await pair.shutdown()


async def _send_then_liveness():
    """A send on a live connection with no shutdown requested, then the liveness phase."""
    pair = await open_pair(transport="memory")
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        stream.send(bytes(2_000), client_context="held")
        stalled = await liveness_phase(pair.ledger, pair.network, VIRTUAL_LIVENESS_SECONDS)
        completions_before_teardown = rec.completions()
        await pair.shutdown()
        return stalled, completions_before_teardown, rec.completions(), pair.ledger
    finally:
        await pair.shutdown()


# ------------------------------------------------------------------ the tests


def test_canceled_completions_newest_first_after_graceful_shutdown(monkeypatch):
    done, ledger = run_virtual(_late_sends_after_graceful())
    assert done == [("late-0", True), ("late-1", True), ("late-2", True), ("late-3", True), ("older", False)]
    assert ledger.ok, ledger.summary()

    cancel_late_newest_first(monkeypatch)
    done, ledger = run_virtual(_late_sends_after_graceful())
    assert done == [("late-3", True), ("late-2", True), ("late-1", True), ("late-0", True), ("older", False)]
    assert not ledger.leaks
    assert ("client stream id=0: SEND_COMPLETE (canceled) for send client:5 (client_context='late-3') "
            "before older send client:2 (client_context='late-0')") in ledger.violations
    assert len(ledger.violations) == 3  # late-3, late-2, late-1 each overtook late-0


def test_acknowledged_completion_for_bytes_never_acknowledged(monkeypatch):
    done, ledger = run_virtual(_three_sends_and_fin())
    assert done == [("s0", False), ("s1", False), ("s2", False)]
    assert ledger.ok, ledger.summary()

    acknowledge_on_queue(monkeypatch)
    done, ledger = run_virtual(_three_sends_and_fin())
    assert done == [("s0", False), ("s1", False), ("s2", False)]  # the same events, too early
    text = "\n".join(ledger.violations)
    assert not ledger.leaks
    for i, (start, end) in enumerate([(0, 5000), (5000, 10000), (10000, 15000)]):
        assert (f"client stream id=0: send client:{i + 1} (client_context='s{i}') acknowledged but never received: "
                f"bytes [{start}, {end}) never reached server's QUIC stack") in text


def test_completion_raised_twice(monkeypatch):
    complete_twice(monkeypatch)
    done, ledger = run_virtual(_three_sends_and_fin())
    assert done == [("s0", False), ("s0", False), ("s1", False), ("s1", False), ("s2", False), ("s2", False)]
    assert [v for v in ledger.violations if "duplicate" in v] == [
        f"client stream id=0: duplicate SEND_COMPLETE for send client:{i + 1} (client_context='s{i}')" for i in range(3)]


def test_completion_held_back_until_shutdown_is_stalled(monkeypatch):
    stalled, before, after, ledger = run_virtual(_send_then_liveness())
    assert stalled == [] and before == [("held", False)]
    assert ledger.ok, ledger.summary()

    hold_acknowledged(monkeypatch)
    stalled, before, after, ledger = run_virtual(_send_then_liveness())
    assert before == []  # acknowledged on the wire, never completed
    assert after == [("held", True)]  # the teardown's shutdown cancels it: exactly once
    assert not ledger.leaks and not ledger.violations  # only liveness can see this one
    assert [(s["connection"], s["stream_id"], s["client_context"]) for s in stalled] == [("client", 0, "'held'")]
    assert ledger.stalled == stalled and not ledger.ok
    assert "STALLED send client:1 client_context='held' on client stream 0" in ledger.summary()


@scenario(transport="memory")
async def _held_send_scenario(ctx):
    stream = ctx.client.open_stream()
    stream.start()
    stream.send(bytes(1_000), client_context="held")
    await stream.wait_event(StreamEventType.START_COMPLETE)


@pytest.mark.parametrize("mutated", [False, True])
def test_runner_reports_stalled_sends(monkeypatch, mutated):
    """quicsim run (and so the plugin's scenario items and the fuzzer) runs the phase."""
    if mutated:
        hold_acknowledged(monkeypatch)
    result = run_job(_held_send_scenario.__quicsim_scenario__, 1)
    if mutated:
        assert not result["passed"] and result["error"] is None
        assert [s["client_context"] for s in result["stalled"]] == ["'held'"]
        assert not result["leaks"] and not result["violations"]
    else:
        assert result["passed"] and result["stalled"] == [], result

"""Send buffering inside QuicStreamSendFlush's loop (shared/msquic-observed.md §1, §3.4):
MsQuic fills the send buffer after each request of the detached batch, so a request
completes on copy before the next one is looked at. That decides the order of a FIN
batch and what MsQuic's own re-entrant close loses. In-memory link on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import SendFlags, Settings, Status, StreamEventType, StreamShutdownFlags
from quicsim.pair import open_pair
from quicsim.transport.virtual_loop import run_virtual

E = StreamEventType


def _run(body, *, buffering: bool, faults: tuple[str, ...] = ()) -> tuple[list[str], object]:
    """Run ``body(pair, log)`` on a memory pair; returns what the client stream's handlers
    logged (``A a`` acknowledged or completed on copy, ``B c`` canceled, SSC, SC) and the
    ledger's report."""

    async def main():
        settings = Settings(send_buffering=buffering, faults=frozenset(faults))
        pair = await open_pair(transport="memory", client_settings=settings,
                               server_settings=Settings(send_buffering=buffering))
        log: list[str] = []
        try:
            await body(pair, log)
        finally:
            await pair.shutdown()
        return log, pair.ledger

    return run_virtual(main(), seed=1, budget=300)


def _logger(log: list[str], on_event=None):
    def handler(stream, event):
        if event.type is E.SEND_COMPLETE:
            log.append(f"{event.client_context} {'c' if event.canceled else 'a'}")
        elif event.type is E.SEND_SHUTDOWN_COMPLETE:
            log.append(f"SSC(g={int(event.graceful)})")
        elif event.type is E.SHUTDOWN_COMPLETE:
            log.append("SC")
        if on_event is not None:
            on_event(stream, event)
    return handler


def _closer():
    """A handler step that closes the stream at its first SEND_COMPLETE, once."""
    armed = {"armed": True}

    def close_at_first(stream, event):
        if event.type is E.SEND_COMPLETE and armed.pop("armed", False):
            stream.close()
    return close_at_first


async def _started(pair, handler):
    stream = pair.client.open_stream(handler=handler)
    stream.start()
    await stream.wait_event(E.START_COMPLETE, timeout=5)
    return stream


async def _tick():
    """A millisecond of virtual time: the worker applies what was queued, in one pass."""
    await asyncio.sleep(0.001)


def test_a_buffered_fin_batch_completes_in_send_order():
    """§3.4 (finbatch-order): A, B(FIN), C in one tick with buffering on: A and B complete
    on copy inside the flush loop, then C is canceled (the FIN shut the send side):
    ``A a, B a, C c, SSC(g=1)``, as the library did 10/10. quicsim used to buffer after
    the loop: ``C c, A a, B a``."""
    async def body(pair, log):
        s = await _started(pair, _logger(log))
        for ctx, flags in (("A", SendFlags.NONE), ("B", SendFlags.FIN), ("C", SendFlags.NONE)):
            assert s.send(b"x" * 100, flags, client_context=ctx) is Status.PENDING
        await s.wait_shutdown_complete(timeout=10)

    log, ledger = _run(body, buffering=True)
    assert log[:4] == ["A a", "B a", "C c", "SSC(g=1)"]
    assert ledger.ok, ledger.summary()


@pytest.mark.parametrize("fault, expected", [
    # MsQuic (10/10): A completes on copy inside the flush loop; its handler closes the
    # stream; B, still in the loop's detached list, completes into nothing.
    ("reentrant-close", ["A a", "SSC(g=0)", "SC"]),
    # quicsim's default: B is canceled inside the close, before SEND_SHUTDOWN_COMPLETE.
    (None, ["A a", "B c", "SSC(g=0)", "SC"]),
])
def test_close_inside_a_buffered_flush(fault, expected):
    """§1 (flush-close): A and B in one tick with buffering on, StreamClose inside A's
    SEND_COMPLETE. No shutdown is needed for MsQuic to lose B."""
    async def body(pair, log):
        s = await _started(pair, _logger(log, _closer()))
        s.send(b"a" * 100, client_context="A")
        s.send(b"b" * 100, client_context="B")
        await _tick()

    log, ledger = _run(body, buffering=True, faults=(fault,) if fault else ())
    assert log == expected
    if fault:
        assert [leak["client_context"] for leak in ledger.leaks] == ["'B'"]
    else:
        assert ledger.ok, ledger.summary()


@pytest.mark.parametrize("buffering, fault, expected, lost", [
    # MsQuic (10/10 each): buffering on, A completes on copy and the close loses B and C;
    (True, "reentrant-close", ["A a", "SSC(g=0)", "SC"], ["'B'", "'C'"]),
    # buffering off, B is canceled (it came after the FIN), its handler closes, the close
    # cancels A, and C, left in the flush's list, is lost.
    (False, "reentrant-close", ["B c", "A c", "SSC(g=0)", "SC"], ["'C'"]),
    # quicsim's default delivers what MsQuic loses, canceled, inside the close.
    (True, None, ["A a", "B c", "C c", "SSC(g=0)", "SC"], []),
    (False, None, ["B c", "A c", "C c", "SSC(g=0)", "SC"], []),
])
def test_close_inside_a_fin_batch(buffering, fault, expected, lost):
    """§1 (finbatch-close): A(FIN), B, C in one tick; StreamClose in the first completion."""
    async def body(pair, log):
        s = await _started(pair, _logger(log, _closer()))
        s.send(b"a" * 100, SendFlags.FIN, client_context="A")
        s.send(b"b" * 100, client_context="B")
        s.send(b"c" * 100, client_context="C")
        await _tick()

    log, ledger = _run(body, buffering=buffering, faults=(fault,) if fault else ())
    assert log == expected
    assert [leak["client_context"] for leak in ledger.leaks] == lost
    if not fault:
        assert ledger.ok, ledger.summary()


def test_a_started_stream_is_not_buffered_until_the_next_fill():
    """QuicStreamStart fills no buffer: sends flushed on a stream before it started are
    sent from the application's buffers and complete on their ACK, not on copy."""
    async def body(pair, log):
        s = pair.client.open_stream(handler=_logger(log))
        s.send(b"x" * 100, SendFlags.START, client_context="S")  # flushed, then started
        await _tick()
        assert s.started and log == []  # not completed on copy at the start
        await s.wait_event(E.SEND_COMPLETE, timeout=5)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=10)

    log, ledger = _run(body, buffering=True)
    assert log[0] == "S a"
    assert ledger.ok, ledger.summary()


# ------------------------------------------------------------------ a flush ahead of the shutdown


def _priority_batch(start_applied_first: bool):
    """The clean-fuzz finding (seed 5018224): StreamStart, StreamShutdown(GRACEFUL), a
    67,196-byte send with PRIORITY_WORK, a 70,458-byte send, an empty send, in one tick;
    the handler sends two empty buffers inline from the first SEND_COMPLETE."""
    async def body(pair, log):
        statuses = []

        def send_at_first(stream, event):
            if event.type is E.SEND_COMPLETE and not statuses:
                statuses.append(stream.send([b"", b""], client_context="s7"))
                log.append(f"s7={statuses[0].name}")

        s = pair.client.open_stream(handler=_logger(log, send_at_first))
        s.start()
        if start_applied_first:
            await _tick()
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        s.send(bytes(67196), SendFlags.PRIORITY_WORK, client_context="s4")
        s.send(bytes(70458), client_context="s5")
        s.send(b"", client_context="s6")
        await s.wait_shutdown_complete(timeout=10)
    return body


def test_a_priority_flush_before_the_start_completes_on_ack():
    """The newest MsQuic (27/40 runs; PRIORITY_WORK does not exist in v2.3.5): the
    priority flush runs ahead of StreamStart, on an unstarted stream, so nothing is
    buffered; s4 completes on its ACK, after the shutdown was applied, so the handler's
    send is refused; s5 and s6 follow. quicsim used to buffer at the start instead, so
    the handler's send was accepted and its cancel overtook s6 (the ledger's finding)."""
    log, ledger = _run(_priority_batch(start_applied_first=False), buffering=True)
    assert log[:5] == ["s4 a", "s7=INVALID_STATE", "s5 a", "s6 a", "SSC(g=1)"]
    assert ledger.ok, ledger.summary()


def test_a_priority_flush_ahead_of_the_shutdown_lets_a_later_send_be_canceled_first():
    """The newest MsQuic (2/40 runs): StreamStart already applied, the priority flush runs
    ahead of the shutdown; s4 completes on copy inside it and its handler's send is
    accepted, queued behind the shutdown; s5 is copied, s6 waits for room; the shutdown
    cancels s7 before s6 completes. The ledger allows it: with send buffering, a late
    run may split where a flush ran ahead of the shutdown (it called this a violation)."""
    log, ledger = _run(_priority_batch(start_applied_first=True), buffering=True)
    assert log[:6] == ["s4 a", "s7=PENDING", "s5 a", "s7 c", "s6 a", "SSC(g=1)"]
    assert ledger.ok, ledger.summary()


def test_the_late_run_splits_only_with_send_buffering():
    """The same completions judged by the ledger alone (hand-made observations): with
    send buffering a late canceled send may overtake an older late one that waits for
    buffer room; without it that cannot happen (a send from a callback is flushed inline
    then) and stays a violation. Either way the canceled tail keeps its own order."""
    from types import SimpleNamespace

    from quicsim import Ledger, events as ev

    def judge(buffering: bool, order: list[tuple[str, bool]]) -> list[str]:
        ledger = Ledger()
        conn = SimpleNamespace(label="c", settings=Settings(send_buffering=buffering))
        stream = SimpleNamespace(id=0, handle=1, is_local=True, handle_closed=False)
        ledger.stream_event(conn, stream, ev.StartComplete(status=Status.SUCCESS, id=0, peer_accepted=True))
        ledger.api_call(conn, stream, "shutdown", Status.PENDING,
                        {"flags": StreamShutdownFlags.GRACEFUL, "error_code": 0})
        for n, ctx in enumerate(("s4", "s5", "s6", "s7", "s8"), 1):
            ledger.api_call(conn, stream, "send", Status.PENDING,
                            {"send_id": n, "bytes": 1, "flags": 0, "client_context": ctx})
        for ctx, canceled in order:
            ledger.stream_event(conn, stream, ev.SendComplete(canceled=canceled, client_context=ctx, send_id=0))
        return ledger.violations

    split = [("s4", False), ("s5", False), ("s7", True), ("s8", True), ("s6", False)]
    assert judge(True, split) == []
    assert judge(False, split) == [f"c stream id=0: SEND_COMPLETE (canceled) for send c:{n} (client_context='{ctx}') "
                                   f"before older send c:3 (client_context='s6')" for n, ctx in ((4, "s7"), (5, "s8"))]
    tail_reversed = [("s4", False), ("s5", False), ("s8", True), ("s7", True), ("s6", False)]
    assert judge(True, tail_reversed) != []

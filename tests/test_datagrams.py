"""Datagrams: each accepted datagram reaches exactly one final state, and the ledger checks it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from quicsim import ConnectionEventType, DatagramSendState, Ledger, Settings, Status, events as ev
from quicsim.pair import open_pair

from .conftest import Recorder, eventually

ON = Settings(datagram_receive_enabled=True)
FINAL = {DatagramSendState.ACKNOWLEDGED, DatagramSendState.ACKNOWLEDGED_SPURIOUS,
         DatagramSendState.LOST_DISCARDED, DatagramSendState.CANCELED}


def _states(rec: Recorder) -> dict:
    out: dict = {}
    for e in rec.events:
        if e.type is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED:
            out.setdefault(e.client_context, []).append(e.state)
    return out


@pytest.mark.asyncio
async def test_datagrams_over_a_lossy_link_each_reach_one_final_state():
    pair = await open_pair(transport="memory", network={"loss": 0.3}, seed=5, client_settings=ON,
                           server_settings=ON)
    try:
        received = []
        pair.server.set_handler(lambda c, e: e.type is ConnectionEventType.DATAGRAM_RECEIVED
                                and received.append(e.buffer))
        rec = Recorder()
        pair.client.set_handler(rec)
        for i in range(60):
            assert pair.client.send_datagram(b"d%03d" % i, client_context=i) is Status.PENDING
            await asyncio.sleep(0.01)  # spread over time: some are lost, some acknowledged
        await eventually(lambda: len(_states(rec)) == 60 and all(len(seq) > 1 for seq in _states(rec).values()),
                         "a verdict (acknowledged or suspected lost) for each of the 60 datagrams")
        # A datagram whose packet was declared lost stays LOST_SUSPECT until later ACKs let
        # the packet be forgotten, or the connection ends: only then is every state final.
        # (Only the client's end is awaited: on this lossy link the server may only learn
        # of it by its idle timeout.)
        pair.client.shutdown()
        await pair.client.wait_shutdown_complete(timeout=10)
        states = _states(rec)
        assert sorted(states) == list(range(60))
        for i, seq in states.items():
            assert seq[0] is DatagramSendState.SENT
            assert sum(s in FINAL for s in seq) == 1 and seq[-1] in FINAL
        acked = [i for i, seq in states.items() if seq[-1] is DatagramSendState.ACKNOWLEDGED]
        lost = [i for i, seq in states.items() if seq[-1] is DatagramSendState.LOST_DISCARDED]
        assert acked and lost and len(received) >= len(acked)
        assert pair.ledger.report()["datagrams"] == 60 and pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()


@pytest.mark.asyncio
async def test_datagrams_pending_at_close_are_canceled_and_statuses():
    pair = await open_pair(transport="memory", network={"delay_ms": 50}, client_settings=ON, server_settings=ON)
    try:
        rec = Recorder()
        pair.client.set_handler(rec)
        assert pair.client.send_datagram(b"x" * 5000) is Status.INVALID_PARAMETER  # cannot fit a packet
        assert pair.client.send_datagram("text") is Status.INVALID_PARAMETER
        for i in range(5):
            pair.client.send_datagram(b"late", client_context=i)
        pair.client.close()  # before any ACK could come back
        states = _states(rec)
        assert all(seq[-1] is DatagramSendState.CANCELED for seq in states.values()) and len(states) == 5
        assert pair.ledger.ok
    finally:
        await pair.shutdown()


@pytest.mark.asyncio
async def test_datagrams_need_the_peer_to_enable_them():
    pair = await open_pair(transport="memory")
    try:
        assert pair.client.send_datagram(b"x") is Status.INVALID_STATE
    finally:
        await pair.shutdown()


def test_ledger_flags_a_datagram_without_a_final_state_and_a_second_one():
    ledger = Ledger()
    conn = SimpleNamespace(label="c")
    ledger.api_call(conn, None, "send_datagram", Status.PENDING, {"datagram_id": 1, "bytes": 3,
                                                                   "client_context": "dg"})
    ledger.api_call(conn, None, "send_datagram", Status.PENDING, {"datagram_id": 2, "bytes": 3,
                                                                   "client_context": "dg2"})
    ledger.connection_event(conn, ev.DatagramSendStateChanged(client_context="dg2", state=DatagramSendState.ACKNOWLEDGED,
                                                              datagram_id=2))
    ledger.connection_event(conn, ev.DatagramSendStateChanged(client_context="dg2", state=DatagramSendState.CANCELED,
                                                              datagram_id=2))
    ledger.connection_event(conn, ev.ConnectionShutdownComplete(handshake_completed=True,
                                                                peer_acknowledged_shutdown=False,
                                                                app_close_in_progress=False))
    assert [d["client_context"] for d in ledger.datagram_leaks] == ["'dg'"]
    assert any("after its final state" in v for v in ledger.violations)
    assert not ledger.ok


@pytest.mark.asyncio
async def test_datagrams_from_another_thread_and_a_handler_that_closes_on_sent():
    import threading

    pair = await open_pair(transport="memory", client_settings=ON, server_settings=ON)
    try:
        def burst():
            for i in range(300):
                pair.client.send_datagram(b"t", client_context=("thread", i))

        thread = threading.Thread(target=burst)
        thread.start()
        for i in range(300):
            pair.client.send_datagram(b"l", client_context=("loop", i))
            if i % 50 == 0:
                await asyncio.sleep(0)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        await eventually(lambda: pair.ledger.report()["datagrams"] == 600, "600 accepted datagrams")
        report = pair.ledger.report()
        assert report["datagrams"] == 600 and report["violations"] == [] and report["datagram_leaks"] == []
        errors = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda l, ctx: errors.append(ctx))
        closed = []
        pair.client.set_handler(lambda c, e: e.type is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED
                                and e.state is DatagramSendState.SENT and not closed
                                and (closed.append(1), c.close()))
        for i in range(3):
            pair.client.send_datagram(b"x", client_context=("close", i))
        await eventually(lambda: bool(closed) and pair.client.shutdown_complete, "the close from the handler")
        assert closed and errors == [] and pair.client.handler_errors == []
        assert pair.ledger.ok, pair.ledger.summary()
    finally:
        await pair.shutdown()

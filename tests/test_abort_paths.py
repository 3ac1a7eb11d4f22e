"""StreamShutdown's directions and the send-side abort, where the mutation run
(python -m bench.mutation) found them unchecked: each direction's flag touches only its
direction, a second abort keeps the send side closed, an abort before StreamStart keeps
its error code, and SEND_SHUTDOWN_COMPLETE waits for the peer to acknowledge the reset.
Memory link on virtual time."""

from __future__ import annotations

import asyncio

from quicsim import ConnectionEventType, Status, StreamEventType, StreamShutdownFlags
from quicsim.pair import open_pair
from quicsim.transport.virtual_loop import run_virtual

from .conftest import Recorder

_SETTLE = 0.2  # virtual seconds: several round trips on the memory link


def _run(program):
    """Run ``program(pair, client_stream, client_rec, server_rec)`` on a fresh memory pair
    and return what it returns, with the ledger (judged by the caller)."""
    async def body():
        pair = await open_pair(transport="memory")
        try:
            server_rec = Recorder()

            def on_server(conn, event):
                if event.type is ConnectionEventType.PEER_STREAM_STARTED:
                    event.stream.set_handler(server_rec)

            pair.server.set_handler(on_server)
            rec = Recorder()
            stream = pair.client.open_stream(handler=rec)
            result = await program(pair, stream, rec, server_rec)
            return result, pair.ledger
        finally:
            await pair.shutdown()

    return run_virtual(body())


def _types(rec, *names):
    return [t for t in rec.types() if t in names]


def test_abort_receive_leaves_the_send_side_open_and_graceful_leaves_the_receive_side():
    async def program(pair, stream, rec, server_rec):
        stream.start()
        stream.send(b"a" * 100, client_context="a")
        await asyncio.sleep(_SETTLE)
        assert stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE) is Status.PENDING
        await asyncio.sleep(_SETTLE)
        after_abort_receive = stream.send(b"b" * 100, client_context="b")
        server_after_abort_receive = _types(server_rec, "PEER_RECEIVE_ABORTED", "PEER_SEND_SHUTDOWN")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await asyncio.sleep(_SETTLE)
        return after_abort_receive, server_after_abort_receive, rec.completions()

    (status, server_seen, done), ledger = _run(program)
    assert status is Status.PENDING  # the send direction is still open
    assert server_seen == ["PEER_RECEIVE_ABORTED"]  # STOP_SENDING, and no FIN
    assert done == [("a", False), ("b", False)]
    assert ledger.ok, ledger.summary()

    async def graceful(pair, stream, rec, server_rec):
        stream.start()
        stream.send(b"a" * 100, client_context="a")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await asyncio.sleep(_SETTLE)
        return _types(server_rec, "PEER_RECEIVE_ABORTED", "PEER_SEND_SHUTDOWN")

    server_seen, ledger = _run(graceful)
    assert server_seen == ["PEER_SEND_SHUTDOWN"]  # a FIN, and no STOP_SENDING
    assert ledger.ok, ledger.summary()


def test_a_second_abort_keeps_the_send_side_closed():
    async def program(pair, stream, rec, server_rec):
        stream.start()
        stream.send(b"a" * 100, client_context="a")
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, 5)
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, 6)
        await asyncio.sleep(0)  # the worker applies both; the reset is not acknowledged yet
        return stream.send(b"b", client_context="b"), rec.completions()

    (status, done), ledger = _run(program)
    assert status is Status.INVALID_STATE
    assert done == [("a", True)]
    assert ledger.ok, ledger.summary()


def test_an_abort_before_start_resets_with_its_code_once_started():
    async def program(pair, stream, rec, server_rec):
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, 7)
        stream.start()
        await asyncio.sleep(_SETTLE)
        return [e.error_code for e in server_rec.events if e.type is StreamEventType.PEER_SEND_ABORTED]

    codes, ledger = _run(program)
    assert codes == [7]
    assert ledger.ok, ledger.summary()


def test_send_shutdown_complete_waits_for_the_reset_to_be_acknowledged():
    async def program(pair, stream, rec, server_rec):
        stream.start()
        stream.send(b"a" * 100, client_context="a")
        await asyncio.sleep(_SETTLE)
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, 3)
        await asyncio.sleep(0)  # applied: the reset is on its way, not acknowledged
        before_ack = _types(rec, "SEND_SHUTDOWN_COMPLETE")
        await stream.wait_event(StreamEventType.SEND_SHUTDOWN_COMPLETE, timeout=5)
        return before_ack, [e.graceful for e in rec.events if e.type is StreamEventType.SEND_SHUTDOWN_COMPLETE]

    (before_ack, graceful), ledger = _run(program)
    assert before_ack == []
    assert graceful == [False]
    assert ledger.ok, ledger.summary()

"""The receive side as the real library does it (shared/msquic-observed.md §3.11): a FIN
alone is a RECEIVE with no buffers; ABORT_RECEIVE|INLINE inside the FIN's RECEIVE ends the
direction without PEER_SEND_SHUTDOWN; a handler that returns PENDING holds the stream's
receive path until StreamReceiveComplete; StreamReceiveSetEnabled pauses and resumes.
In-memory link on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import ConnectionEventType, ReceiveFlags, SendFlags, Status, StreamEventType, StreamShutdownFlags
from quicsim.pair import open_pair
from quicsim.transport.virtual_loop import run_virtual

E = StreamEventType


def _run(server_stream_handler, body):
    """Run ``body(pair, client_stream, server_log, server_streams)`` with every peer stream
    of the server handled by ``server_stream_handler(stream, event, log)``; returns what
    the body returns and the ledger."""

    async def main():
        log: list = []
        server_streams: list = []

        def on_server(conn, event):
            if event.type is ConnectionEventType.PEER_STREAM_STARTED:
                server_streams.append(event.stream)
                event.stream.set_handler(lambda s, e: server_stream_handler(s, e, log))

        pair = await open_pair(transport="memory", server_handler=on_server)
        try:
            client = pair.client.open_stream()
            client.start()
            result = await body(pair, client, log, server_streams)
        finally:
            await pair.shutdown()
        return result, pair.ledger

    return run_virtual(main(), seed=1, budget=300)


def _logging_server(stream, event, log):
    """Log each event; finish our side once the peer finished."""
    log.append(_entry(event))
    if event.type is E.PEER_SEND_SHUTDOWN:
        stream.shutdown(StreamShutdownFlags.GRACEFUL)


def _entry(event):
    if event.type is E.RECEIVE:
        return ("RECEIVE", event.absolute_offset, event.total_buffer_length, len(event.buffers),
                bool(event.flags & ReceiveFlags.FIN))
    return (event.type.name,)


async def _until(predicate, what):
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never: {what}")


def test_a_fin_alone_is_a_receive_with_no_buffers():
    """fin-only: data, then a FIN-only send: RECEIVE(offset 3, 0 bytes, zero buffers, FIN),
    then PEER_SEND_SHUTDOWN (quicsim gave one empty buffer)."""
    server = _logging_server
    async def body(pair, client, log, streams):
        client.send(b"abc", client_context="A")
        await _until(lambda: any(e[0] == "RECEIVE" for e in log), "the data")
        client.send(b"", SendFlags.FIN, client_context="F")
        await client.wait_shutdown_complete(timeout=10)
        return [e for e in log if e[0] in ("RECEIVE", "PEER_SEND_SHUTDOWN")]

    log, ledger = _run(server, body)
    assert log == [("RECEIVE", 0, 3, 1, False), ("RECEIVE", 3, 0, 0, True), ("PEER_SEND_SHUTDOWN",)]
    assert ledger.ok, ledger.summary()


def test_abort_receive_inside_the_fins_receive_suppresses_peer_send_shutdown():
    """abort-recv-in-fin: ABORT_RECEIVE|INLINE from the RECEIVE that carries the FIN
    returns SUCCESS, and neither PEER_SEND_SHUTDOWN nor PEER_SEND_ABORTED follows: the
    peer already finished, so the direction ends at once, with no STOP_SENDING."""
    statuses = []

    def server(stream, event, log):
        log.append(_entry(event))
        if event.type is E.RECEIVE and event.flags & ReceiveFlags.FIN:
            statuses.append(stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE | StreamShutdownFlags.INLINE, 5))
            stream.shutdown(StreamShutdownFlags.GRACEFUL)

    async def body(pair, client, log, streams):
        client.send(b"abc", SendFlags.FIN, client_context="A")
        await client.wait_shutdown_complete(timeout=10)
        await _until(lambda: streams and streams[0].shutdown_complete, "the server stream's end")
        return log

    log, ledger = _run(server, body)
    assert statuses == [Status.SUCCESS]
    names = [e[0] for e in log]
    assert ("RECEIVE", 0, 3, 1, True) in log
    assert "PEER_SEND_SHUTDOWN" not in names and "PEER_SEND_ABORTED" not in names
    assert names[-1] == "SHUTDOWN_COMPLETE"
    assert ledger.ok, ledger.summary()


def test_a_pending_receive_holds_further_data_until_receive_complete():
    """recv-pending: the first RECEIVE's handler returns PENDING; B and the FIN arrive
    (taken in, acknowledged) but are not indicated until StreamReceiveComplete(3), which
    then indicates RECEIVE(offset 3, 3 bytes, FIN) and PEER_SEND_SHUTDOWN."""
    def server(stream, event, log):
        log.append(_entry(event))
        if event.type is E.RECEIVE and len(log) == 1:
            return Status.PENDING
        if event.type is E.PEER_SEND_SHUTDOWN:
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
        return None

    async def body(pair, client, log, streams):
        client.send(b"aaa", client_context="A")
        await _until(lambda: log, "the first RECEIVE")
        client.send(b"bbb", SendFlags.FIN, client_context="B")
        await client.wait_event(E.SEND_SHUTDOWN_COMPLETE, timeout=10)  # the FIN was acknowledged
        held = list(log)
        assert streams[0].receive_complete(4) is Status.INVALID_PARAMETER  # more than it carried
        assert streams[0].receive_complete(3) is Status.PENDING
        await client.wait_shutdown_complete(timeout=10)
        assert streams[0].receive_complete(3) is Status.INVALID_STATE  # nothing is held now
        return held, log

    (held, log), ledger = _run(server, body)
    assert held == [("RECEIVE", 0, 3, 1, False)]
    assert log[1:3] == [("RECEIVE", 3, 3, 1, True), ("PEER_SEND_SHUTDOWN",)]
    assert ledger.ok, ledger.summary()


def test_receive_complete_inside_the_handler_is_a_synchronous_completion():
    """StreamReceiveComplete called inside the RECEIVE handler that returns PENDING counts
    as if the handler had returned at once (QuicStreamReceiveCompleteInline)."""
    statuses = []

    def server(stream, event, log):
        log.append(_entry(event))
        if event.type is E.RECEIVE:
            statuses.append(stream.receive_complete(event.total_buffer_length))
            return Status.PENDING
        if event.type is E.PEER_SEND_SHUTDOWN:
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
        return None

    async def body(pair, client, log, streams):
        client.send(b"aaa", SendFlags.FIN, client_context="A")
        await client.wait_shutdown_complete(timeout=10)
        return log

    log, ledger = _run(server, body)
    assert statuses and set(statuses) == {Status.SUCCESS}
    assert "PEER_SEND_SHUTDOWN" in [e[0] for e in log]
    assert ledger.ok, ledger.summary()


def test_receive_set_enabled_pauses_and_resumes():
    """StreamReceiveSetEnabled(False) pauses RECEIVE (data is taken in and held);
    StreamReceiveSetEnabled(True) indicates what was held, in one RECEIVE."""
    server = _logging_server
    async def body(pair, client, log, streams):
        client.send(b"aaa", client_context="A")
        await _until(lambda: log, "the first RECEIVE")
        assert streams[0].receive_set_enabled(False) is Status.PENDING
        await asyncio.sleep(0.001)
        client.send(b"bbb", client_context="B")
        client.send(b"ccc", SendFlags.FIN, client_context="C")
        await client.wait_event(E.SEND_SHUTDOWN_COMPLETE, timeout=10)
        paused = list(log)
        assert streams[0].receive_set_enabled(True) is Status.PENDING
        await client.wait_shutdown_complete(timeout=10)
        return paused, log

    (paused, log), ledger = _run(server, body)
    assert paused == [("RECEIVE", 0, 3, 1, False)]
    assert log[1][:3] == ("RECEIVE", 3, 6) and log[1][4] is True and log[2] == ("PEER_SEND_SHUTDOWN",)
    assert ledger.ok, ledger.summary()

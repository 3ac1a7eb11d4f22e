"""Event orders seen on the real library (shared/msquic-observed.md §3.7, §3.8)."""

from __future__ import annotations

import pytest

from quicsim import ConnectionEventType, StreamEventType, StreamShutdownFlags
from quicsim.pair import open_pair
from quicsim.transport.virtual_loop import run_virtual

from .conftest import Recorder
from .core_pair import CorePair

E = StreamEventType


def _replying_server(conn, event):
    """Answer each peer stream with data and a FIN once the peer finished sending."""
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        def on_stream(stream, e):
            if e.type is E.PEER_SEND_SHUTDOWN:
                stream.send(b"reply", client_context="reply")
                stream.shutdown(StreamShutdownFlags.GRACEFUL)
        event.stream.set_handler(on_stream)


def test_the_acks_completions_come_before_the_peers_fin_in_one_datagram():
    """§3.7: the peer answers our data and FIN with its own data and FIN; its packet
    carries the ACK of ours too (MsQuic writes pending ACKs into every packet), and its
    frames are handled in order, ACK first: SEND_COMPLETE and SEND_SHUTDOWN_COMPLETE come
    before RECEIVE(FIN) and PEER_SEND_SHUTDOWN (1,119/1,119 runs on the library; quicsim
    gave the FIN first, 864/864). Driven sans-I/O so the datagrams are exact."""
    pair = CorePair()
    pair.handshake()
    pair.server.set_handler(_replying_server)
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"x" * 100, client_context="x")
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    pair.client.process_operations()
    pair.deliver(pair.client)
    assert pair.deliver(pair.server) == 1, "the reply and the ACK share one datagram"
    order = [t for t in rec.types() if t not in ("START_COMPLETE", "IDEAL_SEND_BUFFER_SIZE")]
    assert order[:5] == ["SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "RECEIVE", "RECEIVE", "PEER_SEND_SHUTDOWN"] \
        or order[:4] == ["SEND_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "RECEIVE", "PEER_SEND_SHUTDOWN"], order


@pytest.mark.parametrize("seed", range(5))
def test_the_same_order_on_the_memory_link(seed):
    async def main():
        pair = await open_pair(transport="memory", seed=seed, server_handler=_replying_server)
        try:
            rec = Recorder()
            stream = pair.client.open_stream(handler=rec)
            stream.start()
            stream.send(b"x" * 100, client_context="x")
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
            await stream.wait_shutdown_complete(timeout=10)
            return rec.types()
        finally:
            await pair.shutdown()

    types = run_virtual(main(), seed=seed, budget=300)
    assert types.index("SEND_SHUTDOWN_COMPLETE") < types.index("PEER_SEND_SHUTDOWN"), types

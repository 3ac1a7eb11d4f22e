"""The core without asyncio or sockets: two ConnectionCores moved by hand, time passed in."""

from __future__ import annotations

from quicsim import StreamShutdownFlags

from .conftest import Recorder
from .core_pair import CorePair


def test_acks_before_stop_sending_in_one_datagram_complete_acked():
    """The peer ACKs the data and sends STOP_SENDING in the same datagram: MsQuic handles
    the ACK frame first, so those sends completed normally (canceled=False). Driven
    sans-I/O so both frames are sure to share one datagram."""
    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    for i in range(10):
        stream.send(bytes(100), client_context=i)
    pair.client.process_operations()
    pair.deliver(pair.client)                      # data reaches the server; its ACK is delayed
    server_stream = next(iter(pair.server.streams.values()))
    server_stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE, 9)
    pair.server.process_operations()               # STOP_SENDING is now pending too
    assert pair.deliver(pair.server, now=pair.now + 0.05) == 1  # ACK + STOP_SENDING together
    assert "PEER_RECEIVE_ABORTED" in rec.types()
    assert rec.completions() == [(i, False) for i in range(10)]


def test_sans_io_pair_completes_sends_on_ack():
    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"hello", client_context="h")
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    pair.client.process_operations()
    pair.deliver(pair.client)
    assert rec.completions() == []                 # sent, not yet acknowledged
    pair.deliver(pair.server, now=pair.now + 0.05)  # the delayed ACK
    assert rec.completions() == [("h", False)]
    assert "SEND_SHUTDOWN_COMPLETE" in rec.types()

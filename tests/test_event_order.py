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


@pytest.mark.parametrize("datagrams", [False, True])
def test_handshake_events_come_in_msquics_order(datagrams):
    """§3.8: at the peer's transport parameters, before CONNECTED, a client is told
    STREAMS_AVAILABLE (the peer's stream limits) and DATAGRAM_STATE_CHANGED (whether the
    peer takes datagrams, and the longest one); a server's application gets neither (they
    are raised before it has a handler) and sees CONNECTED first. DATAGRAM_STATE_CHANGED's
    max_send_length is the longest datagram ConnectionSendDatagram accepts."""
    from quicsim import Settings, Status

    async def main():
        client_events, server_events = Recorder(), Recorder()
        pair = await open_pair(transport="memory", client_handler=client_events, server_handler=server_events,
                               server_settings=Settings(datagram_receive_enabled=datagrams,
                                                        peer_bidi_stream_count=16))
        try:
            state = client_events.events[1]
            if datagrams:
                statuses = [pair.client.send_datagram(bytes(state.max_send_length)),
                            pair.client.send_datagram(bytes(state.max_send_length + 1))]
            else:
                statuses = [pair.client.send_datagram(b"x")]
            return client_events.types(), server_events.types(), client_events.events, statuses
        finally:
            await pair.shutdown()

    client, server, events, statuses = run_virtual(main(), seed=1, budget=300)
    assert client[:3] == ["STREAMS_AVAILABLE", "DATAGRAM_STATE_CHANGED", "CONNECTED"]
    assert (events[0].bidirectional_count, events[0].unidirectional_count) == (16, 100)
    assert events[1].send_enabled is datagrams
    assert server[0] == "CONNECTED" and "STREAMS_AVAILABLE" not in server[:2] \
        and "DATAGRAM_STATE_CHANGED" not in server
    if datagrams:
        assert events[1].max_send_length > 1000 and statuses == [Status.PENDING, Status.INVALID_PARAMETER]
    else:
        assert events[1].max_send_length == 0 and statuses == [Status.INVALID_STATE]


def test_start_immediate_opens_the_stream_on_the_wire():
    """§3.9: StreamStart(IMMEDIATE) with no data sends the stream's opening (an empty
    STREAM frame): the peer gets PEER_STREAM_STARTED ~0.1 ms later on the library;
    without the flag nothing is sent until there is data."""
    from quicsim import StreamStartFlags

    pair = CorePair()
    pair.handshake()
    server_events = Recorder()
    pair.server.set_handler(server_events)
    plain = pair.client.open_stream()
    plain.start()
    pair.client.process_operations()
    pair.deliver(pair.client)
    assert "PEER_STREAM_STARTED" not in server_events.types()
    immediate = pair.client.open_stream()
    immediate.start(StreamStartFlags.IMMEDIATE)
    pair.client.process_operations()
    pair.deliver(pair.client)
    # the immediate stream (id 4) opens, and with it the lower-numbered one (RFC 9000 2.1)
    assert [e.stream.id for e in server_events.events if e.type is ConnectionEventType.PEER_STREAM_STARTED] == [0, 4]
    assert immediate.id == 4


def test_a_frame_for_a_higher_stream_opens_the_lower_ones_in_order():
    """QuicStreamSetGetStreamForPeer: the peer's frame for stream 8 opens 0 and 4 too, each
    indicated with PEER_STREAM_STARTED, in order, before the frame's own events."""
    pair = CorePair()
    pair.handshake()
    log = []
    pair.server.set_handler(lambda c, e: e.type is ConnectionEventType.PEER_STREAM_STARTED
                            and (log.append(("started", e.stream.id)),
                                 e.stream.set_handler(lambda s, ev: log.append((ev.type.name, s.id)))))
    streams = [pair.client.open_stream() for _ in range(3)]
    for s in streams:
        s.start()
    pair.client.process_operations()
    streams[2].send(b"x", client_context="x")
    pair.client.process_operations()
    pair.deliver(pair.client)
    assert log[:4] == [("started", 0), ("started", 4), ("started", 8), ("RECEIVE", 8)]

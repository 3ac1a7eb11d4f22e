"""A foreign peer aborts the client's streams and then the connection, for real.

Three client streams on one connection to the peer's server (picoquic; ``--peer quiche``
or ``--peer ngtcp2`` for the others), whose behaviours are
STOP_SENDING on the first, RESET_STREAM on the second, closing the connection on the
third. MsQuic's rules meet another stack's frames: after STOP_SENDING the client gets
PEER_RECEIVE_ABORTED, its pending sends complete canceled and a later send returns
ABORTED; after RESET_STREAM it gets PEER_SEND_ABORTED while its own sends are still
acknowledged; after the peer's CONNECTION_CLOSE it gets SHUTDOWN_INITIATED_BY_PEER and
every send still pending completes canceled. Each accepted send completes exactly once.

picoquic's and quiche's servers abort with the codes they are told; ngtcp2's HTTP/3 server
picks its own from the request (framed by quicsim.peers.h3): it answers the first at the
request's headers and stops the rest of it (STOP_SENDING, H3_NO_ERROR); the second request
is malformed (no ``:authority``), so it stops and resets the stream (STOP_SENDING and
RESET_STREAM, H3_MESSAGE_ERROR); the third opens with a SETTINGS frame, which closes the
connection (H3_FRAME_UNEXPECTED).
"""

from dataclasses import dataclass

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, SendFlags,
                     Status, Stream, StreamEventType, scenario)


@dataclass(frozen=True)
class AbortCodes:
    """The error codes a peer's server aborts with, in the order of the three streams."""

    stop_sending: int
    reset: int
    close: int
    #: the server stops the reset stream's direction too (STOP_SENDING with the reset's code)
    reset_also_stops: bool = False


#: picoquic and quiche: the codes the peer's server is told to use
TOLD = AbortCodes(stop_sending=0x42, reset=0x43, close=0x44)
#: ngtcp2: HTTP/3's own (H3_NO_ERROR, H3_MESSAGE_ERROR, H3_FRAME_UNEXPECTED)
HTTP3 = AbortCodes(stop_sending=0x100, reset=0x10E, close=0x105, reset_also_stops=True)
CODES = {"ngtcp2": HTTP3}


@scenario(peer="picoquic", peer_behaviour=("stop-sending", "reset", "close-connection"),
          network={"delay_ms": 5}, timeout=30)
async def peer_aborts(ctx: ScenarioContext) -> None:
    assert ctx.peer is not None and ctx.peer.host == "127.0.0.1"
    codes = CODES.get(ctx.peer.name, TOLD)
    aborts: dict[str, list[int]] = {"receive": [], "send": []}

    def on_stream(stream: Stream, event: AnyStreamEvent) -> None:
        if event.type is StreamEventType.PEER_RECEIVE_ABORTED:
            aborts["receive"].append(event.error_code)
        elif event.type is StreamEventType.PEER_SEND_ABORTED:
            aborts["send"].append(event.error_code)

    # 1. STOP_SENDING while sends are in flight
    stopped = ctx.client.open_stream(handler=on_stream)
    assert stopped.start() is Status.PENDING
    for i in range(40):
        stopped.send(bytes(64 * 1024), client_context=("stopped", i))
    await stopped.wait_send_shutdown_complete(timeout=15)
    assert aborts["receive"] == [codes.stop_sending], aborts
    assert stopped.send(b"x", client_context="after") is Status.ABORTED
    await stopped.wait_shutdown_complete(timeout=15)
    await ctx.peer.wait_event("stop-sending")

    # 2. RESET_STREAM of the peer's direction; ours is read to the end (ngtcp2 stops it too)
    reset = ctx.client.open_stream(handler=on_stream)
    reset.start()
    for i in range(4):
        reset.send(bytes(16 * 1024), client_context=("reset", i))
    reset.send(b"end", SendFlags.FIN, client_context=("reset", "fin"))
    await reset.wait_shutdown_complete(timeout=15)
    assert aborts["send"] == [codes.reset], aborts
    if codes.reset_also_stops:
        assert aborts["receive"] == [codes.stop_sending, codes.reset], aborts
    await ctx.peer.wait_event("reset")

    # 3. CONNECTION_CLOSE while sends are in flight
    closed_by: list[int] = []

    def on_connection(conn: Connection, event: AnyConnectionEvent) -> None:
        if event.type is ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER:
            closed_by.append(event.error_code)

    ctx.client.set_handler(on_connection)
    last = ctx.client.open_stream()
    last.start()
    for i in range(30):
        last.send(bytes(64 * 1024), client_context=("closed", i))
    await ctx.client.wait_shutdown_complete(timeout=20)
    assert closed_by == [codes.close], closed_by
    assert last.send(b"x") is Status.ABORTED
    await ctx.peer.wait_event("close-connection")
    ctx.note(f"{ctx.peer.name}: {', '.join(e['event'] for e in ctx.peer.events)}")

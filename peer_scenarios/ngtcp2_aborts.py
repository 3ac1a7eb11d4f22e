"""ngtcp2's HTTP/3 server aborts the client's request streams and then the connection, for real.

ngtcp2's example server picks no error codes of its own: what it sends follows from the
request, framed by quicsim.peers.h3. Three client streams on one connection: on the first
the server answers at the request's headers and stops the rest of it (STOP_SENDING,
H3_NO_ERROR); the second request is malformed (no ``:authority``), so the server stops
and resets the stream (STOP_SENDING and RESET_STREAM, H3_MESSAGE_ERROR); the third opens
with a SETTINGS frame, which closes the connection (H3_FRAME_UNEXPECTED). MsQuic's rules
meet those frames as in peer_aborts.py; each accepted send completes exactly once.

The second scenario resets the client's own direction of a well-formed request: ngtcp2
then never ends its direction (the request never completed, so it never answers), and the
run names that half-open stream as the peer's, not as a stream quicsim left open.
"""

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, SendFlags,
                     Status, Stream, StreamEventType, StreamShutdownFlags, scenario)

H3_NO_ERROR, H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR = 0x100, 0x105, 0x10E


@scenario(peer="ngtcp2", peer_only=True, peer_behaviour=("stop-sending", "reset", "close-connection"),
          network={"delay_ms": 5}, timeout=30)
async def ngtcp2_aborts(ctx: ScenarioContext) -> None:
    assert ctx.peer is not None and ctx.peer.host == "127.0.0.1"
    aborts: dict[str, list[int]] = {"receive": [], "send": []}

    def on_stream(stream: Stream, event: AnyStreamEvent) -> None:
        if event.type is StreamEventType.PEER_RECEIVE_ABORTED:
            aborts["receive"].append(event.error_code)
        elif event.type is StreamEventType.PEER_SEND_ABORTED:
            aborts["send"].append(event.error_code)

    # 1. STOP_SENDING (an early response) while sends are in flight
    stopped = ctx.client.open_stream(handler=on_stream)
    assert stopped.start() is Status.PENDING
    for i in range(40):
        stopped.send(bytes(64 * 1024), client_context=("stopped", i))
    await stopped.wait_send_shutdown_complete(timeout=15)
    assert aborts["receive"] == [H3_NO_ERROR], aborts
    assert stopped.send(b"x", client_context="after") is Status.ABORTED
    await stopped.wait_shutdown_complete(timeout=15)
    await ctx.peer.wait_event("stop-sending")

    # 2. a malformed request: STOP_SENDING and RESET_STREAM of the server's direction
    reset = ctx.client.open_stream(handler=on_stream)
    reset.start()
    for i in range(4):
        reset.send(bytes(16 * 1024), client_context=("reset", i))
    reset.send(b"end", SendFlags.FIN, client_context=("reset", "fin"))
    await reset.wait_shutdown_complete(timeout=15)
    assert aborts["send"] == [H3_MESSAGE_ERROR], aborts
    assert aborts["receive"] == [H3_NO_ERROR, H3_MESSAGE_ERROR], aborts
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
    assert closed_by == [H3_FRAME_UNEXPECTED], closed_by
    assert last.send(b"x") is Status.ABORTED
    await ctx.peer.wait_event("close-connection")
    ctx.note(f"{ctx.peer.name}: {', '.join(e['event'] for e in ctx.peer.events)}")


@scenario(peer="ngtcp2", peer_only=True, peer_behaviour="answer-after-fin", timeout=10)
async def ngtcp2_half_open_after_reset(ctx: ScenarioContext) -> None:
    assert ctx.peer is not None
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(4):
        stream.send(bytes(16 * 1024), client_context=("request", i))
    stream.shutdown(StreamShutdownFlags.ABORT_SEND, 0x7)
    await stream.wait_send_shutdown_complete(timeout=5)
    await ctx.peer.wait_event("reset-received")
    assert not stream.shutdown_complete  # ngtcp2 never ends its direction: the run says so

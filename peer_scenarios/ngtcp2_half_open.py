"""ngtcp2's HTTP/3 server leaves a stream half-open after quicsim resets its own direction.

quicsim resets the client's direction of a well-formed request (ABORT_SEND): ngtcp2 then
never ends its direction (the request never completed, so it never answers), and the run
names that half-open stream as the peer's, not as a stream quicsim left open. (ngtcp2's
STOP_SENDING, RESET_STREAM and CONNECTION_CLOSE: ``peer_aborts.py --peer ngtcp2``.)
"""

from quicsim import ScenarioContext, StreamShutdownFlags, scenario


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

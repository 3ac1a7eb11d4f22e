"""The peer closes the connection while sends are in flight.

Race: MsQuic raises SHUTDOWN_INITIATED_BY_PEER, aborts every stream (canceled
completions) and from then on StreamSend returns ABORTED. If the link loses the peer's
only CONNECTION_CLOSE, the client's idle timeout ends the connection instead (a local
close: StreamSend then returns INVALID_STATE); every send is canceled either way.
"""

from quicsim import (AnyConnectionEvent, Connection, ConnectionEventType, ConnectionShutdownFlags, ScenarioContext,
                     Status, StreamEventType, scenario)


def close_on_receive(conn: Connection, event: AnyConnectionEvent) -> None:
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(
            lambda s, e: e.type is StreamEventType.RECEIVE and conn.shutdown(ConnectionShutdownFlags.NONE, 0x77))


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=45, server=close_on_receive)
async def peer_closes_connection_mid_send(ctx: ScenarioContext) -> None:
    events = []
    ctx.client.set_handler(lambda c, e: events.append(e.type))
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(30):
        stream.send(bytes(64 * 1024), client_context=i)
    # Past the 30 s idle timeout: the peer sends its CONNECTION_CLOSE once and does not
    # repeat it, so when the link loses it the client can only time out.
    await ctx.client.wait_shutdown_complete(timeout=40)
    if ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER in events:
        assert stream.send(b"x") is Status.ABORTED
    else:
        ctx.note("the peer's CONNECTION_CLOSE was lost: the client's idle timeout closed it")
        assert ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT in events
        assert stream.send(b"x") is Status.INVALID_STATE  # an idle timeout is a local close

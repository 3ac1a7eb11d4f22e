"""The peer closes the connection while sends are in flight.

Race: MsQuic raises SHUTDOWN_INITIATED_BY_PEER, aborts every stream (canceled
completions) and from then on StreamSend returns ABORTED.
"""

from quicsim import ConnectionEventType, ConnectionShutdownFlags, Status, StreamEventType, scenario


def close_on_receive(conn, event):
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(
            lambda s, e: e.type is StreamEventType.RECEIVE and conn.shutdown(ConnectionShutdownFlags.NONE, 0x77))


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, server=close_on_receive)
async def peer_closes_connection_mid_send(ctx):
    events = []
    ctx.client.set_handler(lambda c, e: events.append(e.type))
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(30):
        stream.send(bytes(64 * 1024), client_context=i)
    await ctx.client.wait_shutdown_complete(timeout=15)
    assert ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER in events
    assert stream.send(b"x") is Status.ABORTED

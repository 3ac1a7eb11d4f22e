"""ConnectionShutdown with many streams mid-send.

Race: MsQuic's ConnectionShutdown jumps ahead of every queued operation. Every started stream
is aborted silently (canceled completions, SEND_SHUTDOWN_COMPLETE(False),
SHUTDOWN_COMPLETE(connection_shutdown=True)); queued sends behind it are canceled;
the connection's SHUTDOWN_COMPLETE comes last.
"""

from quicsim import ConnectionShutdownFlags, ScenarioContext, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20)
async def connection_shutdown_mid_send(ctx: ScenarioContext) -> None:
    streams = []
    for n in range(8):
        s = ctx.client.open_stream()
        s.start()
        for i in range(10):
            s.send(bytes(16 * 1024), client_context=(n, i))
        streams.append(s)
    await ctx.sleep(0.01)
    for s in streams:
        s.send(b"queued", client_context="queued-behind-shutdown")
    ctx.client.shutdown(ConnectionShutdownFlags.NONE, error_code=0x10)
    await ctx.client.wait_shutdown_complete(timeout=15)
    assert all(s.shutdown_complete for s in streams)

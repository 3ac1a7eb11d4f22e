"""StreamShutdown(ABORT | IMMEDIATE) with sends in flight.

Race: with IMMEDIATE MsQuic does not wait for the peer: canceled completions, then
SEND_SHUTDOWN_COMPLETE and SHUTDOWN_COMPLETE in the same worker pass.
"""

from quicsim import StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20)
async def immediate_abort(ctx):
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(20):
        stream.send(bytes(32 * 1024), client_context=i)
    await ctx.sleep(0.01)
    stream.shutdown(StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE, error_code=1)
    await ctx.sleep(0)
    assert stream.shutdown_complete, "IMMEDIATE completes in one worker pass"

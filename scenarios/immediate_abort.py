"""StreamShutdown(ABORT | IMMEDIATE) with sends in flight.

Race: with IMMEDIATE MsQuic does not wait for the peer: canceled completions, then
SEND_SHUTDOWN_COMPLETE and SHUTDOWN_COMPLETE in the same worker pass. The peer's
packets are dropped from right before the call, so a stream that waited for the peer's
answer could not finish.
"""

from quicsim import ScenarioContext, StreamEventType, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20)
async def immediate_abort(ctx: ScenarioContext) -> None:
    events = []
    stream = ctx.client.open_stream(handler=lambda s, e: events.append(e.type))
    stream.start()
    for i in range(20):
        stream.send(bytes(32 * 1024), client_context=i)
    await ctx.sleep(0.01)
    ctx.network.blackhole(1.0, direction="to_client")
    stream.shutdown(StreamShutdownFlags.ABORT | StreamShutdownFlags.IMMEDIATE, error_code=1)
    await stream.wait_shutdown_complete(timeout=0.9)  # while nothing of the peer's arrives
    tail = [e for e in events if e is not StreamEventType.SEND_COMPLETE][-2:]
    assert tail == [StreamEventType.SEND_SHUTDOWN_COMPLETE, StreamEventType.SHUTDOWN_COMPLETE], events
    assert ctx.ledger.completions == ctx.ledger.sends == 20

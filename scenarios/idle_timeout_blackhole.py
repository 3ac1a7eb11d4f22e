"""Idle timeout with unacknowledged data: the link goes dark (blackhole).

Race: nothing is acknowledged any more; the idle timer fires and the connection
closes without a closing period. MsQuic raises SHUTDOWN_INITIATED_BY_TRANSPORT
(CONNECTION_IDLE) and cancels every pending send (with send buffering on, the sends that
were copied into the buffer had completed already).
"""

from quicsim import ConnectionEventType, ScenarioContext, Settings, scenario

FAST_IDLE = Settings(idle_timeout_ms=1000)


@scenario(network={"delay_ms": 5}, timeout=20, settings=FAST_IDLE)
async def idle_timeout_blackhole(ctx: ScenarioContext) -> None:
    events = []
    ctx.client.set_handler(lambda c, e: events.append(e))
    stream = ctx.client.open_stream()
    stream.start()
    await ctx.sleep(0.05)
    ctx.network.blackhole(30.0)
    for i in range(10):
        stream.send(bytes(4000), client_context=i)
    await ctx.client.wait_shutdown_complete(timeout=15)
    initiated = [e for e in events if e.type is ConnectionEventType.SHUTDOWN_INITIATED_BY_TRANSPORT]
    assert initiated and initiated[0].status.name == "CONNECTION_IDLE"
    # Unbuffered, all ten are canceled; with send buffering some completed on the copy.
    assert ctx.ledger.completions == ctx.ledger.sends == 10

"""Fault: sends on an unstarted stream of a connection the app shut down never complete.

The third candidate mechanism of MsQuic issue 4307: the sends are accepted (PENDING)
and then forgotten. Passes only when the ledger reports them, at the connection's
SHUTDOWN_COMPLETE, by client_context.
"""

from quicsim import ScenarioContext, Settings, scenario


@scenario(network={"loss": 0.05}, timeout=20, expect="leak",
          settings={"client": Settings(faults=["unstarted-stream-leak"])})
async def fault_unstarted_stream_leak(ctx: ScenarioContext) -> None:
    started = ctx.client.open_stream()
    started.start()
    for i in range(2):
        started.send(b"x" * 1000, client_context=f"req-{i}")
    await ctx.sleep(0.05)
    unstarted = ctx.client.open_stream()
    ctx.client.shutdown()
    await ctx.sleep(0)
    unstarted.send(b"never", client_context="req-unstarted")
    await ctx.client.wait_shutdown_complete(timeout=15)
    unstarted.close()
    assert [leak["client_context"] for leak in ctx.ledger.leaks] == ["'req-unstarted'"]

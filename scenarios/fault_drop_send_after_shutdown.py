"""Fault: a send accepted before the shutdown took effect is dropped when applied.

Reproduces MsQuic issue 4307's symptom (three sends, two completions pattern: here
four accepted sends, three completions) with the first candidate mechanism; passes
only when the ledger reports the leaked send by its client_context.
"""

from quicsim import ScenarioContext, Settings, Status, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, expect="leak",
          settings={"client": Settings(faults=["drop-send-after-shutdown"])})
async def fault_drop_send_after_shutdown(ctx: ScenarioContext) -> None:
    async def attempt() -> bool:
        stream = ctx.client.open_stream()
        stream.start()
        for i in range(3):
            stream.send(b"x" * 1000, client_context=f"req-{i}")
        await ctx.sleep(0)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        late = stream.send(b"late", client_context="req-late")  # refused if the worker ran first
        await stream.wait_shutdown_complete(timeout=15)
        return late is Status.PENDING

    await ctx.until_raced(attempt)
    assert ctx.ledger.sends - ctx.ledger.completions == 1
    assert [leak["client_context"] for leak in ctx.ledger.leaks] == ["'req-late'"]

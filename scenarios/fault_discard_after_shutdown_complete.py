"""Fault: completions raised after SHUTDOWN_COMPLETE (or StreamClose) are discarded.

The second candidate mechanism of MsQuic issue 4307: the handler is detached first,
so the late send's canceled completion reaches nobody. Passes only when the ledger
names the leaked send.
"""

from quicsim import ScenarioContext, Settings, Status, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, expect="leak",
          settings={"client": Settings(faults=["discard-after-shutdown-complete"])})
async def fault_discard_after_shutdown_complete(ctx: ScenarioContext) -> None:
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

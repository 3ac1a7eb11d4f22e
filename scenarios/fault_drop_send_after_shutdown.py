"""Fault: a send accepted before the shutdown took effect is dropped when applied.

Reproduces MsQuic issue 4307's symptom (three sends, two completions pattern: here
four accepted sends, three completions) with the first candidate mechanism; passes
only when the ledger reports the leaked send by its client_context.
"""

from quicsim import Settings, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, expect="leak",
          settings={"client": Settings(faults=["drop-send-after-shutdown"])})
async def fault_drop_send_after_shutdown(ctx):
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(3):
        stream.send(b"x" * 1000, client_context=f"req-{i}")
    await ctx.sleep(0)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    stream.send(b"late", client_context="req-late")
    await stream.wait_shutdown_complete(timeout=15)
    assert ctx.ledger.completions == 3
    assert [leak["client_context"] for leak in ctx.ledger.leaks] == ["'req-late'"]

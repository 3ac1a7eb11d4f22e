"""MsQuic's own lost completion: StreamClose from inside a graceful shutdown's cancel loop.

Race: send A is acknowledged; then StreamShutdown(GRACEFUL) and two more sends, B and C,
in the same tick, so both are accepted before the worker applies the shutdown. MsQuic's
QuicStreamSendShutdown detaches B and C into a local list and completes them one by one
("Bad app!"). B's canceled SEND_COMPLETE closes the stream: QuicStreamClose runs inline,
raises SEND_SHUTDOWN_COMPLETE and SHUTDOWN_COMPLETE, and detaches the handler. Back in
the loop, C's completion finds no handler and is discarded. Three accepted sends, two
completions: MsQuic issue 4307's symptom. With the ``reentrant-close`` fault quicsim does
exactly that; the scenario passes only when the ledger names the lost send, C.
"""

from quicsim import (AnyStreamEvent, ScenarioContext, Settings, Status, Stream, StreamEventType, StreamShutdownFlags,
                     scenario)


@scenario(network={"loss": 0.0, "delay_ms": 5}, timeout=20, expect="leak",
          settings={"client": Settings(faults=["reentrant-close"])})
async def msquic_4307_reentrant_close(ctx: ScenarioContext) -> None:
    seen = []

    def handler(stream: Stream, event: AnyStreamEvent) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            seen.append((event.client_context, event.canceled))
            if event.client_context == "B":
                stream.close()  # allowed from any callback (docs/api/StreamClose.md)

    async def attempt() -> bool:
        # The race needs the worker not to run between the shutdown and the two sends;
        # under --preempt it may (then B or C is refused and the attempt is repeated).
        seen.clear()
        stream = ctx.client.open_stream(handler=handler)
        stream.start()
        stream.send(b"a" * 100, client_context="A")
        await ctx.wait_until(lambda: seen)  # A's completion (under --preempt it may come at once)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        raced = (stream.send(b"b", client_context="B") is Status.PENDING
                 and stream.send(b"c", client_context="C") is Status.PENDING)
        await stream.wait_shutdown_complete(timeout=15)
        await ctx.sleep(0)
        if not raced:
            stream.close()
        return raced

    await ctx.until_raced(attempt)
    assert seen == [("A", False), ("B", True)]
    assert ctx.ledger.sends - ctx.ledger.completions == 1
    assert [leak["client_context"] for leak in ctx.ledger.leaks] == ["'C'"]

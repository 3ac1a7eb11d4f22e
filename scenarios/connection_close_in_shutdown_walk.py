"""ConnectionClose from a stream's callback while ConnectionShutdown walks the streams.

Race: ConnectionShutdown overtakes the sends queued on two streams and shuts every
stream down in turn. The first stream's handler calls ConnectionClose at the first event
the walk raises for it (its canceled send): MsQuic raises the connection's
SHUTDOWN_COMPLETE right there, inline, and then the walk goes on, so the other stream's
sends still complete. A stack that stops delivering stream events once the connection is
closed loses them. (Under --preempt the worker may flush the sends first; with send
buffering they then complete on copy, and the walk's first event for the stream is its
SEND_SHUTDOWN_COMPLETE: the close still comes from inside the walk.)
"""

from quicsim import AnyStreamEvent, ScenarioContext, Settings, Stream, StreamEventType, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20,
          settings={"server": Settings(idle_timeout_ms=2000)})  # it hears of the silent close by idle timeout
async def connection_close_in_shutdown_walk(ctx: ScenarioContext) -> None:
    def close_connection_at_first_cancel(stream: Stream, event: AnyStreamEvent) -> None:
        if ctx.client.shutdown_initiated and not ctx.client.handle_closed and event.type in (
                StreamEventType.SEND_COMPLETE, StreamEventType.SEND_SHUTDOWN_COMPLETE):
            ctx.client.close()

    first = ctx.client.open_stream(handler=close_connection_at_first_cancel)
    second = ctx.client.open_stream()
    first.start()
    second.start()
    await ctx.wait_until(lambda: first.started and second.started)
    first.send(b"a" * 100, client_context="a1")
    second.send(b"b" * 100, client_context="b1")
    second.send(b"b" * 100, client_context="b2")
    ctx.client.shutdown()  # applied before the three sends: every one is canceled
    await ctx.wait_until(lambda: second.shutdown_complete and ctx.client.handle_closed)
    assert ctx.client.handle_closed and ctx.ledger.pending == 0 and ctx.ledger.completions == 3

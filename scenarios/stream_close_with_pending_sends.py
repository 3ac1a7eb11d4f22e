"""StreamClose on a stream with pending sends.

Race: StreamClose aborts a stream not yet shut down. MsQuic delivers every pending
send's canceled completion (and SHUTDOWN_COMPLETE with app_close_in_progress) before
StreamClose returns; afterwards the handler gets nothing.
"""

from quicsim import ScenarioContext, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20)
async def stream_close_with_pending_sends(ctx: ScenarioContext) -> None:
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(30):
        stream.send(bytes(64 * 1024), client_context=i)
    await ctx.sleep(0.01)
    stream.close()
    assert ctx.ledger.pending == 0, "every send completed before close() returned"

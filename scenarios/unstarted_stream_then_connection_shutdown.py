"""Sends on an opened but never started stream, then ConnectionShutdown, then close.

Race: MsQuic accepts sends on an unstarted stream (it checks only SendEnabled and
ClosedRemotely), even after the application shut the connection down. Nothing can
ever send them: they must complete canceled, at the latest when the stream is closed.
"""

from quicsim import ScenarioContext, Status, scenario


@scenario(network={"loss": 0.05}, timeout=20)
async def unstarted_stream_then_connection_shutdown(ctx: ScenarioContext) -> None:
    stream = ctx.client.open_stream()
    assert stream.send(b"before", client_context="before-shutdown") is Status.PENDING
    ctx.client.shutdown()
    await ctx.sleep(0)
    assert stream.send(b"after", client_context="after-shutdown") is Status.PENDING
    await ctx.client.wait_shutdown_complete(timeout=15)
    stream.close()
    assert ctx.ledger.canceled == 2

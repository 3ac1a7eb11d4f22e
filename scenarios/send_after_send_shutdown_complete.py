"""StreamSend after SEND_SHUTDOWN_COMPLETE.

Race: none left: the send side is closed and acknowledged. MsQuic rejects the send
with INVALID_STATE and raises no SEND_COMPLETE for it (a rejected send owns nothing).
"""

from quicsim import ScenarioContext, SendFlags, Status, scenario


@scenario(network={"loss": 0.05}, timeout=20)
async def send_after_send_shutdown_complete(ctx: ScenarioContext) -> None:
    stream = ctx.client.open_stream()
    stream.start()
    stream.send(b"data", SendFlags.FIN, client_context="fin")
    await stream.wait_send_shutdown_complete(timeout=15)
    before = ctx.ledger.completions
    assert stream.send(b"too late", client_context="rejected") is Status.INVALID_STATE
    await stream.wait_shutdown_complete(timeout=15)
    assert ctx.ledger.rejected == 1 and ctx.ledger.completions == before

"""StreamSend(FIN), then more sends: one in the same tick, one after the FIN applied.

Race: a send queued behind a FIN send is flushed in the same batch and canceled as
MsQuic's worker reaches it ("queued multiple sends with a FIN not in the last one");
once the FIN has been applied (its send completed), StreamSend returns INVALID_STATE and
no event follows (under ``--preempt``, or on MsQuic's own worker thread, the worker may
apply it before the second call already).
"""

from quicsim import ScenarioContext, SendFlags, Status, StreamEventType, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20)
async def send_fin_then_send(ctx: ScenarioContext) -> None:
    done: dict[str, bool] = {}
    stream = ctx.client.open_stream(
        handler=lambda s, e: e.type is StreamEventType.SEND_COMPLETE and done.setdefault(e.client_context, e.canceled))
    stream.start()
    assert stream.send(b"body", SendFlags.FIN, client_context="fin") is Status.PENDING
    same_tick = stream.send(b"after", client_context="same-tick")
    await ctx.wait_until(lambda: "fin" in done, what="the FIN send's completion")
    assert stream.send(b"later", client_context="rejected") is Status.INVALID_STATE
    await stream.wait_shutdown_complete(timeout=15)
    if same_tick is Status.PENDING:
        assert done == {"fin": False, "same-tick": True}
    else:  # --preempt: the worker applied the FIN before the second call
        assert same_tick is Status.INVALID_STATE and done == {"fin": False}

"""StreamShutdown(GRACEFUL) and then StreamSend in the same tick.

Race: the send is checked before the worker applied the shutdown, so MsQuic accepts
it (PENDING); when the worker applies it after the shutdown it cancels it at once
(canceled=True), possibly before older sends still waiting for their ACKs. This is
the send MsQuic issue 4307 lost. (Under ``--preempt`` the worker may apply the
shutdown first; then the late send is refused with INVALID_STATE.) On the real library
the worker is a thread of its own: when it has not flushed the three sends yet as the
application calls StreamShutdown, the flush takes the late send along before the FIN and
it is acknowledged, the outcome MsQuic gives most often.
"""

from quicsim import ScenarioContext, Status, StreamEventType, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20, repeat=2)
async def shutdown_then_send_same_tick(ctx: ScenarioContext) -> None:
    done: dict[str, bool] = {}
    stream = ctx.client.open_stream(
        handler=lambda s, e: e.type is StreamEventType.SEND_COMPLETE and done.setdefault(e.client_context, e.canceled))
    stream.start()
    for i in range(3):
        stream.send(b"x" * 1000, client_context=f"req-{i}")
    await ctx.sleep(0)
    assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    late = stream.send(b"late", client_context="req-late")
    await stream.wait_shutdown_complete(timeout=15)
    if late is Status.PENDING:
        assert done.keys() == {"req-0", "req-1", "req-2", "req-late"}
        assert not any(done[f"req-{i}"] for i in range(3))
        if ctx.backend == "simulator" and not ctx.client.settings.preempt:
            # the loop ran the worker at ctx.sleep(0): the sends were flushed before the shutdown
            assert done["req-late"] is True
    else:
        # With --preempt the worker may apply the shutdown before the late send's call,
        # as MsQuic's worker thread may: then the send is refused, never accepted.
        assert late is Status.INVALID_STATE
        assert done == {"req-0": False, "req-1": False, "req-2": False}

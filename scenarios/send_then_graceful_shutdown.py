"""Sends, then a graceful shutdown once the worker has applied them.

Race: none on purpose; this is the baseline. MsQuic completes every send with
canceled=False once the peer acknowledged its bytes, then SEND_SHUTDOWN_COMPLETE
(graceful) once the FIN is acknowledged too.
"""

from quicsim import ScenarioContext, Status, StreamEventType, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.02, "delay_ms": 5}, timeout=20)
async def send_then_graceful_shutdown(ctx: ScenarioContext) -> None:
    done = []
    stream = ctx.client.open_stream(
        handler=lambda s, e: done.append(e) if e.type is StreamEventType.SEND_COMPLETE else None)
    stream.start()
    for i in range(20):
        assert stream.send(b"x" * 2000, client_context=f"req-{i}") is Status.PENDING
    await ctx.sleep(0)  # the worker applies the sends
    assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    await stream.wait_shutdown_complete(timeout=15)
    assert [e.client_context for e in done] == [f"req-{i}" for i in range(20)]
    assert not any(e.canceled for e in done)

"""StreamShutdown(ABORT) while most sends are still unacknowledged.

Race: ACKs arriving while the abort is queued complete some sends normally; MsQuic's
abort (QuicStreamSendShutdown) then cancels every remaining one, oldest first, then SEND_SHUTDOWN_COMPLETE
(graceful=False) once the RESET_STREAM is acknowledged.
"""

from quicsim import ScenarioContext, StreamEventType, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20, repeat=2)
async def abort_with_sends_in_flight(ctx: ScenarioContext) -> None:
    done = []
    stream = ctx.client.open_stream(
        handler=lambda s, e: done.append(e) if e.type is StreamEventType.SEND_COMPLETE else None)
    stream.start()
    for i in range(40):
        stream.send(bytes(64 * 1024), client_context=i)
    await ctx.sleep(0.02)
    stream.shutdown(StreamShutdownFlags.ABORT, error_code=7)
    await stream.wait_shutdown_complete(timeout=15)
    assert [e.client_context for e in done] == list(range(40))
    assert done[-1].canceled

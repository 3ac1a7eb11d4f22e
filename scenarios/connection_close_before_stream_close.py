"""ConnectionClose before the application closed its stream handles.

Race: in MsQuic a stream holds its connection until StreamClose, so ConnectionClose
closes no stream handle. Afterwards StreamSend on a never-started stream is still
accepted (PENDING), and StreamClose of that stream delivers a canceled SEND_COMPLETE for
each of its sends, SEND_SHUTDOWN_COMPLETE and SHUTDOWN_COMPLETE. A stack (or a binding)
that drops stream events once the connection's handle is closed leaks those sends.
"""

from quicsim import ScenarioContext, Settings, Status, StreamShutdownFlags, scenario


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20,
          settings={"server": Settings(idle_timeout_ms=2000)})  # it hears of the silent close by idle timeout
async def connection_close_before_stream_close(ctx: ScenarioContext) -> None:
    unstarted = ctx.client.open_stream()
    assert unstarted.send(b"before", client_context="before-close") is Status.PENDING
    started = ctx.client.open_stream()
    started.start()
    started.send(bytes(10_000), client_context="in-flight")
    await ctx.wait_until(lambda: started.started)  # (under --preempt it may already have come)
    ctx.client.close()  # cancels "in-flight"; SHUTDOWN_COMPLETE comes before it returns
    assert ctx.client.shutdown_complete
    assert started.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    assert unstarted.send(b"after", client_context="after-close") is Status.PENDING
    unstarted.close()  # both sends canceled, then both shutdown completions
    started.close()
    assert ctx.ledger.pending == 0 and ctx.ledger.completions == 3

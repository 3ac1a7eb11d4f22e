"""A scenario file: the race of MsQuic issue 4307, a send accepted after a graceful
shutdown, and the same race with a fault that loses its completion.

Run it: ``quicsim run examples/late_send_race.py`` (loopback UDP through the lossy relay),
or add ``--transport memory`` for the in-memory link on virtual time, where a seed replays
byte for byte. ``pytest examples/late_send_race.py`` collects the same scenarios as tests.
"""

from quicsim import Settings, Status, StreamEventType, StreamShutdownFlags, scenario


async def three_sends_then_a_late_one(ctx, completions):
    """Three sends the worker applies, a graceful shutdown, then one more send: MsQuic
    accepts it (PENDING) and completes it canceled when its worker applies it."""
    def on_event(stream, event):
        if event.type is StreamEventType.SEND_COMPLETE:
            completions.append((event.client_context, event.canceled))

    stream = ctx.client.open_stream(handler=on_event)
    stream.start()
    for i in range(3):
        assert stream.send(b"x" * 1000, client_context=f"req-{i}") is Status.PENDING
    await ctx.sleep(0)  # the worker applies the three sends
    assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
    assert stream.send(b"late", client_context="req-late") is Status.PENDING
    await stream.wait_shutdown_complete()
    stream.close()


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20, repeat=3)
async def late_send_is_canceled(ctx):
    completions = []
    await three_sends_then_a_late_one(ctx, completions)
    # the late send may complete before the others are acknowledged: MsQuic's one
    # exception to send order, so compare without order
    assert sorted(completions) == [("req-0", False), ("req-1", False), ("req-2", False), ("req-late", True)]


@scenario(network={"loss": 0.05, "delay_ms": 10}, timeout=20,
          settings={"client": Settings(faults=["drop-send-after-shutdown"])}, expect="leak")
async def lost_completion_is_caught(ctx):
    """The fault drops the late send when the worker applies it: no SEND_COMPLETE ever
    comes, and the ledger reports the leak by its client_context ('req-late')."""
    completions = []
    await three_sends_then_a_late_one(ctx, completions)
    assert sorted(completions) == [("req-0", False), ("req-1", False), ("req-2", False)]

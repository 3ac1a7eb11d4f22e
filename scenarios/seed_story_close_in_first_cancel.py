"""The seed story with a StreamClose in the first canceled completion (MsQuic issue 4307).

Three sends; inside the third one's SEND_COMPLETE the application calls
StreamShutdown(GRACEFUL) and sends 4 and 5 (on the worker's thread, so the worker cannot
apply the shutdown between the calls: the race is the same in every run). The handler
closes the stream at the first canceled SEND_COMPLETE, as an application that frees
everything on cancel does. MsQuic completes the late sends one by one from a detached
list: 4's completion closes the stream inline, and 5's is raised into a detached handler
and lost (``msquic-observed`` §1). quicsim's default keeps its promise and delivers 5
canceled, inside the close; with ``--inject reentrant-close`` it loses 5 as the library
does. ``quicsim diff`` shows both.
"""

from quicsim import (AnyStreamEvent, ScenarioContext, SendFlags, Settings, Stream, StreamEventType, StreamShutdownFlags,
                     scenario)


@scenario(network={"delay_ms": 1}, timeout=20, settings=Settings(send_buffering=True))
async def seed_story_close_in_first_cancel(ctx: ScenarioContext) -> None:
    completions = []
    late: list[str] = []

    def handler(stream: Stream, event: AnyStreamEvent) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            completions.append((event.client_context, event.canceled))
            if event.client_context == 3:
                stream.shutdown(StreamShutdownFlags.GRACEFUL)
                late.extend(stream.send(b"late", SendFlags.NONE, n).name for n in (4, 5))
            elif event.canceled:
                stream.close()  # free everything at the first cancel

    stream = ctx.client.open_stream(handler=handler)
    stream.start()
    for n in (1, 2, 3):
        stream.send(b"x" * 100, client_context=n)
    await stream.wait_shutdown_complete(timeout=10)
    ctx.note(f"late sends {late}, completions {completions}")

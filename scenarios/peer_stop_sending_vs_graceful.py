"""A local graceful shutdown races the peer's STOP_SENDING.

Race: whichever MsQuic's worker sees first wins. If the FIN and all data were
acknowledged first, STOP_SENDING changes nothing; otherwise the send side is aborted
and the remaining sends complete canceled. Either way each send completes once.
"""

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, Stream,
                     StreamEventType, StreamShutdownFlags, scenario)


def stop_after_first_receive(conn: Connection, event: AnyConnectionEvent) -> None:
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        def on_stream(stream: Stream, e: AnyStreamEvent) -> None:
            if e.type is StreamEventType.RECEIVE and e.absolute_offset == 0:
                stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE | StreamShutdownFlags.INLINE, 5)
            elif e.type in (StreamEventType.PEER_SEND_SHUTDOWN, StreamEventType.PEER_SEND_ABORTED):
                stream.shutdown(StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE)
        event.stream.set_handler(on_stream)


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, repeat=3, server=stop_after_first_receive)
async def peer_stop_sending_vs_graceful(ctx: ScenarioContext) -> None:
    stream = ctx.client.open_stream()
    stream.start()
    for i in range(ctx.random.randint(1, 12)):
        stream.send(bytes(8000), client_context=i)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    stream.send(b"late", client_context="late")
    await stream.wait_send_shutdown_complete(timeout=15)
    stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE)
    await stream.wait_shutdown_complete(timeout=15)

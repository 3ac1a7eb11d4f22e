"""The peer sends STOP_SENDING while sends are in flight.

Race: MsQuic raises PEER_RECEIVE_ABORTED, then aborts the send side: every pending
send completes canceled, and sends made afterwards return ABORTED (not INVALID_STATE).
"""

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, Status,
                     Stream, StreamEventType, StreamShutdownFlags, scenario)


def stop_on_first_receive(conn: Connection, event: AnyConnectionEvent) -> None:
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        def on_stream(stream: Stream, e: AnyStreamEvent) -> None:
            if e.type is StreamEventType.RECEIVE:
                # Stop the peer, and finish our own (empty) side so the stream can close.
                stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE | StreamShutdownFlags.INLINE, 0x42)
                stream.shutdown(StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE)
        event.stream.set_handler(on_stream)


@scenario(network={"loss": 0.05, "delay_ms": 5}, timeout=20, server=stop_on_first_receive)
async def peer_stop_sending_in_flight(ctx: ScenarioContext) -> None:
    seen = []
    stream = ctx.client.open_stream(handler=lambda s, e: seen.append(e.type))
    stream.start()
    for i in range(40):
        stream.send(bytes(64 * 1024), client_context=i)
    await stream.wait_send_shutdown_complete(timeout=15)
    assert StreamEventType.PEER_RECEIVE_ABORTED in seen
    assert stream.send(b"x", client_context="after") is Status.ABORTED
    await stream.wait_shutdown_complete(timeout=15)

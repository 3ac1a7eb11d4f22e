"""A listener and a client on 127.0.0.1, no test framework: three sends, a graceful
shutdown, and what each side saw. Run it: ``python examples/listen_connect.py``.

Prints each SEND_COMPLETE as the client's handler gets it, the bytes the server read,
and the client's ledger (every accepted send got exactly one SEND_COMPLETE); exits 1 if
the server did not read every byte or the ledger found a problem.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import quicsim
from quicsim import ConnectionEventType, StreamEventType, StreamShutdownFlags

MESSAGES = [b"hello ", b"from ", b"quicsim"]


async def main() -> int:
    received = bytearray()
    peer_done = asyncio.Event()

    def on_server_stream(stream: Any, event: Any) -> None:
        if event.type is StreamEventType.RECEIVE:
            received.extend(event.data)
        elif event.type is StreamEventType.PEER_SEND_SHUTDOWN:  # the client's FIN, after all its data
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
            peer_done.set()

    def on_server_connection(conn: Any, event: Any) -> None:
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(on_server_stream)

    def on_client_stream(stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            print(f"SEND_COMPLETE {event.client_context} {'canceled' if event.canceled else 'acked'}")

    listener = await quicsim.listen(host="127.0.0.1", port=0, handler=on_server_connection)
    conn = await quicsim.connect("127.0.0.1", listener.port)
    stream = conn.open_stream(handler=on_client_stream)
    stream.start()
    for i, message in enumerate(MESSAGES):
        stream.send(message, client_context=f"msg-{i}")
    stream.shutdown(StreamShutdownFlags.GRACEFUL)  # the FIN follows the data
    await stream.wait_shutdown_complete(timeout=20)
    await asyncio.wait_for(peer_done.wait(), timeout=20)
    stream.close()
    conn.shutdown()
    await conn.wait_shutdown_complete(timeout=20)
    conn.close()
    listener.close()

    print(f"server read: {bytes(received).decode()}")
    print(f"client ledger: {conn.ledger.summary()}")
    return 0 if bytes(received) == b"".join(MESSAGES) and conn.ledger.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""quicsim's server for a foreign client (tests/test_peer_clients.py, tests/test_peer_ngtcp2_client.py):
the listener's handler that answers each stream and counts each send's completions, and
one run of a peer's client against it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import quicsim
from quicsim import ConnectionEventType, SendFlags, StreamEventType, StreamShutdownFlags
from quicsim.peers.clients import client_launcher

#: the server answers each chunk it reads with this many copies of it: far more than one
#: congestion window, so an abort one round trip after the first bytes finds it in flight
ANSWER_FACTOR = 400
REQUEST = 1000


class AnsweringServer:
    """The listener's handler: every RECEIVE answered (one send of ANSWER_FACTOR copies);
    while the client's direction is open, each acknowledged answer followed by one more
    chunk, up to ``more_max`` (so a send is in flight when the client aborts); FIN after the
    client's FIN; its own direction aborted when the client resets its one (as MsQuic's
    samples do). It counts each send's completions by context, the bytes sent, and what
    the client did. ``only_bidirectional``: a peer stream that is unidirectional is an error
    (HTTP/3's own streams are the framing's, never the application's)."""

    def __init__(self, more_max: int = 0, only_bidirectional: bool = False) -> None:
        self.more_max = more_max
        self.only_bidirectional = only_bidirectional
        self.accepted: list[str] = []
        self.sent: Counter[int] = Counter()
        self.more: Counter[int] = Counter()
        self.peer_finished: set[int] = set()
        self.completions: Counter[str] = Counter()
        self.canceled: set[str] = set()
        self.seen: list[tuple[str, int]] = []
        self.done = asyncio.Event()

    def on_connection(self, conn: Any, event: Any) -> None:
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            assert not (self.only_bidirectional and event.stream.id & 2), \
                "HTTP/3's unidirectional streams are not the application's"
            event.stream.set_handler(self.on_stream)
        elif event.type is ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER:
            self.seen.append(("close", event.error_code))
        elif event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
            self.done.set()

    def send(self, stream: Any, data: bytes, flags: SendFlags = SendFlags.NONE) -> None:
        context = f"{stream.id}:{len(self.accepted)}"
        if stream.send(data, flags, client_context=context) is quicsim.Status.PENDING:
            self.accepted.append(context)
            self.sent[stream.id] += len(data)

    def on_stream(self, stream: Any, event: Any) -> None:
        kind = event.type
        if kind is StreamEventType.RECEIVE:
            data = b"".join(bytes(b) for b in event.buffers)
            if data:
                self.send(stream, data * ANSWER_FACTOR)
        elif kind is StreamEventType.PEER_SEND_SHUTDOWN:
            self.peer_finished.add(stream.id)
            self.send(stream, b"", SendFlags.FIN)
        elif kind is StreamEventType.SEND_COMPLETE:
            self.completions[event.client_context] += 1
            if event.canceled:
                self.canceled.add(event.client_context)
            elif stream.id not in self.peer_finished and self.more[stream.id] < self.more_max:
                self.more[stream.id] += 1
                self.send(stream, bytes(REQUEST))
        elif kind is StreamEventType.PEER_RECEIVE_ABORTED:
            self.seen.append(("stop-sending", event.error_code))
        elif kind is StreamEventType.PEER_SEND_ABORTED:
            self.seen.append(("reset", event.error_code))
            stream.shutdown(StreamShutdownFlags.ABORT_SEND, event.error_code)


async def serve_one_client(peer: str, actions: tuple[str, ...], server: AnsweringServer
                           ) -> tuple[AnsweringServer, dict[str, Any], list[dict[str, Any]], int]:
    """Listen as the peer's launcher says (its ALPN and framing), run its client with
    ``actions``, wait for it to exit and for the connection to end; returns (server, the
    ledger's report, the client's reports, its exit status)."""
    ledger = quicsim.Ledger()
    clients = client_launcher(peer)
    listener = await quicsim.listen(handler=clients.server_handler(server.on_connection, actions), ledger=ledger,
                                    alpn=clients.alpn)
    handle = None
    try:
        handle = await clients.start_client(listener.port, actions, size=REQUEST)
        status = await clients.wait_client(handle)
        await asyncio.wait_for(server.done.wait(), 10)
    finally:
        if handle is not None:
            await clients.stop(handle)
        listener.close()
    return server, ledger.report(), handle.events, status


def completed_exactly_once(server: AnsweringServer, report: dict[str, Any]) -> None:
    """The ledger's report and the server's own count agree: every accepted send completed once."""
    assert report["ok"] and report["pending"] == 0 and not report["leaks"], report
    assert server.accepted and report["sends"] == len(server.accepted) == report["completions"], report
    assert set(server.completions) == set(server.accepted), (server.completions, server.accepted)
    assert set(server.completions.values()) == {1}, server.completions

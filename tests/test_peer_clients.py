"""A foreign stack (picoquic, quiche) as the CLIENT of ``quicsim.listen()``: the listener answers
each stream, and its ledger judges the server's sends, acked on echo, canceled exactly once
after the client's STOP_SENDING, RESET_STREAM or connection close. Skipped, with the
command that installs it, where the peer is not installed (docs/peers.md)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import quicsim
from quicsim import ConnectionEventType, SendFlags, StreamEventType, StreamShutdownFlags
from quicsim.peers.clients import CLIENT_CODES, CLIENT_PEERS, client_launcher, normalize_actions

from .conftest import installed_peers

#: the server answers each chunk it reads with this many copies of it: far more than one
#: congestion window, so an abort one round trip after the first bytes finds it in flight
ANSWER_FACTOR = 400
REQUEST = 1000
#: the most chunks the server sends after its first answer while the client's direction is open
MAX_MORE = 2000


#: each client on raw streams in turn (ngtcp2's HTTP/3 client: tests/test_peer_ngtcp2_client.py);
#: the test skips, saying how to install it, where it is not installed
peer = installed_peers([p for p in CLIENT_PEERS if p != "ngtcp2"], client_launcher)


class AnsweringServer:
    """The listener's handler: every RECEIVE answered (one send); while the client's
    direction is open, each acknowledged answer followed by one more chunk (so a send is
    always in flight when the client aborts: up to MAX_MORE); FIN after the client's FIN;
    its own direction aborted when the client resets its one (as MsQuic's samples do). It
    counts each send's completions by context, the bytes sent, and what the client did."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.sent: Counter[int] = Counter()
        self.more: Counter[int] = Counter()
        self.peer_finished: set[int] = set()
        self.completions: Counter[str] = Counter()
        self.canceled: set[str] = set()
        self.seen: list[tuple[str, int]] = []
        self.done = asyncio.Event()

    def on_connection(self, conn, event) -> None:
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(self.on_stream)
        elif event.type is ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER:
            self.seen.append(("close", event.error_code))
        elif event.type is ConnectionEventType.SHUTDOWN_COMPLETE:
            self.done.set()

    def send(self, stream, data: bytes, flags: SendFlags = SendFlags.NONE) -> None:
        context = f"{stream.id}:{len(self.accepted)}"
        if stream.send(data, flags, client_context=context) is quicsim.Status.PENDING:
            self.accepted.append(context)
            self.sent[stream.id] += len(data)

    def on_stream(self, stream, event) -> None:
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
            elif stream.id not in self.peer_finished and self.more[stream.id] < MAX_MORE:
                self.more[stream.id] += 1
                self.send(stream, bytes(REQUEST))
        elif kind is StreamEventType.PEER_RECEIVE_ABORTED:
            self.seen.append(("stop-sending", event.error_code))
        elif kind is StreamEventType.PEER_SEND_ABORTED:
            self.seen.append(("reset", event.error_code))
            stream.shutdown(StreamShutdownFlags.ABORT_SEND, event.error_code)


async def _serve_one_client(peer: str, actions: tuple[str, ...]):
    """Listen, run the peer's client with ``actions``, wait for it to exit and for the
    connection to end; returns (server, ledger report, client's reports, exit status)."""
    ledger = quicsim.Ledger()
    server = AnsweringServer()
    listener = await quicsim.listen(handler=server.on_connection, ledger=ledger)
    clients = client_launcher(peer)
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


def _completed_exactly_once(server: AnsweringServer, report) -> None:
    assert report["ok"] and report["pending"] == 0, report
    assert server.accepted and report["sends"] == len(server.accepted) == report["completions"], report
    assert set(server.completions) == set(server.accepted), (server.completions, server.accepted)
    assert set(server.completions.values()) == {1}, server.completions


def test_the_servers_answers_to_a_foreign_client_are_acked(peer):
    server, report, events, status = asyncio.run(_serve_one_client(peer, ("echo", "echo")))
    assert status == 0, events
    fins = [e for e in events if e.get("event") == "fin-received"]
    assert sorted(e["stream"] for e in fins) == [0, 4], events
    assert all(e["bytes"] == server.sent[e["stream"]] >= REQUEST * ANSWER_FACTOR for e in fins), (fins, server.sent)
    _completed_exactly_once(server, report)
    assert report["acked"] == report["sends"] >= 4 and report["canceled"] == 0, report  # answers + FINs
    assert server.seen == [("close", 0)]


@pytest.mark.parametrize("action", ["stop-sending", "reset", "close-connection"])
def test_the_foreign_clients_abort_cancels_the_servers_sends_exactly_once(peer, action):
    server, report, events, status = asyncio.run(_serve_one_client(peer, (action,)))
    assert status == 0, events
    assert [e["event"] for e in events].count(action) == 1, events
    code = CLIENT_CODES[action]
    assert (action if action != "close-connection" else "close", code) in server.seen, server.seen
    _completed_exactly_once(server, report)
    assert report["canceled"] == len(server.canceled) >= 1, report
    if action == "stop-sending" and peer == "picoquic":
        # aioquic answers STOP_SENDING with RESET_STREAM (RFC 9000 3.5); quiche's client
        # has cancelled its reader, so it reports nothing more on the stream
        assert [e for e in events if e.get("event") == "reset-received"] == [
            {"event": "reset-received", "stream": 0, "code": code}], events
    if action == "reset":  # the server aborted its own direction in answer
        assert {"event": "reset-received", "stream": 0, "code": code} in events, events


def test_every_action_on_one_connection(peer):
    """Echo beside the aborts on one connection: the echo's sends acked, the aborted
    streams' canceled, each send completed once."""
    server, report, events, status = asyncio.run(_serve_one_client(peer, ("echo", "stop-sending", "reset")))
    assert status == 0, events
    assert {e["stream"] for e in events if e.get("event") == "fin-received"} >= {0}, events
    _completed_exactly_once(server, report)
    on = {sid: {c for c in server.accepted if c.startswith(f"{sid}:")} for sid in (0, 4, 8)}
    assert len(on[0]) >= 2 and not on[0] & server.canceled, (on, server.canceled)  # answers + FIN, acked
    assert on[4] & server.canceled and on[8] & server.canceled, (on, server.canceled)
    assert server.canceled <= on[4] | on[8] and report["canceled"] == len(server.canceled), report


def test_the_client_menu_is_checked():
    assert normalize_actions("reset") == ("reset",)
    with pytest.raises(ValueError, match="unknown client action 'bogus'"):
        normalize_actions(("echo", "bogus"))
    with pytest.raises(ValueError, match="no client for peer"):
        client_launcher("bogus")


def test_a_client_that_gets_no_answer_is_stopped_by_its_pid(peer):
    """A client whose server never answers (a bound UDP socket that reads nothing) is
    ended by its process id, and says it stopped."""
    import os
    import socket

    async def main():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        clients = client_launcher(peer)
        handle = await clients.start_client(silent.getsockname()[1], ("echo",))
        try:
            os.kill(handle.pid, 0)  # running, still trying to connect
        finally:
            await clients.stop(handle)
            silent.close()
        with pytest.raises(ProcessLookupError):
            os.kill(handle.pid, 0)
        return handle

    handle = asyncio.run(main())
    assert handle.saw("stopped") and not handle.saw("done") and not handle.saw("connected"), handle.events

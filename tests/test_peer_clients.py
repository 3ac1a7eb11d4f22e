"""A foreign stack (picoquic, quiche) as the CLIENT of ``quicsim.listen()``: the listener answers
each stream, and its ledger judges the server's sends, acked on echo, canceled exactly once
after the client's STOP_SENDING, RESET_STREAM or connection close. Skipped, with the
command that installs it, where the peer is not installed (docs/peers.md)."""

from __future__ import annotations

import asyncio

import pytest

from quicsim.peers.clients import CLIENT_CODES, CLIENT_PEERS, client_launcher, normalize_actions

from .conftest import installed_peers
from .peer_servers import ANSWER_FACTOR, REQUEST, AnsweringServer, completed_exactly_once, serve_one_client

#: the most chunks the server sends after its first answer while the client's direction is open
MAX_MORE = 2000


#: each client on raw streams in turn (ngtcp2's HTTP/3 client: tests/test_peer_ngtcp2_client.py);
#: the test skips, saying how to install it, where it is not installed
peer = installed_peers([p for p in CLIENT_PEERS if p != "ngtcp2"], client_launcher)
#: every client, ngtcp2's included (for what does not depend on the framing)
any_peer = installed_peers(list(CLIENT_PEERS), client_launcher, name="any_peer")


def _serve_one_client(peer: str, actions: tuple[str, ...]):
    return serve_one_client(peer, actions, AnsweringServer(more_max=MAX_MORE))


def test_the_servers_answers_to_a_foreign_client_are_acked(peer):
    server, report, events, status = asyncio.run(_serve_one_client(peer, ("echo", "echo")))
    assert status == 0, events
    fins = [e for e in events if e.get("event") == "fin-received"]
    assert sorted(e["stream"] for e in fins) == [0, 4], events
    assert all(e["bytes"] == server.sent[e["stream"]] >= REQUEST * ANSWER_FACTOR for e in fins), (fins, server.sent)
    completed_exactly_once(server, report)
    assert report["acked"] == report["sends"] >= 4 and report["canceled"] == 0, report  # answers + FINs
    assert server.seen == [("close", 0)]


@pytest.mark.parametrize("action", ["stop-sending", "reset", "close-connection"])
def test_the_foreign_clients_abort_cancels_the_servers_sends_exactly_once(peer, action):
    server, report, events, status = asyncio.run(_serve_one_client(peer, (action,)))
    assert status == 0, events
    assert [e["event"] for e in events].count(action) == 1, events
    code = CLIENT_CODES[action]
    assert (action if action != "close-connection" else "close", code) in server.seen, server.seen
    completed_exactly_once(server, report)
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
    completed_exactly_once(server, report)
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


def test_a_client_that_gets_no_answer_is_stopped_by_its_pid(any_peer):
    """A client whose server never answers (a bound UDP socket that reads nothing) is
    ended by its process id, and says it stopped."""
    import os
    import socket

    async def main():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        clients = client_launcher(any_peer)
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

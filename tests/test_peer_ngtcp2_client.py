"""ngtcp2's HTTP/3 client (Debian's gtlsclient) as the CLIENT of ``quicsim.listen()``: the
listener answers in HTTP/3 framing, and its ledger judges the server's sends, acked on
echo, canceled exactly once after the client's STOP_SENDING or its connection close. Real processes on 127.0.0.1; skipped, with the command that installs
it, where gtlsclient is not installed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from quicsim.loader import load_scenarios
from quicsim.peers import PeerNotInstalled
from quicsim.peers.clients import CLIENT_PEERS, client_launcher
from quicsim.peers.h3 import H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR, H3_NO_ERROR, response_preamble
from quicsim.peers.ngtcp2_client import INSTALL, client_event
from quicsim.runner import RunOptions, run_job

from .conftest import skip_unless_installed
from .peer_servers import ANSWER_FACTOR, REQUEST, AnsweringServer, completed_exactly_once, serve_one_client

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ngtcp2():
    skip_unless_installed(client_launcher("ngtcp2"))


def _serve(actions: tuple[str, ...]):
    """Listen as the launcher says (ALPN h3, HTTP/3 framing), run gtlsclient with ``actions``."""
    return serve_one_client("ngtcp2", actions, AnsweringServer(only_bidirectional=True))


def _events(events, name):
    return [e for e in events if e.get("event") == name]


def test_the_servers_http3_answers_reach_ngtcp2s_client_and_are_acked(ngtcp2):
    server, report, events, status = asyncio.run(_serve(("echo", "echo")))
    assert status == 0 and _events(events, "done") and _events(events, "alpn") == [
        {"event": "alpn", "alpn": "h3"}], events
    assert sorted(e["stream"] for e in _events(events, "fin-received")) == [0, 4], events
    # the body the client downloaded is exactly the application's bytes (frames stripped)
    bodies = {e["stream"]: e["bytes"] for e in _events(events, "body")}
    assert bodies == {0: server.sent[0], 4: server.sent[4]} and min(bodies.values()) >= REQUEST * ANSWER_FACTOR
    completed_exactly_once(server, report)
    # the client closes with H3_NO_ERROR the moment it has read both answers: the sends
    # whose ACK that close overtook (the tail of a stream, its FIN among them) complete
    # canceled, as MsQuic completes what is pending at a close; never one before an acked one
    assert server.seen == [("close", H3_NO_ERROR)] and _events(events, "closed") == [
        {"event": "closed", "code": H3_NO_ERROR}], (server.seen, events)
    assert report["acked"] + report["canceled"] == report["sends"] and report["acked"] >= 1, report
    for sid in (0, 4):
        outcomes = [c in server.canceled for c in server.accepted if c.startswith(f"{sid}:")]
        assert outcomes == sorted(outcomes), (sid, server.accepted, server.canceled)  # acked..., canceled...
    assert not _events(events, "reset") and not _events(events, "stop-sending"), events


def test_a_malformed_answer_has_ngtcp2s_client_stop_sending_cancelling_the_send_once(ngtcp2):
    server, report, events, status = asyncio.run(_serve(("stop-sending",)))
    assert status == 0, events
    assert _events(events, "stop-sending") == [{"event": "stop-sending", "stream": 0, "code": H3_MESSAGE_ERROR}]
    # its own direction too, while its request is not all acknowledged (ngtcp2's rule)
    assert _events(events, "reset") in ([], [{"event": "reset", "stream": 0, "code": H3_MESSAGE_ERROR}]), events
    assert ("stop-sending", H3_MESSAGE_ERROR) in server.seen, server.seen
    # MsQuic answers STOP_SENDING with RESET_STREAM of its own direction
    assert _events(events, "reset-received") == [
        {"event": "reset-received", "stream": 0, "code": H3_MESSAGE_ERROR}], events
    completed_exactly_once(server, report)
    assert report["canceled"] == len(server.canceled) >= 1 and "0:0" in server.canceled, (report, server.canceled)


def test_a_frame_out_of_place_has_ngtcp2s_client_close_the_connection(ngtcp2):
    server, report, events, status = asyncio.run(_serve(("close-connection",)))
    assert status == 0, events
    assert _events(events, "close-connection") == [{"event": "close-connection", "code": H3_FRAME_UNEXPECTED}]
    assert server.seen == [("close", H3_FRAME_UNEXPECTED)], server.seen
    completed_exactly_once(server, report)
    assert report["canceled"] == len(server.canceled) >= 1 and report["acked"] == 0, report


def test_the_peer_scenario_passes_through_the_relay(ngtcp2):
    [spec] = load_scenarios([str(REPO / "peer_scenarios" / "ngtcp2_client_aborts.py")])
    result = run_job(spec, 1)
    assert result["passed"] and result["error"] is None, result
    assert result["peer_client"] == "ngtcp2" and result["ok"] and result["pending"] == 0 and not result["leaks"]
    assert result["sends"] == result["completions"] == result["acked"] + result["canceled"], result
    assert result["acked"] >= 2 and result["canceled"] >= 2, result
    events = [e["event"] for e in result["peer_events"]]
    for action in ("stop-sending", "close-connection"):
        assert events.count(action) == 1, events
    assert events.count("reset") <= 1, events
    assert result["link"]["to_server"]["forwarded"] > 0


# The late send of issue 4307 to ngtcp2's client: tests/test_peer_client_runs.py, with every client.


def test_reset_is_skipped_saying_why(ngtcp2):
    reason = client_launcher("ngtcp2").unsupported(("echo", "reset"))
    assert reason is not None and "resets its own direction only beside a STOP_SENDING" in reason
    assert client_launcher("ngtcp2").unsupported(("echo", "stop-sending", "close-connection")) is None
    with pytest.raises(PeerNotInstalled, match="only beside a STOP_SENDING"):
        asyncio.run(client_launcher("ngtcp2").start_client(1, ("reset",)))
    [spec] = load_scenarios([str(REPO / "peer_scenarios" / "peer_client_aborts.py")])
    result = run_job(spec, 1, RunOptions(peer_client="ngtcp2"))
    assert result["skipped"] == reason and result["peer_client"] == "ngtcp2", result  # nothing ran


def test_the_log_reader_and_the_registration():
    assert "ngtcp2" in CLIENT_PEERS and client_launcher("ngtcp2").alpn == "h3"
    line = (b"I00000030 0x70 frm tx 10 1RTT CONNECTION_CLOSE(0x1d) error_code=(unknown)(0x105) frame_type=0 "
            b"reason_len=0 reason=[]")
    assert client_event(line) == {"event": "close-connection", "code": H3_FRAME_UNEXPECTED}
    assert client_event(line.replace(b"0x105", b"0x100")) == {"event": "closed", "code": H3_NO_ERROR}
    assert client_event(b"QUIC handshake has completed\n") == {"event": "connected"}
    assert client_event(b"I00000030 0x70 frm rx 5 1RTT PING(0x01)") is None
    # the answers' openings: a HEADERS frame (type 1) with and without :status, a SETTINGS frame (type 4)
    assert response_preamble("ok", 0)[0] == response_preamble("malformed", 0)[0] == 0x01
    assert response_preamble("ok", 0) != response_preamble("malformed", 0)
    assert response_preamble("settings", 0) == b"\x04\x00"
    missing = client_launcher("ngtcp2").missing()
    assert missing is None or missing.endswith(INSTALL), missing


PLUGIN_TESTS = """
    import pytest
    from quicsim import ConnectionEventType, Status, StreamShutdownFlags

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer_client="ngtcp2", peer_client_behaviour="close-connection")
    async def test_with_its_client(quicsim_pair, quicsim_peer):
        assert quicsim_pair.client is None and quicsim_pair.server.connected
        [close] = await quicsim_peer.wait_event("close-connection", timeout=15)
        assert close["code"] == 0x105  # H3_FRAME_UNEXPECTED

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer_client="ngtcp2", peer_client_behaviour="reset")
    async def test_what_it_cannot_do(quicsim_pair):
        raise AssertionError("not reached")

    LATE = []

    def late_sender(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(lambda s, e: None)
            LATE.append(event.stream)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer_client="ngtcp2", server_handler=late_sender,
                         server_settings=__import__("quicsim").Settings(faults=frozenset({"drop-send-after-shutdown"})))
    async def test_a_servers_leak_fails_it(quicsim_pair, quicsim_peer):
        import asyncio
        while not LATE:
            await asyncio.sleep(0.01)
        stream = LATE[0]
        stream.send(b"answer", client_context="answer")
        await asyncio.sleep(0)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        assert stream.send(b"late", client_context="the-servers-late-send") is Status.PENDING
        await quicsim_peer.wait_event("fin-received", timeout=15)
"""


def test_ngtcp2s_client_as_a_pytest_fixture(pytester: pytest.Pytester, ngtcp2):
    """The plugin's peer_client=ngtcp2: a run passes, an action it cannot do skips saying
    why, and a server's leak (known bad) fails the test."""
    pytester.makepyfile(PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict", "-rfs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    text = result.stdout.str()
    assert "FAILED test_ngtcp2s_client_as_a_pytest_fixture.py::test_a_servers_leak_fails_it" in text, text
    assert "'the-servers-late-send'" in text and "only beside a STOP_SENDING" in text, text

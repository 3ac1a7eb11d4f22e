"""ngtcp2's HTTP/3 example server as the peer (quicsim.peers.ngtcp2, quicsim.peers.h3): the
HTTP/3 framing the client puts on its streams, the server's frame log read as its report,
the answer to a request, the menus it cannot play, and a stream it leaves half-open after
quicsim's RESET_STREAM named as its doing. Real server process, real UDP on 127.0.0.1;
skipped with the install command where Debian's ngtcp2-server is not installed."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pylsqpack
import pytest

import quicsim
from quicsim import SendFlags, StreamEventType
from quicsim.loader import load_scenarios
from quicsim.network import Network
from quicsim.peers import h3, launcher
from quicsim.peers.ngtcp2 import parse_frame_line, unsupported
from quicsim.peers.pair import open_peer_pair
from quicsim.runner import RunOptions, run_job
from quicsim.settings import Settings

from .conftest import skip_unless_installed

REPO = Path(__file__).resolve().parent.parent
NGTCP2 = RunOptions(peer="ngtcp2")


@pytest.fixture
def ngtcp2():
    skip_unless_installed(launcher("ngtcp2"))


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """The HTTP/3 frames in ``data`` (type, payload), all of it consumed."""
    frames, at = [], 0

    def varint() -> int:
        nonlocal at
        length = 1 << (data[at] >> 6)
        value = int.from_bytes(data[at:at + length], "big") & ((1 << (8 * length - 2)) - 1)
        at += length
        return value

    while at < len(data):
        kind, size = varint(), varint()
        frames.append((kind, data[at:at + size]))
        at += size
    assert at == len(data), "a frame runs past the data"
    return frames


def test_the_framing_is_http3():
    # RFC 9000 A.1's examples
    assert h3.varint(37) == bytes.fromhex("25") and h3.varint(15293) == bytes.fromhex("7bbd")
    assert h3.varint(494878333) == bytes.fromhex("9d7f3e7d")
    assert h3.varint(151288809941952652) == bytes.fromhex("c2197c5eff14e88c")
    assert h3.control_stream_bytes() == b"\x00\x04\x00"  # control stream, empty SETTINGS
    request = h3.request_preamble("post", 0) + h3.data_frame_header(3) + b"abc"
    (kind, block), data = _frames(request)
    assert kind == h3.HEADERS and data == (h3.DATA, b"abc")
    decoder = pylsqpack.Decoder(4096, 16)
    _, headers = decoder.feed_header(0, block)
    assert dict(headers) == {b":method": b"POST", b":scheme": b"https", b":authority": b"localhost",
                             b":path": b"/1000"}
    _, malformed = pylsqpack.Decoder(4096, 16).feed_header(0, _frames(h3.request_preamble("malformed", 0))[0][1])
    assert b":authority" not in dict(malformed)
    assert _frames(h3.request_preamble("settings", 0)) == [(h3.SETTINGS, b"")]


def test_the_servers_frame_log_is_read_as_its_report():
    line = (b"I00000353 0x5ab1 frm tx 12 1RTT STOP_SENDING(0x05) id=0x4 "
            b"app_error_code=H3_NO_ERROR(0x100)\n")
    assert parse_frame_line(line) == {"event": "stop-sending", "stream": 4, "code": 0x100}
    line = b"I00000354 0x5ab1 frm tx 13 1RTT RESET_STREAM(0x04) id=0x8 app_error_code=(unknown)(0x10e) final_size=0"
    assert parse_frame_line(line) == {"event": "reset", "stream": 8, "code": 0x10E}
    line = (b"I00000023 0x0e59 frm tx 4 1RTT CONNECTION_CLOSE(0x1d) error_code=(unknown)(0x105) "
            b"frame_type=0 reason_len=0 reason=[]")
    assert parse_frame_line(line) == {"event": "close-connection", "code": 0x105}
    assert parse_frame_line(b"I1 0x1 frm rx 9 1RTT STREAM(0x0f) id=0x0 fin=1 offset=5 len=3 uni=0") == \
        {"event": "fin-received", "stream": 0}
    # not reports: a STREAM frame without FIN, the server's own uni streams, other frames, text
    assert parse_frame_line(b"I1 0x1 frm rx 9 1RTT STREAM(0x0e) id=0x0 fin=0 offset=5 len=3 uni=0") is None
    assert parse_frame_line(b"I1 0x1 frm tx 9 1RTT STREAM(0x0f) id=0x3 fin=1 offset=0 len=3 uni=1") is None
    assert parse_frame_line(b"I1 0x1 frm tx 0 Initial ACK(0x03) largest_ack=0 ack_delay=0(0)") is None
    assert parse_frame_line(b"Using document root /tmp/\n") is None


def test_a_menu_the_server_cannot_play_is_skipped_saying_why(tmp_path):
    assert unsupported(("stop-sending", "reset", "close-connection")) is None
    assert unsupported(("echo", "reset")) is None
    why = unsupported(("stop-sending", "echo"))
    assert why is not None and "--early-response" in why and "echo" in why
    path = tmp_path / "scn.py"
    path.write_text(textwrap.dedent("""
        from quicsim import scenario

        @scenario(peer="ngtcp2", peer_behaviour=("stop-sending", "answer-after-fin"))
        async def mixed(ctx):
            pass
        """))
    result = run_job(load_scenarios([str(path)])[0], 1, NGTCP2)
    assert result["skipped"].startswith("ngtcp2's server sends STOP_SENDING only with --early-response")


def test_a_request_is_answered_after_its_fin_and_only_the_applications_sends_are_judged(ngtcp2):
    async def main():
        loop = asyncio.get_running_loop()
        ledger = quicsim.Ledger()
        pair = await open_peer_pair("ngtcp2", ("answer-after-fin",), network=Network({}, 1, loop.time), seed=1,
                                    client_settings=Settings(), ledger=ledger)
        got = bytearray()
        completes: list[object] = []

        def on_event(stream, event):
            if event.type is StreamEventType.RECEIVE:
                got.extend(b"".join(bytes(b) for b in event.buffers))
            elif event.type is StreamEventType.SEND_COMPLETE:
                completes.append(event.client_context)

        try:
            assert pair.client.negotiated_alpn == "h3"
            stream = pair.client.open_stream(handler=on_event)
            stream.start()
            stream.send(bytes(30000), client_context="first")
            stream.send(b"last", SendFlags.FIN, client_context="fin")
            await stream.wait_shutdown_complete(timeout=10)
            await pair.peer.wait_event("fin-sent")
        finally:
            await pair.shutdown(5)
        frames = _frames(bytes(got))
        assert [kind for kind, _ in frames] == [h3.HEADERS, h3.DATA]
        assert len(frames[1][1]) == h3.ANSWER_BYTES
        events = [e["event"] for e in pair.peer.events]
        assert events.index("fin-received") < events.index("fin-sent")  # it answered after the FIN
        assert completes == ["first", "fin"]  # one completion per application send, none for HTTP/3's
        report = ledger.report()
        assert report["ok"] and report["sends"] == report["acked"] == 2, report

    asyncio.run(main())


def test_the_half_open_stream_after_quicsims_reset_is_the_peers(ngtcp2, tmp_path):
    """The scenario that leaves it passes and the run names the peer; one that waits for it
    fails naming the peer, not a stream quicsim did not shut down; when quicsim also stops
    the peer's direction (abort both) nothing is left half-open."""
    spec = load_scenarios([str(REPO / "peer_scenarios" / "ngtcp2_half_open.py")], "ngtcp2_half_open_after_reset")[0]
    left = run_job(spec, 1, NGTCP2)
    assert left["passed"], left["error"]
    assert left["unsettled"].startswith("the ngtcp2 peer left client stream 0 half-open"), left["unsettled"]
    assert "streams not shut down" not in left["unsettled"]
    assert left["sends"] == left["canceled"] == 4
    path = tmp_path / "waits.py"
    path.write_text(textwrap.dedent("""
        from quicsim import StreamShutdownFlags, scenario

        @scenario(peer="ngtcp2", timeout=3)
        async def waits_for_the_peer(ctx):
            stream = ctx.client.open_stream()
            stream.start()
            stream.send(bytes(1000), client_context="request")
            stream.shutdown(StreamShutdownFlags.ABORT_SEND, 7)
            await stream.wait_shutdown_complete()

        @scenario(peer="ngtcp2", timeout=10)
        async def aborts_both(ctx):
            stream = ctx.client.open_stream()
            stream.start()
            stream.send(bytes(1000), client_context="request")
            stream.shutdown(StreamShutdownFlags.ABORT, 7)
            await stream.wait_shutdown_complete()
        """))
    waits, both = (run_job(s, 1, NGTCP2) for s in load_scenarios([str(path)]))
    assert not waits["passed"]
    assert waits["error"].startswith("the ngtcp2 peer left client stream 0 half-open: after quicsim's "
                                     "RESET_STREAM it never ended its direction"), waits["error"]
    assert "timed out" not in waits["error"] and "not shut down" not in waits["error"]
    assert both["passed"] and both["error"] is None and both["unsettled"] is None, both


def test_without_the_server_a_run_is_skipped_with_the_install_command(monkeypatch):
    from quicsim.peers import ngtcp2 as module

    monkeypatch.setattr(module, "SERVER", "/nonexistent/gtlsserver")
    spec = load_scenarios([str(REPO / "scenarios" / "send_then_graceful_shutdown.py")])[0]
    result = run_job(spec, 1, NGTCP2)
    assert result["skipped"] == ("ngtcp2 peer not installed (no /nonexistent/gtlsserver); install it with: "
                                 "apt-get install ngtcp2-server ngtcp2-client")

"""Each foreign stack (picoquic, quiche, ngtcp2) as the server of quicsim's client (quicsim.peers):
the launcher, each behaviour of the menu, the scenario that sees the peer's STOP_SENDING,
RESET_STREAM and CONNECTION_CLOSE, and the ledger judging the client's sends. A peer that
is not installed is skipped with the command that installs it (docs/peers.md)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

import quicsim
from quicsim import SendFlags, StreamEventType
from quicsim.loader import load_scenarios
from quicsim.peers import PEERS, launcher
from quicsim.peers.process import udp_sockets
from quicsim.runner import RunOptions, run_job

from .conftest import eventually, installed_peers

REPO = Path(__file__).resolve().parent.parent


#: each peer's name in turn; the test skips, saying how to install it, where it is not installed
peer = installed_peers(PEERS, launcher)


def _spec(path: Path, name: str | None = None):
    specs = load_scenarios([str(path)], name)
    return specs[0]


def test_launcher_listens_on_loopback_only_and_stops_by_pid(peer):
    async def main():
        peers = launcher(peer)
        handle = await peers.start(["echo"])
        try:
            assert handle.host == "127.0.0.1" and handle.port > 0 and handle.behaviours == ("echo",)
            port = f"{handle.port:04X}"
            if peer == "picoquic":
                # one IPv4 socket on the wildcard address (picoquic's bind), pinned to the
                # loopback interface, as the server checked it before it listened
                assert [(b["family"], b["device"], b["port"]) for b in handle.bound] == [("ipv4", "lo", handle.port)]
                assert udp_sockets(handle.pid) == [f"00000000:{port}"]
            else:  # Node binds the address it is given: 127.0.0.1 only
                assert udp_sockets(handle.pid) == [f"0100007F:{port}"]
            os.kill(handle.pid, 0)  # running
        finally:
            await peers.stop(handle)
        with pytest.raises(ProcessLookupError):
            os.kill(handle.pid, 0)
        assert handle.saw("stopped")  # it heard the SIGTERM and closed its server

    asyncio.run(main())


def _gone(pid: int) -> bool:
    """The process is no more (or a zombie nobody reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_the_server_ends_by_itself_when_its_launcher_is_gone(peer):
    """A quicsim killed outright leaves no server behind: the server holds the launcher's
    pipe on its stdin and stops at its end of file (ngtcp2's reads no input: the kernel
    sends it SIGTERM when the launcher's process dies, which a real child process shows)."""
    if peer == "ngtcp2":
        import subprocess
        import sys

        script = ("import asyncio, os, sys\n"
                  "from quicsim.peers import launcher\n"
                  "async def main():\n"
                  "    handle = await launcher('ngtcp2').start(['echo'])\n"
                  "    print(handle.pid, flush=True)\n"
                  "    os._exit(9)  # killed outright: no stop, no cleanup\n"
                  "asyncio.run(main())\n")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 9, done.stderr
        server = int(done.stdout.split()[0])

        async def wait_gone():
            await eventually(lambda: _gone(server), f"the orphaned server {server} to end", timeout=10)

        asyncio.run(wait_gone())
        return

    async def main():
        peers = launcher(peer)
        handle = await peers.start(["echo"])
        process = peers._processes[handle.pid]
        try:
            process.proc.stdin.close()  # what the kernel does when the launcher's process dies
            assert await asyncio.wait_for(process.proc.wait(), 10) == 0
            assert handle.saw("stopped") or (await handle.wait_event("stopped"))
        finally:
            await peers.stop(handle)

    asyncio.run(main())


@pytest.mark.parametrize("behaviour", ["echo", "answer-after-fin"])
def test_answering_behaviours_send_back_what_they_read(peer, behaviour):
    """echo answers as bytes come; answer-after-fin only once the client's FIN is in."""
    if peer == "ngtcp2":
        pytest.skip("ngtcp2's server answers an HTTP/3 request with a body of its own "
                    "(tests/test_peer_ngtcp2.py), it echoes nothing")

    async def main():
        peers = launcher(peer)
        handle = await peers.start([behaviour])
        ledger = quicsim.Ledger()
        client = None
        try:
            client = await quicsim.connect("127.0.0.1", handle.port, ledger=ledger)
            got = bytearray()
            order: list[str] = []

            def on_event(stream, event):
                if event.type is StreamEventType.RECEIVE:
                    got.extend(b"".join(bytes(b) for b in event.buffers))
                    order.append("receive")
                elif event.type is StreamEventType.SEND_SHUTDOWN_COMPLETE:
                    order.append("fin-acked")

            stream = client.open_stream(handler=on_event)
            stream.start()
            payload = bytes(range(256)) * 200
            stream.send(payload[:30000], client_context="first")
            if behaviour == "echo":
                await asyncio.wait_for(_until(lambda: len(got) >= 30000), 10)
            stream.send(payload[30000:], SendFlags.FIN, client_context="fin")
            await stream.wait_shutdown_complete(timeout=10)
            assert bytes(got) == payload
            await handle.wait_event("fin-received")
            client.shutdown()
            await client.wait_shutdown_complete(timeout=10)
        finally:
            if client is not None:
                client.close()
            await peers.stop(handle)
        report = ledger.report()
        assert report["ok"] and report["acked"] == report["sends"] == 2, report

    asyncio.run(main())


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


def test_the_peers_stop_sending_reset_and_close_are_seen_and_every_send_completes_once(peer):
    # the scenario expects each peer's own codes: ngtcp2 picks HTTP/3's
    result = run_job(_spec(REPO / "peer_scenarios" / "peer_aborts.py"), 1, RunOptions(peer=peer))
    assert result["passed"], (result["error"], result["leaks"], result["violations"])
    assert result["peer"] == peer and result["connected"]
    actions = [e["event"] for e in result["peer_events"]]
    for action in ("stop-sending", "reset", "close-connection"):
        assert action in actions, actions
    assert result["sends"] == result["completions"] == result["acked"] + result["canceled"] > 0
    assert result["canceled"] > 0 and result["pending"] == 0
    if peer != "ngtcp2":  # ngtcp2 stops each request at its first bytes: it may acknowledge none
        assert result["acked"] > 0


def test_a_lost_completion_is_caught_against_a_peer_too(peer):
    """The ledger judges the client's sends whatever the server: a dropped completion
    (the known-bad input) is a leak, the same scenario without the fault passes."""
    PEER = RunOptions(peer=peer)
    spec = _spec(REPO / "scenarios" / "send_then_graceful_shutdown.py")
    good = run_job(spec, 1, PEER)
    assert good["passed"] and good["peer"] == peer and not good["leaks"], good["error"]
    spec = _spec(REPO / "scenarios" / "fault_drop_send_after_shutdown.py")
    bad = run_job(spec, 1, PEER)
    assert bad["passed"] and bad["expect"] == "leak" and bad["leaks"], bad["error"]
    assert run_job(spec, 1, replace(PEER, peer=None))["leaks"]  # as against quicsim's server


def test_client_abort_is_answered_with_reset_and_the_stream_finishes(peer):
    """quicsim's ABORT sends STOP_SENDING; the peer answers with RESET_STREAM (RFC 9000
    3.5: quiche by itself, picoquic through its application, the peer's server), so the
    stream completes."""
    result = run_job(_spec(REPO / "scenarios" / "abort_with_sends_in_flight.py"), 1, RunOptions(peer=peer))
    assert result["passed"], result["error"]
    if peer == "picoquic":
        assert [e["event"] for e in result["peer_events"]].count("stop-sending-received") == 1

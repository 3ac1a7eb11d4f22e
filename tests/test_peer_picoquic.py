"""picoquic as the server of quicsim's client (quicsim.peers): the launcher, each behaviour
of the menu, the scenario that sees its STOP_SENDING, RESET_STREAM and CONNECTION_CLOSE,
and the ledger judging the client's sends. Skipped, with the command that installs the
peer, where aiopquic is not installed (docs/peers.md)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

import quicsim
from quicsim import SendFlags, StreamEventType
from quicsim.loader import load_scenarios
from quicsim.peers import launcher
from quicsim.runner import RunOptions, run_job

REPO = Path(__file__).resolve().parent.parent
PICOQUIC = launcher("picoquic")
MISSING = PICOQUIC.missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
PEER = RunOptions(peer="picoquic")


def _spec(path: Path, name: str | None = None):
    specs = load_scenarios([str(path)], name)
    return specs[0]


def test_launcher_listens_on_loopback_only_and_stops_by_pid():
    async def main():
        handle = await PICOQUIC.start(["echo"])
        try:
            assert handle.host == "127.0.0.1" and handle.port > 0 and handle.behaviours == ("echo",)
            # one IPv4 socket, pinned to the loopback interface (picoquic binds the wildcard)
            assert [(b["family"], b["device"], b["port"]) for b in handle.bound] == [("ipv4", "lo", handle.port)]
            os.kill(handle.pid, 0)  # running
        finally:
            await PICOQUIC.stop(handle)
        with pytest.raises(ProcessLookupError):
            os.kill(handle.pid, 0)
        assert handle.saw("stopped")  # it heard the SIGTERM and closed its server

    asyncio.run(main())


def test_the_server_ends_by_itself_when_its_launcher_is_gone():
    """A quicsim killed outright leaves no server behind: the server holds the launcher's
    pipe on its stdin and stops at its end of file."""
    async def main():
        handle = await PICOQUIC.start(["echo"])
        process = PICOQUIC._processes[handle.pid]
        try:
            process.proc.stdin.close()  # what the kernel does when the launcher's process dies
            assert await asyncio.wait_for(process.proc.wait(), 10) == 0
            assert handle.saw("stopped") or (await handle.wait_event("stopped"))
        finally:
            await PICOQUIC.stop(handle)

    asyncio.run(main())


@pytest.mark.parametrize("behaviour", ["echo", "answer-after-fin"])
def test_answering_behaviours_send_back_what_they_read(behaviour):
    """echo answers as bytes come; answer-after-fin only once the client's FIN is in."""
    async def main():
        handle = await PICOQUIC.start([behaviour])
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
            await PICOQUIC.stop(handle)
        report = ledger.report()
        assert report["ok"] and report["acked"] == report["sends"] == 2, report

    asyncio.run(main())


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


def test_picoquic_stop_sending_reset_and_close_are_seen_and_every_send_completes_once():
    result = run_job(_spec(REPO / "peer_scenarios" / "picoquic_aborts.py"), 1)
    assert result["passed"], (result["error"], result["leaks"], result["violations"])
    assert result["peer"] == "picoquic" and result["connected"]
    actions = [e["event"] for e in result["peer_events"]]
    for action in ("stop-sending", "reset", "close-connection"):
        assert action in actions, actions
    assert result["sends"] == result["completions"] == result["acked"] + result["canceled"] > 0
    assert result["canceled"] > 0 and result["acked"] > 0 and result["pending"] == 0


def test_a_lost_completion_is_caught_against_picoquic_too():
    """The ledger judges the client's sends whatever the server: a dropped completion
    (the known-bad input) is a leak, the same scenario without the fault passes."""
    spec = _spec(REPO / "scenarios" / "send_then_graceful_shutdown.py")
    good = run_job(spec, 1, PEER)
    assert good["passed"] and good["peer"] == "picoquic" and not good["leaks"], good["error"]
    spec = _spec(REPO / "scenarios" / "fault_drop_send_after_shutdown.py")
    bad = run_job(spec, 1, PEER)
    assert bad["passed"] and bad["expect"] == "leak" and bad["leaks"], bad["error"]
    assert run_job(spec, 1, replace(PEER, peer=None))["leaks"]  # as against quicsim's server


def test_client_abort_is_answered_with_reset_and_the_stream_finishes():
    """quicsim's ABORT sends STOP_SENDING; the peer's server answers with RESET_STREAM
    (RFC 9000 3.5, which picoquic leaves to the application), so the stream completes."""
    result = run_job(_spec(REPO / "scenarios" / "abort_with_sends_in_flight.py"), 1, PEER)
    assert result["passed"], result["error"]
    assert [e["event"] for e in result["peer_events"]].count("stop-sending-received") == 1

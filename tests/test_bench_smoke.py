"""The benchmark entry runs end to end with tiny sizes (so it cannot rot), and its
correctness checks (bytes, FINs, completions, fuzz verdicts) fail on a short count. No
timing is asserted here: speed targets live in the benchmark's own report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import quicsim
from bench import cases
from quicsim import SendFlags
from quicsim.transport.virtual_loop import run_virtual

REPO = Path(__file__).resolve().parent.parent


def test_bench_quick_json():
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json"], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"python", "platform", "cpus"} <= report["machine"].keys()
    names = [c["name"] for c in report["cases"]]
    assert len(names) == 7 and len(set(names)) == 7
    for case in report["cases"]:
        assert {"name", "unit", "quicsim", "baseline", "ratio", "target", "met"} <= case.keys()
        assert case["ratio"] > 0 and isinstance(case["met"], bool)
    assert report["cases"][2]["pending_send_bytes"] > 0
    assert "lifecycle" in names[-1]  # a fuzz run is compared with two bare connections, not a bare handshake


async def _quicsim_sends(expect_sends: int, expect_bytes: int) -> None:
    """Five sends of 100 B on the memory link, checked against the given expectations."""
    tally = cases._Tally(1, expect_sends)
    pair = await quicsim.open_pair(transport="memory", server_handler=tally.on_connection)
    try:
        stream = pair.client.open_stream(handler=tally.on_sender)
        stream.start()
        for i in range(5):
            stream.send(bytes(100), SendFlags.FIN if i == 4 else SendFlags.NONE)
        await tally.done.wait()
        await tally.check(pair.ledger, expect_bytes, "probe", timeout=5)
    finally:
        await pair.shutdown()


def test_quicsim_check_passes_on_a_full_count():
    run_virtual(_quicsim_sends(5, 500))


def test_quicsim_check_raises_on_a_short_completion_count():
    with pytest.raises(RuntimeError, match="5 of 6 sends completed"):
        run_virtual(_quicsim_sends(6, 500))


def test_quicsim_check_raises_on_missing_bytes():
    with pytest.raises(RuntimeError, match="received 500 of 501 bytes"):
        run_virtual(_quicsim_sends(5, 501))


async def _bare_send(expect_bytes: int) -> None:
    link, server, client, sinks = await cases._bare_memory_pair()
    try:
        quic = client._quic
        quic.send_stream_data(quic.get_next_available_stream_id(), bytes(1000), end_stream=True)
        client.transmit()
        await sinks[0].done.wait()
        cases._check_sink(sinks[0], expect_bytes, 1, "probe")
    finally:
        await cases._bare_memory_close(link, server, client, sinks)


def test_bare_check_passes_and_raises_on_missing_bytes():
    run_virtual(_bare_send(1000))
    with pytest.raises(RuntimeError, match="received 1000 of 1001 bytes"):
        run_virtual(_bare_send(1001))


def test_fuzz_case_raises_when_a_run_fails():
    assert cases.fuzz_run_seconds(3) > 0
    # seed 0 fails with this fault injected (completions after SHUTDOWN_COMPLETE are discarded)
    with pytest.raises(RuntimeError, match="seed 0"):
        cases.fuzz_run_seconds(3, frozenset({"discard-after-shutdown-complete"}))


# ----------------------------------------------------------------- instruction counts


@pytest.mark.parametrize("case", ["sends", "bulk", "streams", "tracing", "bulk-udp"])
def test_each_instruction_case_does_checked_work_on_both_sides(case):
    """What a valgrind child runs: both sides of every case, tiny, with their checks."""
    from bench import instructions

    for side in instructions.CASES[case].sides:
        assert instructions._work(case, side)(2) > 0


def test_the_instruction_total_is_read_from_callgrind_and_missing_is_an_error():
    from bench.instructions import collected, loss_timeouts

    assert collected("==12== Events    : Ir\n==12== Collected : 123456789\n==12==\n") == 123456789
    with pytest.raises(RuntimeError, match="no instruction count"):
        collected("valgrind: command not found")
    assert loss_timeouts("loss timeouts: 3\n==12== Collected : 1\n") == 3
    with pytest.raises(RuntimeError, match="loss timeouts"):
        loss_timeouts("==12== Collected : 1\n")


def test_a_child_run_counts_the_loss_timeouts_it_took(monkeypatch):
    """What a child reports on its last line: a transfer over a link that drops most
    datagrams takes loss timeouts, and the counter sees them (a clean link: none)."""
    from aioquic.quic.recovery import QuicPacketRecovery

    from bench import instructions

    # restored after the test: the counter replaces aioquic's method for the process
    monkeypatch.setattr(QuicPacketRecovery, "on_loss_detection_timeout", QuicPacketRecovery.on_loss_detection_timeout)
    fired = instructions._counting_loss_timeouts()

    async def transfer(loss: float) -> None:
        pair = await quicsim.open_pair(transport="memory", network={"loss": loss}, seed=11, accept_timeout=120)
        stream = pair.client.open_stream()
        stream.start()
        stream.send(bytes(20_000), SendFlags.FIN)
        await stream.wait_send_shutdown_complete(timeout=300)
        await pair.shutdown()

    run_virtual(transfer(0.0))
    assert fired[0] == 0
    run_virtual(transfer(0.25))
    assert fired[0] > 0


def test_instruction_bench_without_valgrind_or_with_a_bad_case_says_so_in_one_line():
    env = {"PATH": str(REPO / "no-such-dir"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bench.instructions", "sends"], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "valgrind" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "bench.instructions", "nope"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "unknown case 'nope'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind to count instructions")
def test_instruction_counts_of_a_quick_run_put_quicsim_above_bare_aioquic():
    from bench.instructions import measure

    (row,) = measure(["sends"], jobs=2, quick=True)
    assert row["bare"] > 10_000 and row["quicsim"] > row["bare"], row  # quicsim's work adds to aioquic's
    assert row["ratio"] == pytest.approx(row["quicsim"] / row["bare"], rel=1e-2)

"""The fuzzer's watchdog: a run that never ends is a hang with its seed, a worker that dies
is a crash with its seed, and --time-budget ends the campaign on time whatever a run does.
The bad behaviours are switched on inside the worker processes (tests/fuzz_mutants.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from quicsim.fuzz.campaign import GRACE_SECONDS, run_campaign
from quicsim.fuzz.program import generate
from quicsim.enums import StreamShutdownFlags

REPO = Path(__file__).resolve().parent.parent
#: room for a loaded machine (process starts, imports) on top of a budget: a campaign that
#: ignored its budget would run on far past it (the spinning runs never end)
SLACK = 15
ABORT_RECEIVE = int(StreamShutdownFlags.ABORT_RECEIVE)


def _hits(seed: int) -> bool:
    """Does the program of ``seed`` call StreamShutdown with ABORT_RECEIVE at all?"""
    ops = generate(seed).ops
    return any((op[0] == "shutdown" and op[2] & ABORT_RECEIVE)
               or (op[0] == "on" and op[3][0] == "shutdown" and op[3][2] & ABORT_RECEIVE) for op in ops)


def test_a_run_that_spins_forever_is_a_hang_with_its_seed(tmp_path):
    start = time.monotonic()
    # The wall budget leaves an ordinary run (a fraction of a second) room on a busy
    # machine: only the spinning runs may exceed it.
    result = run_campaign(runs=12, seed=0, out_dir=tmp_path, wall_budget=4.0, time_budget=20,
                          worker_init="tests.fuzz_mutants:spin_forever")
    elapsed = time.monotonic() - start
    assert result.failures["hang"] >= 1, result.failures
    finding = next(f for f in result.findings if f.signature == "hang")
    assert _hits(finding.seed)
    assert "4 s of wall-clock time" in finding.detail
    assert elapsed < 20 + GRACE_SECONDS + SLACK


def test_a_slow_worker_start_is_not_counted_against_its_first_run(tmp_path):
    # each worker takes 4 s to start, longer than the 3 s a run may take (an ordinary run
    # takes a fraction of a second, with room for a loaded machine)
    result = run_campaign(runs=3, seed=0, out_dir=tmp_path, wall_budget=3.0, worker_init="tests.fuzz_mutants:slow_start")
    assert result.runs == 3 and not result.failures, result.failures


def test_the_time_budget_ends_the_campaign_while_a_run_spins(tmp_path):
    start = time.monotonic()
    result = run_campaign(runs=10_000, seed=0, out_dir=tmp_path, wall_budget=600, time_budget=3,
                          worker_init="tests.fuzz_mutants:spin_forever")
    elapsed = time.monotonic() - start
    assert elapsed < 3 + GRACE_SECONDS + SLACK, elapsed
    assert result.stopped_early and result.unfinished and _hits(result.unfinished[0])
    assert "hang" not in result.failures  # its run budget was never reached


def test_a_dead_worker_is_reported_and_replaced(tmp_path):
    result = run_campaign(runs=15, seed=0, out_dir=tmp_path, time_budget=60,
                          worker_init="tests.fuzz_mutants:exit_process")
    assert result.runs == 15  # every seed still ran
    crash = next(f for f in result.findings if f.signature == "crash")
    assert "died (exit code 3)" in crash.detail and _hits(crash.seed)
    assert 1 <= result.failures["crash"] <= sum(_hits(s) for s in range(15))


def test_a_run_past_its_virtual_time_budget_is_a_hang(tmp_path):
    start = time.monotonic()
    result = run_campaign(runs=20, seed=0, out_dir=tmp_path, time_budget=60,
                          worker_init="tests.fuzz_mutants:endless_teardown")
    assert 1 <= result.failures["hang"] <= sum(_hits(s) for s in range(20))
    finding = result.findings[0]
    assert finding.signature == "hang" and _hits(finding.seed)
    assert finding.detail == ""  # stopped by the run's own virtual-time budget, not killed
    assert finding.path is not None and finding.program.api_op_count() < finding.original_ops
    assert time.monotonic() - start < 60


def test_fuzz_command_time_budget_is_kept(tmp_path):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "100000", "--time-budget", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped by --time-budget" in proc.stdout
    assert time.monotonic() - start < 2 + GRACE_SECONDS + SLACK


def test_the_fuzzer_checks_one_seed_in_n_for_determinism(tmp_path):
    clean = run_campaign(runs=4, seed=0, out_dir=tmp_path / "clean", determinism_every=2)
    assert not clean.failures, clean.failures
    bad = run_campaign(runs=4, seed=0, out_dir=tmp_path / "bad", determinism_every=2, time_budget=120,
                       worker_init="tests.fuzz_mutants:unseeded_connection_ids")
    assert bad.failures == {"nondeterministic": 2}  # seeds 0 and 2, the ones checked
    finding = bad.findings[0]
    assert finding.seed == 0 and finding.detail.startswith("qlog client (") and "line 1: " in finding.detail
    assert "ODCID" in finding.detail and "second run" in finding.detail
    assert finding.path is not None and finding.reproduced

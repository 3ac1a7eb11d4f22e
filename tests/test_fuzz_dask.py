"""quicsim fuzz --scheduler: a campaign on a real Dask cluster (two worker processes on
127.0.0.1) finds what the local pool finds from the same seeds, keeps the per-run watchdog
and the time budget, and a missing extra or a scheduler it cannot reach is one line and
exit status 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quicsim.fuzz.campaign import GRACE_SECONDS, run_campaign
from quicsim.fuzz.dask_pool import CONNECT_SECONDS, MAX_RERUNS, RETURN_SLACK

from .fuzz_mutants import KILLED_ONCE_FILE
from .test_fuzz_watchdog import _hits

REPO = Path(__file__).resolve().parent.parent
FAULT = "drop-send-after-shutdown"  # found from seed 2 on (12 of seeds 0..19)


@pytest.fixture(scope="module")
def scheduler():
    distributed = pytest.importorskip("distributed")
    # The scheduler's HTTP server (health, metrics) on a free port: never 8787, which another
    # cluster on this machine may hold.
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


def _sandboxes_on_workers(address: str) -> dict:
    """What each Dask worker keeps for fuzz runs: proof that the runs happened there."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return client.run(lambda: sorted(__import__("quicsim.fuzz.dask_pool", fromlist=["_idle"])._idle))


def _same_campaign(local, remote) -> None:
    assert (remote.runs, remote.ops, remote.seeds) == (local.runs, local.ops, local.seeds)
    assert remote.failures == local.failures
    assert remote.no_handshake == local.no_handshake and remote.unfinished == local.unfinished == []
    assert remote.probe_hits == local.probe_hits and remote.probe_runs == local.probe_runs
    assert [(f.signature, f.seed, f.original_ops, f.program, f.reproduced) for f in remote.findings] == \
        [(f.signature, f.seed, f.original_ops, f.program, f.reproduced) for f in local.findings]


def test_a_clean_campaign_on_the_cluster_matches_the_local_pool(scheduler, tmp_path):
    local = run_campaign(runs=24, seed=1000, out_dir=tmp_path / "local", determinism_every=10)
    remote = run_campaign(runs=24, seed=1000, out_dir=tmp_path / "dask", determinism_every=10, scheduler=scheduler)
    assert remote.runs == 24 and not remote.failures and not remote.stopped_early
    assert sum(remote.probe_hits.values()) > 0  # the counts compared below are not empty
    _same_campaign(local, remote)
    assert all(_sandboxes_on_workers(scheduler).values())  # both workers ran seeds


def test_an_injected_fault_gives_the_same_findings_as_the_local_pool(scheduler, tmp_path):
    faults = frozenset([FAULT])
    local = run_campaign(runs=20, seed=0, faults=faults, out_dir=tmp_path / "local")
    remote = run_campaign(runs=20, seed=0, faults=faults, out_dir=tmp_path / "dask", scheduler=scheduler)
    assert remote.failures["leak"] >= 1 and remote.findings[0].signature == "leak"
    _same_campaign(local, remote)
    finding = remote.findings[0]
    assert finding.reproduced and finding.path is not None and finding.path.parent == tmp_path / "dask"
    assert finding.path.read_text() == local.findings[0].path.read_text()


def test_a_run_that_spins_forever_on_a_worker_is_a_hang_with_its_seed(scheduler, tmp_path):
    start = time.monotonic()
    result = run_campaign(runs=12, seed=0, out_dir=tmp_path, wall_budget=1.0, time_budget=5,
                          worker_init="tests.fuzz_mutants:spin_forever", scheduler=scheduler)
    elapsed = time.monotonic() - start
    assert result.failures["hang"] >= 1, result.failures
    finding = next(f for f in result.findings if f.signature == "hang")
    assert _hits(finding.seed) and "1 s of wall-clock time" in finding.detail
    assert elapsed < 5 + GRACE_SECONDS + RETURN_SLACK + 5, elapsed


def _workers(address: str) -> list[str]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return sorted(client.nthreads())


def test_a_run_process_that_dies_every_time_is_a_crash_after_its_reruns(scheduler, tmp_path):
    seeds = range(5, 11)  # 7..10 call StreamShutdown with ABORT_RECEIVE, 5 and 6 do not
    local = run_campaign(runs=len(seeds), seed=seeds[0], out_dir=tmp_path / "local", time_budget=60,
                         worker_init="tests.fuzz_mutants:exit_process")
    result = run_campaign(runs=len(seeds), seed=seeds[0], out_dir=tmp_path / "dask", time_budget=60,
                          worker_init="tests.fuzz_mutants:exit_process", scheduler=scheduler)
    assert result.runs == len(seeds)  # every seed still ran: the worker replaced its run process
    assert 1 <= result.failures["crash"] <= sum(_hits(s) for s in seeds) < len(seeds)
    # the same seeds as where each death is final at once (the local pool): a death that
    # repeats is a crash whatever the reruns, and nothing counts twice
    assert result.failing_seeds["crash"] == local.failing_seeds["crash"] and not result.rerun
    crash = next(f for f in result.findings if f.signature == "crash")
    assert _hits(crash.seed) and crash.seed == local.findings[0].seed
    # run 1 + MAX_RERUNS times, the first rerun on the other worker
    assert f"died (exit code 3) {1 + MAX_RERUNS} times, on Dask workers {', '.join(_workers(scheduler))}" \
        in crash.detail, crash.detail


def test_a_run_process_killed_once_is_run_again_and_counted_once(scheduler, tmp_path):
    from distributed import Client

    marker = str(tmp_path / "killed")  # made by the run that is killed: at most one, ever
    with Client(scheduler, set_as_default=False) as client:
        client.run(lambda: os.environ.__setitem__(KILLED_ONCE_FILE, marker))
    seeds = range(5, 17)
    assert sum(_hits(s) for s in seeds) >= 2
    remote = run_campaign(runs=len(seeds), seed=seeds[0], out_dir=tmp_path / "dask", time_budget=60,
                          worker_init="tests.fuzz_mutants:killed_once", scheduler=scheduler)
    assert os.path.exists(marker)  # a run process was killed
    local = run_campaign(runs=len(seeds), seed=seeds[0], out_dir=tmp_path / "local")
    assert "crash" not in remote.failures and not remote.unfinished
    _same_campaign(local, remote)  # every seed counted once, as the run that finished
    [(seed, died_on)] = remote.rerun.items()
    assert _hits(seed) and len(died_on) == 1 and died_on[0] in _workers(scheduler)


def test_the_time_budget_ends_a_cluster_campaign_while_a_run_spins(scheduler, tmp_path):
    start = time.monotonic()
    # seeds 8 and 10 spin: the first shard reaches them soon, whatever the load on this machine
    result = run_campaign(runs=10_000, seed=7, out_dir=tmp_path, wall_budget=600, time_budget=4,
                          worker_init="tests.fuzz_mutants:spin_forever", scheduler=scheduler)
    elapsed = time.monotonic() - start
    assert elapsed < 4 + GRACE_SECONDS + RETURN_SLACK + 3, elapsed
    assert result.stopped_early and result.unfinished and all(_hits(s) for s in result.unfinished)
    assert "hang" not in result.failures  # its run budget was never reached


def test_fuzz_command_on_the_cluster(scheduler, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "12", "--seed", "7",
                           "--scheduler", scheduler, "--json", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["runs"], summary["seeds"], summary["failures"]) == (12, "7..18", {})
    assert not summary["stopped_early"] and sum(p["runs"] for p in summary["probes"].values()) > 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_scheduler_that_cannot_be_reached_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("distributed")
    for address, says in ((f"tcp://127.0.0.1:{_closed_port()}", "cannot connect"),
                          ("127.0.0.1", "missing port number")):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "5", "--scheduler", address,
                               "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith(f"quicsim: error: --scheduler {address}: ") and says in proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stdout == ""
        assert time.monotonic() - start < CONNECT_SECONDS + 20


def test_without_the_dask_extra_scheduler_is_one_line_and_exit_2(tmp_path):
    # None in sys.modules makes `import distributed` fail as it does where it is not installed.
    code = ("import sys; sys.modules['distributed'] = None; from quicsim.cli import main; "
            f"sys.exit(main(['fuzz', '--runs', '5', '--scheduler', 'tcp://127.0.0.1:8786', '--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == "quicsim: error: --scheduler needs dask.distributed, which is not installed: " \
                          "pip install \".[dask]\" (from the quicsim clone)\n"

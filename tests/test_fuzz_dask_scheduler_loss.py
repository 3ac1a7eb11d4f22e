"""quicsim fuzz --scheduler when the scheduler is killed mid-campaign: one line on stderr
(no tracebacks from distributed's reconnect), the partial summary on stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: how long the cluster may take to start, and the campaign to get its first shard back
START_SECONDS = 60.0


def _wait_for(condition, what: str, seconds: float = START_SECONDS):
    """Poll ``condition`` (a short call) until it returns something true; bounded in time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds:g} s")


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO, start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the worker's nanny and children too
    proc.wait(30)


def _shards_returned(address: str) -> int:
    """Shards that the campaign's client has taken back (the scheduler saw it let them go)."""
    from distributed import Client

    def count(dask_scheduler) -> int:
        return sum(str(entry[0]).startswith("quicsim-fuzz-") and entry[1] == "memory"
                   and entry[2] in ("released", "forgotten") for entry in dask_scheduler.transition_log)

    with Client(address, set_as_default=False, timeout=10) as client:
        return client.run_on_scheduler(count)


def test_a_scheduler_killed_mid_campaign_is_one_line_and_the_partial_summary(tmp_path):
    pytest.importorskip("distributed")
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = _start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
                       tmp_path / "scheduler.log")
    worker = fuzz = None
    try:
        _wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size, "the scheduler's file")
        address = json.loads(scheduler_file.read_text())["address"]
        worker = _start(["distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                         "--dashboard-address", "127.0.0.1:0"], tmp_path / "worker.log")
        fuzz = subprocess.Popen([sys.executable, "-m", "quicsim", "fuzz", "--runs", "1000000", "--time-budget", "600",
                                 "--scheduler", address, "--out", str(tmp_path / "out")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        _wait_for(lambda: fuzz.poll() is not None or _shards_returned(address), "a shard back at the client")
        assert fuzz.poll() is None, fuzz.communicate()
        scheduler.kill()
        scheduler.wait(30)
        stdout, stderr = fuzz.communicate(timeout=120)
    finally:
        for proc in (fuzz, worker, scheduler):
            if proc is not None and proc.poll() is None:
                _end(proc) if proc is not fuzz else proc.kill()
    assert stderr == f"quicsim: fuzz --scheduler {address}: stopping early: lost the connection to the " \
                     f"scheduler; what finished is reported\n", stderr
    first = stdout.splitlines()[0]
    assert first.startswith("runs: ") and first.endswith("; stopped early: lost the connection to the scheduler")
    assert int(first.split()[1]) >= 1 and "failures: none" in stdout  # what finished is reported
    # not a pass: the campaign did not do what was asked
    assert fuzz.returncode == 2, (fuzz.returncode, stdout)

"""Ctrl-C on run, fuzz and demo: the first one stops the work, the command prints what
finished, exits 130 and prints no traceback. The signal is sent once the command shows
(in its output or its files) that it is in the middle of the work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent

SLOW = """
    import asyncio
    from quicsim import scenario, StreamShutdownFlags

    @scenario(timeout=60)
    async def first(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x", client_context="a")
        await asyncio.sleep(0)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        s.send(b"y", client_context="late")
        await s.wait_shutdown_complete(timeout=5)

    @scenario(timeout=100000)
    async def slow(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x", client_context="b")
        while True:   # only Ctrl-C ends this (on virtual time too: each step costs wall time)
            await asyncio.sleep(0.01)
"""


def _interrupt(args: list[str], ready: Callable[[str], bool]) -> tuple[int, str, str]:
    """Start ``quicsim ARGS``, send SIGINT once ``ready(stdout so far)`` holds (the output,
    or a file the command writes, shows it is mid-work), return its status and output."""
    chunks: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "quicsim", *args], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        errors: list[str] = []
        readers = [threading.Thread(target=lambda: chunks.extend(iter(proc.stdout.readline, "")), daemon=True),
                   threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            end = time.monotonic() + 90
            while not ready("".join(chunks)):
                assert proc.poll() is None, "finished before Ctrl-C: " + "".join(chunks)
                assert time.monotonic() < end, "never got going"
                time.sleep(0.02)  # polls what the command wrote; bounded by the 90 s above
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            for reader in readers:
                reader.join(timeout=10)
    return proc.returncode, "".join(chunks), "".join(errors)


@pytest.mark.parametrize("extra", [[], ["--inject", "drop-send-after-shutdown"], ["--transport", "memory"]])
def test_run_stops_at_the_first_ctrl_c_with_a_summary(tmp_path, extra):
    path = tmp_path / "slow.py"
    path.write_text(textwrap.dedent(SLOW))
    traces = tmp_path / "traces"
    # the second scenario's trace is written from its start: once it exists, it is running
    code, out, err = _interrupt(["run", str(path), "--trace", str(traces), *extra],
                                lambda _: (traces / "slow-seed1.jsonl").exists())
    assert code == 130, out + err
    assert "Traceback" not in err and err.strip() == "", err
    assert "first" in out and "(interrupted after 1 of 2 runs)" in out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_fuzz_stops_at_the_first_ctrl_c_and_says_what_ran(tmp_path, jobs):
    # the first failure's scenario file is written mid-campaign; a million runs never end by themselves
    code, out, err = _interrupt(["fuzz", "--runs", "1000000", "--jobs", jobs, "--out", str(tmp_path),
                                 "--inject", "unstarted-stream-leak"],
                                lambda _: any(tmp_path.glob("fuzz-*.py")))
    assert code == 130, out + err
    assert "Traceback" not in err and err.strip() == "", err
    assert "interrupted after" in out and "of 1000000 runs" in out and "failures:" in out


def test_demo_stops_at_the_first_ctrl_c_with_the_ledger_so_far(tmp_path):
    # over a 90 % lossy link the handshake takes seconds: Ctrl-C lands in the middle of it
    code, out, err = _interrupt(["demo", "--loss", "0.9", "--seed", "3"], lambda out: "server on 127.0.0.1" in out)
    assert code == 130, out + err
    assert "Traceback" not in err and err.strip() == "", err
    assert "interrupted; the ledger so far:" in out and "ledger:" in out


STUCK_AT_SEED_3 = """
    import asyncio
    from pathlib import Path
    from quicsim import scenario, StreamShutdownFlags

    @scenario(timeout=100000)
    async def stuck(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x", client_context=1)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)
        if ctx.seed == 3:
            Path(MARK).write_text("stuck")
            while True:   # only Ctrl-C ends this
                await asyncio.sleep(0.01)
"""


def test_outcomes_stops_at_the_first_ctrl_c_with_the_counts_so_far(tmp_path):
    path = tmp_path / "stuck.py"
    mark = tmp_path / "mark"
    path.write_text(textwrap.dedent(STUCK_AT_SEED_3).replace("MARK", repr(str(mark))))
    code, out, err = _interrupt(["outcomes", str(path), "--seeds", "10"], lambda _: mark.exists())
    assert code == 130, (out, err)
    assert "Traceback" not in err and err.strip() == "", err
    assert "interrupted after 2 of 10 seeds" in out and "s1: START 1a SSC(g=1) PEER_FIN SC" in out, out


def test_run_many_streams_lossy_stops_at_ctrl_c_without_asyncio_tracebacks(tmp_path):
    # Ctrl-C while the body waits on its streams (a gather of 20 waits): the first
    # SEND_COMPLETE in the trace says the body is there
    traces = tmp_path / "traces"
    trace = traces / "many_streams_lossy-seed1.jsonl"
    code, out, err = _interrupt(["run", str(REPO / "scenarios" / "many_streams_lossy.py"), "--trace", str(traces)],
                                lambda _: trace.exists() and '"SEND_COMPLETE"' in trace.read_text())
    assert code == 130, out + err
    assert err == "", err
    assert out.strip().splitlines()[-1] == "0 passed, 0 failed (interrupted after 0 of 1 runs)", out


GATHERED = """
    import asyncio
    from pathlib import Path
    from quicsim import scenario

    @scenario(timeout=100000)
    async def gathered(ctx):
        waits = [ctx.client.open_stream().wait_shutdown_complete() for _ in range(3)]
        Path(MARK).write_text("waiting")
        await asyncio.wait_for(asyncio.gather(*waits), 100000)   # only Ctrl-C ends this
"""


def test_run_stops_at_ctrl_c_in_a_scenarios_own_wait_for_around_gather(tmp_path):
    path = tmp_path / "gathered.py"
    mark = tmp_path / "mark"
    path.write_text(textwrap.dedent(GATHERED).replace("MARK", repr(str(mark))))
    code, out, err = _interrupt(["run", str(path)], lambda _: mark.exists())
    assert code == 130, out + err
    assert err == "", err
    assert out.strip().splitlines()[-1] == "0 passed, 0 failed (interrupted after 0 of 1 runs)", out


BUSY = """
    from quicsim import scenario

    @scenario(timeout=100000)
    async def busy(ctx):
        print("body started", flush=True)
        while True:   # never yields: the loop stands still, a cancellation cannot reach it
            pass

    @scenario(timeout=60)
    async def after(ctx):
        pass
"""


@pytest.mark.parametrize("extra", [[], ["--transport", "memory"]])
def test_one_ctrl_c_stops_a_body_that_never_yields(tmp_path, extra):
    path = tmp_path / "busy.py"
    path.write_text(textwrap.dedent(BUSY))
    code, out, err = _interrupt(["run", str(path), *extra], lambda out: "body started" in out)
    assert code == 130, out + err
    assert "Traceback" not in err and err.strip() == "", err
    assert "(interrupted after 0 of 2 runs)" in out

"""Preemption that lets the network in (Settings.preempt_window_ms): at a preemption point
virtual time moves by a drawn window and the datagrams, handlers and timers due in it run
inside the call, as MsQuic's worker processes packets and timers between two of the
application's statements (msquic-observed §2)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import quicsim
from quicsim import Settings, Status, StreamShutdownFlags
from quicsim.determinism import check_run
from quicsim.explain import analyze, describe, explain_text
from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions
from quicsim.trace import Tracer
from quicsim.transport.virtual_loop import VirtualTimeEventLoop

from .conftest import Recorder

REPO = Path(__file__).resolve().parent.parent


def _run(coro_fn, *args):
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(coro_fn(*args))


async def _sends_then_look(window_ms: float, seed: int = 1):
    """Three sends with a preemption point after each call: how many completions the
    application had seen before its next statement, and the trace's records."""
    out = io.StringIO()
    tracer = Tracer(out, clock=asyncio.get_running_loop().time)
    settings = Settings(preempt=1.0, preempt_window_ms=window_ms)
    pair = await quicsim.open_pair(transport="memory", seed=seed, client_settings=settings,
                                   server_settings=settings, observers=(tracer,))
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(3):
            assert stream.send(b"x" * 1000, client_context=i) is Status.PENDING
        seen_before_shutdown = len(rec.completions())
        assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
        await stream.wait_shutdown_complete(timeout=10)
    finally:
        await pair.shutdown()
        tracer.close()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return seen_before_shutdown, rec.completions(), records, pair.ledger.ok


def test_acknowledgements_arrive_between_two_statements_only_with_a_window():
    seen, completions, records, ok = _run(_sends_then_look, 100.0)
    assert ok and completions == [(0, False), (1, False), (2, False)]
    assert seen == 3, "the peer's ACKs ran inside the calls: all three sends completed before the shutdown call"
    windows = [r for r in records if r["kind"] == "window"]
    assert windows and all(0 <= r["ms"] <= 100 for r in windows)
    assert sum(r["to_server"] for r in windows) > 0 and sum(r["to_client"] for r in windows) > 0
    assert {"name", "side", "timers"} <= set(windows[0])
    text = explain_text(analyze(records, "w.jsonl"))
    assert "let the network in ('window' lines)" in text
    assert "the network ran" in describe(windows[0]) and "inside this" in describe(windows[0])
    # preemption without a window applies queued calls only: no ACK between statements
    seen, completions, records, ok = _run(_sends_then_look, 0.0)
    assert ok and seen == 0 and completions == [(0, False), (1, False), (2, False)]
    assert not [r for r in records if r["kind"] == "window"]


def test_the_same_seed_gives_the_same_windows_and_the_same_history():
    first, second = _run(_sends_then_look, 3.0, 7), _run(_sends_then_look, 3.0, 7)
    strip = [{k: v for k, v in r.items() if k != "cid"} for r in first[2]]
    assert strip == [{k: v for k, v in r.items() if k != "cid"} for r in second[2]]
    other = _run(_sends_then_look, 3.0, 8)
    assert [r.get("ms") for r in first[2] if r["kind"] == "window"] != \
           [r.get("ms") for r in other[2] if r["kind"] == "window"]


async def _other_task_waits():
    """A window moves time past another task's sleep, but that task (the application)
    does not run inside the call: only the network does."""
    settings = Settings(preempt=1.0, preempt_window_ms=50.0)
    pair = await quicsim.open_pair(transport="memory", seed=3, client_settings=settings)
    loop = asyncio.get_running_loop()
    woke: list[float] = []

    async def sleeper():
        await asyncio.sleep(0.001)
        woke.append(loop.time())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)  # the sleeper is asleep now
    try:
        before = loop.time()
        stream = pair.client.open_stream()
        stream.start()
        for i in range(20):
            stream.send(b"x" * 100, client_context=i)
        moved = loop.time() - before
        ran_inside = list(woke)
        await task
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=10)
    finally:
        await pair.shutdown()
    return moved, ran_inside, woke


def test_the_applications_other_tasks_wait_while_the_network_runs():
    moved, ran_inside, woke = _run(_other_task_waits)
    assert moved > 0.001, "the windows moved virtual time past the sleeper's deadline"
    assert ran_inside == [] and len(woke) == 1


SCENARIO = """
from quicsim import StreamShutdownFlags, scenario

@scenario(transport="{transport}", timeout=20)
async def story(ctx):
    s = ctx.client.open_stream()
    s.start()
    for i in range(3):
        s.send(b"x" * 1000, client_context=i)
    s.shutdown(StreamShutdownFlags.GRACEFUL)
    s.send(b"late", client_context="late")
    await s.wait_shutdown_complete(timeout=10)
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_with_windows_is_byte_identical_with_its_seed(tmp_path, seed):
    path = tmp_path / "story.py"
    path.write_text(SCENARIO.format(transport="memory"))
    spec = load_scenarios([str(path)])[0]
    result, check = check_run(spec, seed, RunOptions(preempt=0.5, preempt_window_ms=2.0))
    assert result["passed"] and result["preempt_window_ms"] == 2.0, result["error"]
    assert check.identical, check.difference


def test_over_udp_a_preemption_point_applies_queued_calls_only(tmp_path):
    path = tmp_path / "story.py"
    path.write_text(SCENARIO.format(transport="udp"))
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", str(path), "--preempt", "1",
                           "--preempt-window", "5", "--trace", str(tmp_path / "t"), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kinds = [json.loads(line)["kind"] for line in next((tmp_path / "t").glob("*.jsonl")).read_text().splitlines()]
    assert "preempt" in kinds and "window" not in kinds


def test_the_window_is_checked_where_it_is_given():
    with pytest.raises(ValueError, match="Settings.preempt_window_ms must be a number from 0 to 1000"):
        Settings(preempt_window_ms=-1)
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", "scenarios/", "--preempt-window", "5000"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "--preempt-window" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr

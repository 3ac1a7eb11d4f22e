"""Preemption points (Settings.preempt): the worker may run right after any API call made
on the loop thread outside callbacks, as MsQuic's worker thread may between two of the
application's statements; the schedule is drawn from the run's seed."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import quicsim
from quicsim import Settings, Status, StreamEventType, StreamShutdownFlags
from quicsim.explain import analyze, explain_text
from quicsim.report_html import render_report
from quicsim.trace import Tracer
from quicsim.transport.virtual_loop import VirtualTimeEventLoop

from .conftest import Recorder

REPO = Path(__file__).resolve().parent.parent


def _run(coro_fn, *args):
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(coro_fn(*args))


async def _seed_story(seed: int, preempt: float, trace: io.StringIO | None = None) -> tuple[str, bool, list]:
    """Three sends, StreamShutdown(GRACEFUL), one more send: the late send's outcome."""
    tracer = Tracer(trace, clock=asyncio.get_running_loop().time) if trace is not None else None
    pair = await quicsim.open_pair(transport="memory", seed=seed, network={"delay_ms": 5},
                                   client_settings=Settings(preempt=preempt),
                                   observers=(tracer,) if tracer is not None else ())
    try:
        rec = Recorder()
        stream = pair.client.open_stream(handler=rec)
        stream.start()
        for i in range(3):
            assert stream.send(b"x" * 100, client_context=i) is Status.PENDING
        assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
        late = stream.send(b"late", client_context="late")
        await stream.wait_shutdown_complete(timeout=10)
    finally:
        await pair.shutdown()
        if tracer is not None:
            tracer.close()
    completions = rec.completions()
    if late is Status.INVALID_STATE:
        outcome = "rejected"
        assert ("late", True) not in completions and ("late", False) not in completions
    else:
        assert late is Status.PENDING
        outcome = "canceled" if ("late", True) in completions else "acknowledged"
    assert [c for c in completions if c[0] != "late"] == [(0, False), (1, False), (2, False)]
    return outcome, pair.ledger.ok, completions


def test_the_seed_story_shows_all_three_outcomes_each_with_the_ledger_ok():
    outcomes: dict[str, list[int]] = {}
    for seed in range(24):
        outcome, ok, _ = _run(_seed_story, seed, 0.5)
        assert ok, f"seed {seed}: the ledger failed with outcome {outcome}"
        outcomes.setdefault(outcome, []).append(seed)
    assert set(outcomes) == {"acknowledged", "canceled", "rejected"}, outcomes
    for seeds in outcomes.values():  # the same seed, the same interleaving
        assert _run(_seed_story, seeds[0], 0.5)[0] == _run(_seed_story, seeds[0], 0.5)[0]


def test_preempt_zero_is_the_one_program_order_outcome_and_one_always_preempts():
    for seed in range(4):
        assert _run(_seed_story, seed, 0.0)[0] == "acknowledged"  # the worker never ran in between
        assert _run(_seed_story, seed, 1.0)[0] == "rejected"  # it applied the shutdown at once


def test_the_trace_explain_and_timeline_mark_where_the_worker_ran():
    trace = io.StringIO()
    _run(_seed_story, 0, 1.0, trace)
    records = [json.loads(line) for line in trace.getvalue().splitlines()]
    marks = [r for r in records if r["kind"] == "preempt"]
    # start, three sends (the first queues the flush), the shutdown: each left work queued
    assert [m["name"] for m in marks][:2] == ["start", "send"] and "shutdown" in [m["name"] for m in marks]
    first = records.index(marks[0])
    until_next_call = []
    for r in records[first + 1:]:
        if r["kind"] == "call":
            break
        until_next_call.append((r["kind"], r["name"]))
    assert ("applied", "start") in until_next_call, "the worker applied the start before the next call"
    analysis = analyze(records, "story.jsonl")
    assert f"the worker ran at {len(marks)} preemption point(s)" in explain_text(analysis)
    assert 'class="m preempt"' in render_report([analysis], "story")

    plain = io.StringIO()
    _run(_seed_story, 0, 0.0, plain)
    assert '"kind": "preempt"' not in plain.getvalue()


def test_calls_inside_callbacks_are_on_the_worker_and_never_preempt():
    async def main() -> tuple[list, list]:
        trace = io.StringIO()
        tracer = Tracer(trace)
        pair = await quicsim.open_pair(transport="memory", client_settings=Settings(preempt=1.0),
                                       observers=(tracer,))
        statuses: list = []

        def on_event(stream, event):
            if event.type is StreamEventType.SEND_COMPLETE and event.client_context == "A":
                statuses.append(stream.shutdown(StreamShutdownFlags.GRACEFUL))
                statuses.append(stream.send(b"b", client_context="B"))

        try:
            stream = pair.client.open_stream(handler=on_event)
            stream.start()
            stream.send(b"a", client_context="A")
            await stream.wait_shutdown_complete(timeout=10)
        finally:
            await pair.shutdown()
            tracer.close()
        assert pair.ledger.ok
        records = [json.loads(line) for line in trace.getvalue().splitlines()]
        return statuses, [r["name"] for r in records if r["kind"] == "preempt"]

    statuses, marks = _run(main)
    # In the callback the shutdown is only queued, so the send after it is still accepted.
    assert statuses == [Status.PENDING, Status.PENDING]
    assert marks == ["start", "send", "connection_shutdown"]  # top-level calls only (the last: teardown)


def test_preempt_is_checked_where_it_is_given(tmp_path):
    with pytest.raises(ValueError, match="Settings.preempt must be a number from 0 to 1"):
        Settings(preempt=1.5)
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", "scenarios/", "--preempt", "2"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--preempt" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_the_scenario_library_passes_under_preemption_deterministically(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", "scenarios/", "--transport", "memory",
                           "--preempt", "0.5", "--json", "--check-determinism",
                           "-k", "shutdown_then_send_same_tick"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows and all(r["passed"] and r["preempt"] == 0.5 and r["determinism"]["identical"] for r in rows)

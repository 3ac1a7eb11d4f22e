"""State-coverage probes: each recognised from calls and events, counted only when asked
for, reported by quicsim run --probes and quicsim fuzz."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from quicsim.loader import load_scenarios
from quicsim.probes import PROBES
from quicsim.runner import RunOptions, run_job

REPO = Path(__file__).resolve().parent.parent

SCENARIOS = """
    from quicsim import scenario, SendFlags, StreamEventType, StreamShutdownFlags

    @scenario(transport="memory")
    async def late_send(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 1000, client_context="first")
        await ctx.sleep(0)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        s.send(b"late", client_context="late")
        await s.wait_shutdown_complete()

    @scenario(transport="memory")
    async def no_late_send(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 1000, client_context="first")
        await ctx.sleep(0)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete()

    @scenario(transport="memory")
    async def close_in_canceled_completion(ctx):
        def on_event(stream, event):
            if event.type is StreamEventType.SEND_COMPLETE and event.canceled:
                stream.close()
        s = ctx.client.open_stream(handler=on_event)
        s.start()
        for i in range(3):
            s.send(bytes(50_000), client_context=i)
        await ctx.sleep(0)
        s.shutdown(StreamShutdownFlags.ABORT)
        await ctx.wait_until(lambda: s.handle_closed, what="the close from the handler")

    @scenario(transport="memory")
    async def unstarted_then_closed(ctx):
        s = ctx.client.open_stream()
        s.send(b"never started", client_context="u")
        s.close()
"""


def _run(tmp_path, name: str, probes: bool = True) -> dict:
    path = tmp_path / "probe_scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    spec = {s.name: s for s in load_scenarios([str(path)])}[name]
    result = run_job(spec, 1, RunOptions(probes=probes))
    assert result["passed"], result
    return result


def test_late_send_canceled_is_hit_only_by_a_late_send(tmp_path):
    assert _run(tmp_path, "late_send")["probes"].get("late-send-canceled") == 1
    assert "late-send-canceled" not in _run(tmp_path, "no_late_send")["probes"]


def test_close_inside_a_canceled_completion(tmp_path):
    probes = _run(tmp_path, "close_in_canceled_completion")["probes"]
    assert probes.get("close-in-canceled-send-complete", 0) >= 1  # re-entrant: each nested close counts
    assert probes.get("abort-with-sends-in-flight") == 1
    assert "close-in-canceled-send-complete" not in _run(tmp_path, "late_send")["probes"]


def test_unstarted_stream_send_canceled(tmp_path):
    assert _run(tmp_path, "unstarted_then_closed")["probes"].get("unstarted-stream-send-canceled") == 1
    assert "unstarted-stream-send-canceled" not in _run(tmp_path, "late_send")["probes"]


def test_probes_cost_nothing_when_off(tmp_path):
    assert "probes" not in _run(tmp_path, "late_send", probes=False)


def _quicsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_run_probes_reports_each_probe_and_the_ones_never_hit(tmp_path):
    path = tmp_path / "probe_scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    proc = _quicsim("run", str(path), "-k", "late_send", "--probes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"probes: \d+ of {len(PROBES)} hit in 2 runs", proc.stdout)  # late_send, no_late_send
    assert re.search(r"late-send-canceled +1 hits in +1 runs\n", proc.stdout)
    assert "never hit: " in proc.stdout and "cancel-on-loss-fired" in proc.stdout.split("never hit: ")[1]


def test_fuzz_json_carries_probes(tmp_path):
    proc = _quicsim("fuzz", "--runs", "30", "--json", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["runs"] == 30 and set(summary["probes"]) == set(PROBES)
    assert summary["probes"]["late-send-canceled"]["runs"] >= 1
    assert set(summary["probes_never_hit"]) == {n for n, p in summary["probes"].items() if not p["hits"]}

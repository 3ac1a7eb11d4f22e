"""The in-memory link on virtual time: deterministic traces, idle time for free."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"

LOSSY = """
    from quicsim import scenario, SendFlags, StreamShutdownFlags

    @scenario(network={"loss": 0.2, "reorder": 0.2, "duplicate": 0.1, "delay_ms": 7, "jitter_ms": 3},
              transport="memory")
    async def lossy(ctx):
        streams = []
        for n in range(3):
            s = ctx.client.open_stream()
            s.start()
            for i in range(15):
                s.send(bytes(ctx.random.randint(1, 4000)), client_context=(n, i))
            if n == 1:
                await ctx.sleep(0)
                s.shutdown(StreamShutdownFlags.GRACEFUL)
                s.send(b"late", client_context=(n, "late"))
            else:
                s.send(b"", SendFlags.FIN, client_context=(n, "fin"))
            streams.append(s)
        await ctx.wait_all_shutdown_complete(streams, timeout=60)

    @scenario(transport="memory")
    async def waits(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x", client_context="w")
        await ctx.wait_until(lambda: ctx.ledger.completions == 1, timeout=5, what="the completion")
        try:
            await ctx.wait_until(lambda: False, timeout=0.5, what="never")
        except TimeoutError as exc:
            assert "never" in str(exc)
        else:
            raise AssertionError("wait_until did not time out")
        s.shutdown(StreamShutdownFlags.GRACEFUL)

    @scenario(transport="memory", timeout=120)
    async def idle(ctx):
        await ctx.client.wait_shutdown_complete(timeout=100)   # nobody talks: idle timeout
"""


def _specs(tmp_path):
    path = tmp_path / "mem_scenarios.py"
    path.write_text(textwrap.dedent(LOSSY))
    return {s.name: s for s in load_scenarios([str(path)])}


def test_same_seed_gives_a_byte_identical_trace(tmp_path):
    spec = _specs(tmp_path)["lossy"]
    traces = []
    for run in ("a", "b"):
        result = run_job(spec, 7, RunOptions(trace_dir=str(tmp_path / run)))
        assert result["passed"], result
        traces.append(Path(result["trace"]).read_bytes())
    assert traces[0] == traces[1]
    assert b'"kind": "datagram", "name": "loss"' in traces[0]  # impairment decisions are in it
    other = run_job(spec, 8, RunOptions(trace_dir=str(tmp_path / "c")))
    assert Path(other["trace"]).read_bytes() != traces[0]


def test_wait_until(tmp_path):
    result = run_job(_specs(tmp_path)["waits"], 1)
    assert result["passed"], result


def test_idle_timeout_takes_virtual_not_wall_time(tmp_path):
    spec = _specs(tmp_path)["idle"]
    start = time.monotonic()
    result = run_job(spec, 1)
    wall = time.monotonic() - start
    assert result["passed"], result
    # 30 s of virtual idle time went by; on a real clock this could not finish in 10 s.
    assert wall < 10


def test_library_passes_in_memory_at_ten_percent_loss():
    failed = []
    for spec in load_scenarios([str(LIBRARY)]):
        result = run_job(spec, spec.seed, RunOptions(transport="memory", network={"loss": 0.1}))
        if not result["passed"]:
            failed.append((spec.name, result["error"], result["leaks"], result["violations"]))
    assert failed == []


def test_library_passes_with_send_buffering_on():
    failed = []
    for spec in load_scenarios([str(LIBRARY)]):
        result = run_job(spec, spec.seed, RunOptions(transport="memory", send_buffering=True))
        assert result["send_buffering"] is True
        if not result["passed"]:
            failed.append((spec.name, result["error"], result["leaks"], result["violations"]))
    assert failed == []

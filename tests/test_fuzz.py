"""The fuzzer: deterministic programs, a clean campaign finds nothing, and each injected
fault is found, shrunk to a few operations and written as a file that reproduces it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quicsim import FAULTS
from quicsim.fuzz import generate, render, run_program, signature
from quicsim.fuzz.campaign import run_campaign

REPO = Path(__file__).resolve().parent.parent


def test_programs_are_a_function_of_the_seed():
    assert generate(5) == generate(5)
    assert generate(5) != generate(6)
    assert all(generate(s, max_ops=4).api_op_count() <= 4 for s in range(50))
    assert max(generate(s, max_ops=4).api_op_count() for s in range(50)) == 4


def test_rendered_program_is_a_scenario_that_runs():
    program = generate(3)
    source = render(program)
    compile(source, "fuzz.py", "exec")
    assert f"seed={program.seed}" in source and "transport='memory'" in source
    assert signature(run_program(program)) is None


def test_a_slow_reader_program_holds_and_resumes_the_servers_receive_path(tmp_path):
    """Some programs' server reads slowly: its handler holds RECEIVE (PENDING) and takes it
    later (StreamReceiveComplete), and pauses RECEIVE now and then, so campaigns exercise
    the receive path's moves as well as the send path's."""
    from dataclasses import replace

    from quicsim.fuzz.engine import _spec_from_source
    from quicsim.runner import RunOptions, run_job

    program = next(p for p in (generate(seed, 40) for seed in range(500)) if p.slow_reader)
    program = replace(program, network={}, ops=[("open", "s1", "client", False), ("start", "s1", 0)]
                      + [("send", "s1", 3000, 1, 0), ("sleep", 10)] * 6 + [("shutdown", "s1", 1, 0)])
    spec = _spec_from_source(render(program), "slow")
    result = run_job(spec, program.seed, RunOptions(trace_dir=str(tmp_path), check_invariants=True))
    assert result["passed"], result
    trace = Path(result["trace"]).read_text()
    assert '"name": "receive_complete"' in trace and '"name": "receive_set_enabled"' in trace


def test_clean_campaign_finds_nothing(tmp_path):
    result = run_campaign(runs=150, seed=1000, out_dir=tmp_path)
    assert result.runs == 150 and result.ops > 150
    assert not result.failures, result.failures
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_is_found_shrunk_and_reproduced(tmp_path, fault):
    result = run_campaign(runs=500, seed=0, faults=frozenset([fault]), out_dir=tmp_path)
    assert result.failures, f"{fault} not found in 500 runs"
    finding = result.findings[0]
    assert finding.signature == "leak"
    assert finding.program.api_op_count() <= (5 if fault == "reentrant-close" else 10)
    assert finding.reproduced and finding.path is not None
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", str(finding.path), "--transport", "memory"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1 and "LEAK" in proc.stdout


def _tells_reentry_story(program) -> bool:
    return any(op[0] == "on" and op[2] == "SEND_COMPLETE_CANCELED" for op in program.ops)


def test_some_programs_close_a_stream_inside_its_canceled_batch_and_keep_their_own_operations(monkeypatch):
    """The re-entrant close story (StreamClose from the first canceled SEND_COMPLETE while a
    graceful shutdown cancels the sends accepted behind it): told by a share of programs,
    added to what they drew (never in place of it), within max_ops; it leaks under
    reentrant-close and passes on a correct core."""
    import quicsim.fuzz.program as program_module

    programs = [generate(seed) for seed in range(400)]
    told = [p for p in programs if _tells_reentry_story(p)]
    assert 0.1 < len(told) / len(programs) < 0.35
    assert all(p.api_op_count() <= 12 for p in told)
    monkeypatch.setattr(program_module, "REENTRY_CHANCE", 0.0)
    for program in told:
        story = [i for i, op in enumerate(program.ops) if op[0] == "on" and op[2] == "SEND_COMPLETE_CANCELED"][0] - 2
        sid = program.ops[story][1]
        assert program.ops[story] == ("open", sid, "client", False)
        end = 1 + max(i for i, op in enumerate(program.ops) if op[1] == sid)  # the story is one piece
        assert program.ops[:story] + program.ops[end:] == generate(program.seed).ops
    monkeypatch.undo()
    reentrant = frozenset(["reentrant-close"])
    calm = [p for p in told if not p.preempt and not any(op[0] == "conn_shutdown" for op in p.ops)][:6]
    leaking = [p for p in calm if signature(run_program(p, reentrant)) == "leak"]
    assert len(leaking) >= 5, [p.seed for p in calm]
    assert all(signature(run_program(p)) is None for p in leaking[:3])


def test_reentrant_close_is_found_within_100_runs(tmp_path):
    # python -m bench.swarm --first-find: 10 start seeds find it in at most 100 runs each
    result = run_campaign(runs=100, seed=300_000, faults=frozenset(["reentrant-close"]), out_dir=tmp_path)
    assert result.failures.get("leak"), result.failures


def test_fuzz_command(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "30", "--seed", "7", "--jobs", "2",
                         "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "runs: 30 (seeds 7..36)" in ok.stdout and "failures: none" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "40", "--inject",
                          "drop-send-after-shutdown", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert bad.returncode == 1 and "reproduce: quicsim run" in bad.stdout
    usage = subprocess.run([sys.executable, "-m", "quicsim", "fuzz", "--runs", "0"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert usage.returncode == 2 and "must be >= 1" in usage.stderr


def test_time_budget_stops_early(tmp_path):
    result = run_campaign(runs=100_000, seed=0, out_dir=tmp_path, time_budget=1.0)
    assert result.stopped_early and 0 < result.runs < 100_000


def test_a_network_that_prevents_the_handshake_is_classified_apart(monkeypatch):
    from dataclasses import replace

    from quicsim.fuzz import engine

    program = replace(generate(5), network={"blackhole": {"on": 0.0, "off": 30.0}})
    assert signature(run_program(program)) == "error:ConnectionError"  # what it used to count as
    assert engine.check_program(program) == engine.NO_HANDSHAKE
    assert engine.check_program(replace(program, network={})) is None
    # A handshake that fails on a clean network too is a failure, not noise.
    real = engine.run_program
    monkeypatch.setattr(engine, "run_program", lambda p, faults=frozenset(), **kw: real(replace(p, network={
        "blackhole": {"on": 0.0, "off": 30.0}}), faults, **kw))
    assert engine.check_program(program) == "error:ConnectionError"


def test_a_shrunk_program_whose_open_was_dropped_still_runs(tmp_path):
    from quicsim.fuzz.program import Program

    # What shrinking a handshake failure left: operations on streams nothing opens.
    program = Program(seed=1, network={}, ops=[("send", "s3", 10, 1, 0), ("on", "s2", "RECEIVE", ("close", "s2")),
                                               ("shutdown", "s3", 1, 0)])
    path = tmp_path / "repro.py"
    path.write_text(render(program))
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", str(path), "--transport", "memory",
                           "--loss", "0"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NameError" not in proc.stdout


def test_a_compiled_program_keeps_the_line_numbers_of_its_repro_file():
    """The fuzzer compiles the fixed header once per process; the program after it must
    still be numbered as in the file it writes, so a traceback points at the right line."""
    from quicsim.fuzz.engine import _spec_from_source

    source = render(generate(5, 12), doc="a finding\nover two lines")
    lines = source.splitlines()
    # (a decorated function's code starts at its decorator)
    def_line = next(i for i, line in enumerate(lines, 1) if line.startswith("async def fuzz_seed_5")) - 1
    assert lines[def_line - 1].startswith("@scenario")
    for _ in range(2):  # the first call compiles the header, the second reuses it
        spec = _spec_from_source(source, "lines")
        assert spec.fn.__code__.co_firstlineno == def_line
        assert spec.fn.__code__.co_filename == "<fuzz lines>"


def test_a_fault_that_forgets_sends_inside_their_own_batch_counts_each_once():
    """unstarted-stream-leak's close can run inside the stream's own canceled batch (fuzz
    seed 379): the sends it forgets are dropped, never also completed by the loop that
    detached the batch (the core's exactly-once bookkeeping stays whole: a leak, not an
    error of the core)."""
    result = run_program(generate(379), frozenset({"unstarted-stream-leak"}))
    assert signature(result) == "leak", result["error"]
    assert not (result["error"] or "").startswith("core state error"), result["error"]

"""The fuzzer and preemption: each run draws Settings.preempt from its seed (0 and 1
included), keeps it in the repro file it writes, and shrinking lowers it where the failure
does not need it."""

from __future__ import annotations

from dataclasses import replace

from quicsim.fuzz import generate, render, run_program, shrink, signature
from quicsim.fuzz.engine import check_program
from quicsim.fuzz.program import PREEMPT_CHOICES

DISCARD = frozenset({"discard-after-shutdown-complete"})


def test_each_run_draws_its_preemption_from_its_seed():
    drawn = [generate(seed).preempt for seed in range(300)]
    assert drawn == [generate(seed).preempt for seed in range(300)]
    assert set(drawn) == {0.0, *PREEMPT_CHOICES}  # program order, every time, and between
    assert 0.3 < drawn.count(0.0) / len(drawn) < 0.7


def test_the_repro_file_keeps_the_drawn_preemption():
    seed = next(s for s in range(100) if generate(s).preempt == 0.5)
    program = generate(seed)
    source = render(program)
    assert source.count("preempt=0.5") == 2  # client and server
    result = run_program(program)
    assert result["preempt"] == 0.5 and signature(result) is None
    assert "preempt" not in render(replace(program, preempt=0.0))


def test_shrinking_lowers_preemption_the_failure_does_not_need():
    seed = next(s for s in range(200) if generate(s).preempt >= 0.5
                and check_program(generate(s), DISCARD) == "leak"
                and check_program(replace(generate(s), preempt=0.0), DISCARD) == "leak")
    program = generate(seed)
    shrunk = shrink(program, "leak", DISCARD, max_runs=150)
    assert shrunk.preempt == 0.0
    assert signature(run_program(shrunk, DISCARD)) == "leak"

"""The fuzzer and its per-run settings. Preemption: each run draws Settings.preempt from its seed (0 and 1
included), keeps it in the repro file it writes, and shrinking lowers it where the failure
does not need it."""

from __future__ import annotations

from dataclasses import replace

from quicsim.fuzz import generate, render, run_program, shrink, signature
from quicsim.fuzz.campaign import run_campaign
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


def test_the_fuzzer_finds_reentrant_close_where_only_a_preemption_point_lets_it_fire(tmp_path):
    """Seed 1983 (a swarm run) loses a completion only when the worker runs between two
    of its calls: the campaign finds it, shrinks it keeping a preemption chance, and the
    same program in program order (preempt 0) keeps every completion."""
    fault = frozenset({"reentrant-close"})
    result = run_campaign(runs=1, seed=1983, faults=fault, out_dir=tmp_path, swarm=1.0)
    assert result.failures["leak"] == 1
    finding = result.findings[0]
    assert finding.reproduced and finding.program.api_op_count() <= 6
    assert finding.program.preempt > 0 and "preempt=" in finding.path.read_text()
    assert signature(run_program(finding.program, fault)) == "leak"
    assert signature(run_program(replace(finding.program, preempt=0.0), fault)) is None


def test_settings_knobs_reach_the_states_a_default_program_cannot():
    """A low peer stream limit and a server that aborts what it receives: each knob comes
    from the seed, is written into the repro file, and reaches its probe."""
    cases = {51: "stop-sending-with-sends-in-flight", 962: "start-failed-stream-limit", 2837: "peer-accepted"}
    for seed, probe in cases.items():
        program = generate(seed)
        assert program.peer_streams or program.stop_sending
        source = render(program)
        if program.peer_streams:
            assert f"peer_bidi_stream_count={program.peer_streams}" in source
        if program.stop_sending:
            assert "server=stop_sending" in source
        probes: dict = {}
        assert check_program(program, probes=probes) is None
        assert probes.get(probe, 0) >= 1, (seed, probe, probes)
        plain = replace(program, peer_streams=None, stop_sending=False)
        plain_probes: dict = {}
        check_program(plain, probes=plain_probes)
        assert not plain_probes.get(probe), f"seed {seed} reaches {probe} without its knob"

"""The fuzzer with the network window: programs draw it, the shrinker turns it off when a
finding does not need it, and with reentrant-close it finds MsQuic's loss in the plain
seed story (no waits in the program)."""

from __future__ import annotations

from quicsim import SendFlags, StreamShutdownFlags, StreamStartFlags
from quicsim.fuzz.engine import run_program, shrink, signature
from quicsim.fuzz.program import WINDOW_CHOICES, Program, generate
from quicsim.fuzz.render import render

FAULT = frozenset({"reentrant-close"})


def _seed_story(seed: int, preempt: float, window: float) -> Program:
    """Sends 1-3, GRACEFUL, two late sends, StreamClose in the first SEND_COMPLETE: no sleeps."""
    send = ("send", "s1", 1000, 1, SendFlags.NONE)
    ops = [("open", "s1", "client", False), ("on", "s1", "SEND_COMPLETE", ("close", "s1")),
           ("start", "s1", StreamStartFlags.NONE), send, send, send,
           ("shutdown", "s1", StreamShutdownFlags.GRACEFUL, 0), ("send", "s1", 10, 1, SendFlags.NONE),
           ("send", "s1", 10, 1, SendFlags.NONE)]
    return Program(seed=seed, network={}, ops=ops, preempt=preempt, preempt_window_ms=window)


def test_programs_draw_a_window_only_when_they_preempt_and_render_it():
    programs = [generate(seed, 30) for seed in range(300)]
    windows = {p.preempt_window_ms for p in programs}
    assert windows == {0.0, *WINDOW_CHOICES}
    assert all(p.preempt for p in programs if p.preempt_window_ms)
    drawn = next(p for p in programs if p.preempt_window_ms)
    assert f"preempt_window_ms={drawn.preempt_window_ms!r}" in render(drawn)
    assert generate(7, 30) == generate(7, 30)


def test_the_plain_seed_story_loses_a_completion_under_reentrant_close_and_never_without():
    found = [seed for seed in range(1, 61) if signature(run_program(_seed_story(seed, 0.5, 2.0), FAULT)) == "leak"]
    assert found, "reentrant-close never lost a completion in 60 seeds of the seed story"
    assert not [seed for seed in range(1, 61) if signature(run_program(_seed_story(seed, 0.5, 2.0))) is not None]
    shrunk = shrink(_seed_story(found[0], 0.5, 2.0), "leak", FAULT)
    assert signature(run_program(shrunk, FAULT)) == "leak"
    assert not any(op[0] == "sleep" for op in shrunk.ops) and len(shrunk.ops) <= 9


def test_the_shrinker_turns_the_window_off_when_the_finding_does_not_need_it():
    # a close before any acknowledgement loses the late send without a window too
    both = [s for s in range(1, 61)
            if signature(run_program(_seed_story(s, 0.15, 0.0), FAULT)) == "leak"
            and signature(run_program(_seed_story(s, 0.15, 2.0), FAULT)) == "leak"]
    assert both, "no seed loses with and without the window"
    shrunk = shrink(_seed_story(both[0], 0.15, 2.0), "leak", FAULT)
    assert signature(run_program(shrunk, FAULT)) == "leak" and shrunk.preempt_window_ms == 0.0

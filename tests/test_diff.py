"""quicsim diff: outcome sets of one scenario on the simulator and on the real library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from quicsim.backends import MSQUIC_LIB_ENV
from quicsim.diff import Diff, OutcomeRecorder
from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job

REPO = Path(__file__).resolve().parent.parent
SEED_STORY = str(REPO / "scenarios" / "seed_story_close_in_first_cancel.py")
LIB = os.environ.get(MSQUIC_LIB_ENV, "")
needs_library = pytest.mark.skipif(not os.path.isfile(LIB), reason=f"the real MsQuic: set {MSQUIC_LIB_ENV} "
                                                                  "to a libmsquic.so")


def _outcome(faults: frozenset[str] = frozenset()) -> str:
    [spec] = load_scenarios([SEED_STORY])
    recorder = OutcomeRecorder()
    result = run_job(spec, spec.seed, RunOptions(faults=faults, observers=(recorder,)))
    return recorder.outcome(result)


def test_an_outcome_is_the_client_streams_events_in_order_and_the_lost_sends():
    assert _outcome() == "s1: START 1a 2a 3a 4c 5c SSC(g=0) SC"
    # the injected loss shows in the outcome: 5 never completes and the ledger names it
    assert _outcome(frozenset({"reentrant-close"})) == "s1: START 1a 2a 3a 4c SSC(g=0) SC | lost 5"


def test_the_sets_are_compared_and_what_one_side_alone_reached_is_named():
    diff = Diff("x", 3, {"simulator": [], "msquic": []},
                {"simulator": Counter({"a": 2, "b": 1}), "msquic": Counter({"a": 1, "c": 2})})
    assert not diff.same and diff.only == {"simulator": ["b"], "msquic": ["c"]}
    data = diff.as_dict()
    assert data["outcomes"]["msquic"] == {"c": 2, "a": 1} and data["same"] is False
    same = Diff("x", 2, {"simulator": [], "msquic": []}, {"simulator": Counter({"a": 2}), "msquic": Counter({"a": 1, })})
    assert same.same and same.only == {"simulator": [], "msquic": []}


def _quicsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)


def test_diff_without_a_library_is_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if k != MSQUIC_LIB_ENV}
    out = _quicsim("diff", SEED_STORY, "--msquic-lib", "/nonexistent/libmsquic.so", env=env)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "/nonexistent/libmsquic.so" in out.stderr and "Traceback" not in out.stderr


@needs_library
def test_diff_shows_the_library_losing_the_late_send_and_the_fault_matching_it():
    out = _quicsim("diff", SEED_STORY, "--runs", "4", "--json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["outcomes"]["simulator"] == {"s1: START 1a 2a 3a 4c 5c SSC(g=0) SC": 4}
    assert "s1: START 1a 2a 3a 4c SSC(g=0) SC | lost 5" in data["only"]["msquic"]
    same = _quicsim("diff", SEED_STORY, "--runs", "4", "--fault", "reentrant-close")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "same outcome set on both backends" in same.stdout and "lost 5" in same.stdout

"""Every scenario in scenarios/ meets its expectation (first seed), run in-process."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from quicsim.loader import load_scenarios
from quicsim.runner import run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
SPECS = load_scenarios([str(LIBRARY)])


def test_library_has_every_race_and_fault():
    names = {s.name for s in SPECS}
    assert len(names) >= 18
    assert {s.name for s in SPECS if s.expect == "leak"} == {
        "fault_drop_send_after_shutdown", "fault_discard_after_shutdown_complete",
        "fault_unstarted_stream_leak", "msquic_4307_reentrant_close"}
    for spec in SPECS:
        doc = ast.get_docstring(ast.parse(Path(spec.file).read_text()))
        assert doc and "MsQuic" in doc, f"{spec.file}: says what race it exercises and what MsQuic does"


@pytest.mark.asyncio
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
async def test_scenario_meets_expectation(spec):
    result = await run_scenario(spec, spec.seed)
    assert result["passed"], (result["error"], result["leaks"], result["violations"])

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


@pytest.mark.asyncio
async def test_result_keeps_the_ledgers_datagram_count_beside_the_links_stats(tmp_path):
    """``datagrams`` is the ledger's count of accepted datagrams; what the link did per
    direction is ``link`` (it used to overwrite the count)."""
    path = tmp_path / "dg.py"
    path.write_text(
        "from quicsim import Settings, scenario\n"
        "S = Settings(datagram_receive_enabled=True)\n"
        "@scenario(transport='memory', settings={'client': S, 'server': S})\n"
        "async def dg(ctx):\n"
        "    await ctx.sleep(0.05)\n"
        "    for i in range(3):\n"
        "        ctx.client.send_datagram(b'x' * 10, client_context=i)\n"
        "    await ctx.sleep(0.2)\n")
    spec = load_scenarios([str(path)])[0]
    result = await run_scenario(spec, 1)
    assert result["passed"], result["error"]
    assert result["datagrams"] == 3
    link = result["link"]
    assert set(link) == {"to_server", "to_client"} and link["to_server"]["forwarded"] > 0, link

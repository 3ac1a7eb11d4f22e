"""A scenario that raised is judged at once, and one that leaves a stream open costs
a bounded settle, not its whole timeout, with what was still open in its row."""

from __future__ import annotations

import textwrap
import time

import pytest

from quicsim.loader import load_scenarios
from quicsim.liveness import LIVENESS_SECONDS
from quicsim.runner import SETTLE_SECONDS, RunOptions, run_job

BODIES = """
    import asyncio
    from quicsim import scenario, StreamShutdownFlags

    @scenario(timeout=20)
    async def raises(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="in-flight")
        raise ValueError("scenario bug")

    @scenario(timeout=20)
    async def leaves_a_stream_open(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="never-shut")
        await s.wait_event(timeout=5)   # START_COMPLETE; the stream is never shut down

    @scenario(timeout=20)
    async def tidy(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="a")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)
"""


@pytest.fixture
def specs(tmp_path):
    path = tmp_path / "bodies.py"
    path.write_text(textwrap.dedent(BODIES))
    return {s.name: s for s in load_scenarios([str(path)])}


@pytest.mark.parametrize("transport", ["udp", "memory"])
def test_a_scenario_that_raised_fails_at_once(specs, transport):
    started = time.monotonic()
    result = run_job(specs["raises"], 1, RunOptions(transport=transport))
    assert not result["passed"] and "ValueError: scenario bug" in result["error"]
    # the teardown's own bounded wait, never the scenario's 20 s (nor a settle)
    assert time.monotonic() - started < 10
    assert result["wall_time"] < 10


@pytest.mark.parametrize("transport", ["udp", "memory"])
def test_an_open_stream_costs_a_bounded_settle_and_is_named(specs, transport):
    result = run_job(specs["leaves_a_stream_open"], 1, RunOptions(transport=transport))
    assert result["passed"], result  # the teardown completes every send: the contract held
    assert result["unsettled"] and "client stream 0" in result["unsettled"]
    if transport == "udp":
        # bounded by design (liveness deadline + settle), never the 20 s timeout
        assert result["wall_time"] < LIVENESS_SECONDS + SETTLE_SECONDS + 3


def test_a_tidy_scenario_has_nothing_unsettled(specs):
    result = run_job(specs["tidy"], 1, RunOptions(transport="memory"))
    assert result["passed"] and result["unsettled"] is None


def test_the_summary_says_what_was_still_open(specs):
    import io

    from rich.console import Console

    from quicsim.report import print_failures

    result = run_job(specs["leaves_a_stream_open"], 1, RunOptions(transport="memory"))
    out = io.StringIO()
    print_failures(Console(file=out, width=200, color_system=None), [result], [])
    assert "leaves_a_stream_open (seed 1): still open" in out.getvalue()
    assert "client stream 0" in out.getvalue()

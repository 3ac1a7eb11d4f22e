"""A scenario's timeout holds against a body that does not yield: the loop's own timeout
cannot fire while the loop stands still, so a watchdog thread stops the body and the run
ends as a ``hang`` naming where the body was. A body that blocked the loop longer than its
timeout and then returned does not pass either."""

from __future__ import annotations

import textwrap

import pytest

from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job

BODIES = """
    import asyncio
    import time
    from quicsim import scenario

    @scenario(timeout=1, transport="udp")
    async def spins(ctx):
        while True:
            pass

    @scenario(timeout=1, transport="memory")
    async def spins_on_virtual_time(ctx):
        while True:
            pass

    @scenario(timeout=1, transport="udp")
    async def swallows_what_stops_it(ctx):
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass

    @scenario(timeout=1, transport="memory")
    async def blocks_then_returns(ctx):
        time.sleep(1.6)

    @scenario(timeout=1, transport="memory")
    async def yields(ctx):
        for _ in range(20):
            time.sleep(0.02)  # short blocks, well within the timeout, each followed by a turn
            await asyncio.sleep(0)
"""


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    path = tmp_path_factory.mktemp("bodies") / "bodies.py"
    path.write_text(textwrap.dedent(BODIES))
    return {spec.name: (spec, path) for spec in load_scenarios([str(path)])}


SPIN = ("while True:", "pass")


@pytest.mark.parametrize("name, where", [
    ("spins", SPIN),
    ("spins_on_virtual_time", SPIN),
    ("swallows_what_stops_it", SPIN),
    ("blocks_then_returns", ("time.sleep(1.6)",)),
])
def test_a_body_that_keeps_the_loop_still_is_a_hang_naming_where_it_was(specs, name, where):
    spec, path = specs[name]
    result = run_job(spec, 1, RunOptions())
    assert not result["passed"]
    assert result["error"].startswith("hang: the scenario body kept the event loop from turning for longer "
                                      "than its timeout (1 s) at "), result["error"]
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip() in where]
    assert any(f"{path}:{n} in {name}" in result["error"] for n in lines), (result["error"], lines)


def test_a_body_that_yields_between_short_blocks_passes(specs):
    spec, _ = specs["yields"]
    result = run_job(spec, 1, RunOptions())
    assert result["passed"], result["error"]


def test_the_watchdog_leaves_virtual_time_alone(specs):
    """Its thread does no work for the loop: a memory run still jumps over idle time
    (a run that waits 30 virtual seconds takes a fraction of a second)."""
    import asyncio
    import time

    from quicsim.loop_watchdog import LoopWatchdog
    from quicsim.transport.virtual_loop import run_virtual

    async def idle() -> float:
        loop = asyncio.get_running_loop()
        with LoopWatchdog(loop, 5.0, interval=0.001):
            start = loop.time()
            await asyncio.sleep(30)
            return loop.time() - start

    wall = time.monotonic()
    assert run_virtual(idle()) >= 30
    assert time.monotonic() - wall < 5  # real time would be 30 s

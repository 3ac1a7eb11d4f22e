"""Virtual time that stops moving: a timer that fires and re-arms at the same instant must
not freeze the in-memory link's clock, and whatever still does ends the run as a ``hang``
that names the timer, never a silent spin."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aioquic import tls

import quicsim
from quicsim.fuzz.engine import signature
from quicsim.transport import udp
from quicsim.transport.virtual_loop import TIMERS_AT_ONE_INSTANT, VirtualClockStopped, run_virtual

#: a livelock must fail a test, not stall the suite: wall-clock seconds a child run may take
WALL_BOUND = 120


async def _ack_due_now_behind_pacing() -> tuple[float, float | None, float]:
    """A real pair; then the client's 1-RTT ACK falls due exactly at the current instant
    while its pacer has no credit (it just sent a burst). aioquic sends a due ACK past
    pacing only once its deadline is strictly past, so the timer re-arms at this instant."""
    pair = await quicsim.open_pair(transport="memory", seed=3)
    try:
        stream = pair.client.open_stream()
        stream.start()
        stream.send(b"x" * 1000)
        await stream.wait_event(quicsim.StreamEventType.SEND_COMPLETE, timeout=10)
        reply = pair.server.open_stream()
        reply.start()
        reply.send(b"y" * 1000)  # something for the client to acknowledge
        await asyncio.sleep(0)
        driver = pair.client.driver
        quic = driver._quic
        loop = asyncio.get_running_loop()
        instant = loop.time()
        pacer, space = quic._loss._pacer, quic._spaces[tls.Epoch.ONE_RTT]
        pacer.packet_time, pacer.bucket_time, pacer.evaluation_time = 0.001, 0.0, instant
        space.ack_at = instant
        driver.transmit()
        armed = driver._timer_at
        await asyncio.sleep(0.01)  # only a clock that moves gets here
        return instant, armed, loop.time()
    finally:
        await pair.shutdown()


def test_an_ack_due_exactly_now_behind_pacing_does_not_stop_the_clock():
    instant, armed, later = run_virtual(_ack_due_now_behind_pacing(), seed=3, budget=60)
    assert armed == instant, "the crafted condition: the timer is armed at the current instant"
    assert later >= instant + 0.01


def test_a_timer_firing_at_its_own_instant_forever_stops_the_run_naming_it():
    """At the loop: a callback that re-arms itself at the current instant. The run stops
    with VirtualClockStopped naming the callback, after a bounded number of firings."""
    fired = 0

    async def body() -> None:
        loop = asyncio.get_running_loop()

        def rearm_at_now() -> None:
            nonlocal fired
            fired += 1
            if fired < 10 * TIMERS_AT_ONE_INSTANT:  # (bounded: a broken guard fails, not hangs)
                loop.call_at(loop.time(), rearm_at_now)

        loop.call_at(loop.time() + 0.5, rearm_at_now)
        await asyncio.sleep(10)

    with pytest.raises(VirtualClockStopped, match=r"stopped moving at t = 0\.50\d+ s: .*rearm_at_now"):
        run_virtual(body(), budget=60)
    assert fired == TIMERS_AT_ONE_INSTANT


STUCK_ACK = """
import asyncio

from aioquic import tls
from quicsim import Settings, scenario


@scenario(transport="memory", seed=5, timeout=30, settings=Settings(preempt={preempt}, preempt_window_ms={window}))
async def ack_that_can_never_be_sent(ctx):
    s = ctx.client.open_stream()
    s.start()
    s.send(b"x" * 100)
    await asyncio.sleep(0.1)
    quic = ctx.client.driver._quic
    # An ACK due now that can never be written: the 1-RTT keys it would go under are gone.
    quic._cryptos[tls.Epoch.ONE_RTT].send.teardown()
    quic._spaces[tls.Epoch.ONE_RTT].ack_at = asyncio.get_running_loop().time()
    ctx.client.driver.transmit()
    s.send(b"more")  # with a network window, the timer spins inside this call
    await s.wait_shutdown_complete(timeout=20)
"""


@pytest.mark.parametrize("preempt, window", [(0.0, 0.0), (1.0, 50.0)], ids=["loop", "network-window"])
def test_a_real_connections_timer_that_never_makes_progress_is_a_hang_naming_it(tmp_path, preempt, window):
    """A real aioquic connection whose 1-RTT ACK is due but can never be written: its ACK
    timer fires and re-arms in the past forever (on a real clock, a spin at 100 % CPU).
    ``quicsim run`` ends with a ``hang`` naming the side and aioquic's timer, also when
    the timer spins inside a network window (an API call's preemption point)."""
    (tmp_path / "stuck.py").write_text(STUCK_ACK.format(preempt=preempt, window=window))
    try:
        done = subprocess.run([sys.executable, "-m", "quicsim", "run", str(tmp_path / "stuck.py"), "--json"],
                              capture_output=True, text=True, timeout=WALL_BOUND)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the run spun silently (still running after {WALL_BOUND} s of wall-clock time)")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[0])
    assert signature(result) == "hang"
    assert "the virtual clock stopped moving at t = 0.1" in result["error"]
    assert f"the client's ACK timer (1-RTT) (aioquic) fired {udp.STUCK_TIMER_FIRINGS} times" in result["error"]


def test_the_seed_7015094_program_ends_on_the_in_memory_link():
    """The clean fuzz program of seed 7015094 (80 operations), reported to stop the
    in-memory link's clock at t = 0.602 s, as a fixture scenario: it ends, and passes."""
    fixture = Path(__file__).parent / "fixtures" / "fuzz_seed_7015094.py"
    try:
        done = subprocess.run([sys.executable, "-m", "quicsim", "run", str(fixture), "--transport", "memory",
                               "--json"], capture_output=True, text=True, timeout=WALL_BOUND)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the run did not end within {WALL_BOUND} s of wall-clock time")
    result = json.loads(done.stdout.splitlines()[0])
    assert done.returncode == 0 and result["passed"] and result["error"] is None, done.stdout[-2000:]
    assert result["sends"] == result["completions"]

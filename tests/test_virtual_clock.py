"""The virtual clock never cheats: while another thread works for the run, virtual time
passes at the real rate instead of jumping to the next timer (an idle timeout must not
fire because a thread took 0.2 s)."""

from __future__ import annotations

import textwrap
import time

from quicsim.loader import load_scenarios
from quicsim.runner import run_job

SCENARIOS = """
    import asyncio
    import threading
    import time
    from quicsim import scenario, Settings, StreamShutdownFlags

    SHORT_IDLE = Settings(idle_timeout_ms=2000)   # 0.2 s of work is far below it

    def slow_send(stream):
        time.sleep(0.2)                           # real work in the thread
        return stream.send(b"from the thread", client_context="t")

    @scenario(transport="memory", settings=SHORT_IDLE)
    async def to_thread(ctx):
        loop = asyncio.get_running_loop()
        s = ctx.client.open_stream()
        s.start()
        started = loop.time()
        await asyncio.to_thread(slow_send, s)
        elapsed = loop.time() - started
        assert not ctx.client.shutdown_initiated, f"the connection shut down after {elapsed:.1f} s virtual"
        assert elapsed < 1.9, f"{elapsed:.2f} s of virtual time passed during 0.2 s of real work"
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete()

    @scenario(transport="memory", settings=SHORT_IDLE)
    async def polling_a_thread(ctx):
        loop = asyncio.get_running_loop()
        s = ctx.client.open_stream()
        s.start()
        started = loop.time()
        worker = threading.Thread(target=slow_send, args=(s,))
        worker.start()
        while worker.is_alive():
            await ctx.sleep(0.005)
        elapsed = loop.time() - started
        assert not ctx.client.shutdown_initiated, f"the connection shut down after {elapsed:.1f} s virtual"
        assert elapsed < 1.9, f"{elapsed:.2f} s of virtual time passed during 0.2 s of real work"
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete()

    @scenario(transport="memory", timeout=120)
    async def idle_after_a_thread(ctx):
        await asyncio.to_thread(time.sleep, 0.01)   # leaves an idle pool worker alive
        await ctx.client.wait_shutdown_complete(timeout=100)   # the 30 s idle timeout
"""


def _specs(tmp_path):
    path = tmp_path / "clock_scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    return {s.name: s for s in load_scenarios([str(path)])}


def test_a_job_in_a_thread_does_not_let_virtual_time_jump(tmp_path):
    result = run_job(_specs(tmp_path)["to_thread"], 1)
    assert result["passed"], result["error"]
    assert result["completions"] == 1


def test_a_thread_the_run_started_holds_the_clock_while_it_lives(tmp_path):
    result = run_job(_specs(tmp_path)["polling_a_thread"], 1)
    assert result["passed"], result["error"]
    assert result["completions"] == 1


def test_once_the_thread_is_done_idle_time_is_free_again(tmp_path):
    start = time.monotonic()
    result = run_job(_specs(tmp_path)["idle_after_a_thread"], 1)
    assert result["passed"], result["error"]
    assert time.monotonic() - start < 10  # 30 s of idle timeout went by in virtual time


def test_a_loss_timer_that_rearms_at_its_own_instant_does_not_spin(tmp_path):
    """aioquic's loss detection, called at a packet's loss deadline, can find the packet
    not yet lost by float rounding and re-arm the very same deadline; on a virtual clock
    that does not move while callbacks run that was a livelock (a fuzz hang, seed
    15001991: 100 % CPU at one instant, forever). The driver handles a timer at most once
    per instant, so the run ends. Run in its own process, bounded: a livelock fails the
    test instead of stalling the suite."""
    import subprocess
    import sys

    (tmp_path / "rearm.py").write_text(
        "from quicsim import Settings, StreamOpenFlags, StreamStartFlags, scenario\n\n"
        "both = Settings(send_buffering=True, preempt=1.0)\n\n"
        "@scenario(network={'loss': 0.138, 'reorder': 0.108}, seed=15001991, transport='memory', timeout=60,\n"
        "          settings={'client': both, 'server': both})\n"
        "async def rearming_loss_timer(ctx):\n"
        "    s1 = ctx.server.open_stream(StreamOpenFlags.NONE)\n"
        "    s1.start(StreamStartFlags.NONE)\n"
        "    s1.close()\n"
        "    s2 = ctx.client.open_stream(StreamOpenFlags.NONE)\n"
        "    s2.start(StreamStartFlags.NONE)\n")
    try:
        done = subprocess.run([sys.executable, "-m", "quicsim", "run", str(tmp_path / "rearm.py"), "--json"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the run spun at one instant (still running after 60 s of wall-clock time)")
    assert done.returncode == 0 and '"passed": true' in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]

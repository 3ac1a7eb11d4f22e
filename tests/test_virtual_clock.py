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

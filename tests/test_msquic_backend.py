"""The msquic backend: quicsim's API, ledger and scenarios over the real libmsquic.

Tests that need the library run when $QUICSIM_MSQUIC_LIB names one and skip, saying so,
otherwise; what does not need it (settings mapping, what is refused, skips) always runs.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from quicsim import (ConnectionShutdownFlags, SendFlags, Settings, Status, StreamEventType, StreamShutdownFlags,
                     open_pair)
from quicsim.backends import MSQUIC_LIB_ENV, BackendError
from quicsim.backends.msquic import bindings as b
from quicsim.backends.msquic.runtime import SETTINGS_FIELDS, check_settings, quic_settings, simulator_faults
from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, needs_simulator, run_job
from quicsim.trace import Tracer

REPO = Path(__file__).resolve().parent.parent
LIB = os.environ.get(MSQUIC_LIB_ENV, "")
needs_library = pytest.mark.skipif(not os.path.isfile(LIB), reason=f"the real MsQuic: set {MSQUIC_LIB_ENV} "
                                                                  "to a libmsquic.so")
MSQUIC = RunOptions(backend="msquic")


def _scenario(name: str):
    [spec] = load_scenarios([str(REPO / "scenarios" / f"{name}.py")], None)
    return spec


# ---------------------------------------------------------------- without the library

def test_settings_map_onto_quic_settings_with_their_is_set_bits():
    settings = Settings(idle_timeout_ms=1234, send_buffering=True, peer_bidi_stream_count=7,
                        stream_recv_window_default=1 << 16, datagram_receive_enabled=True, initial_rtt_ms=42)
    raw = quic_settings(settings)
    for name, field in SETTINGS_FIELDS.items():
        assert raw.is_set(field), field
        assert raw.get(field) == int(getattr(settings, name)), field
    assert not raw.is_set("MaxAckDelayMs")  # what quicsim has no setting for keeps the library's default


@pytest.mark.parametrize("settings, needle", [
    (Settings(faults=["drop-send-after-shutdown"]), "faults are the simulator's"),
    (Settings(preempt=0.5), "preemption points are the simulator's"),
    (Settings(peer_bidi_stream_count=70000), "at most 65535"),
    (Settings(stream_recv_window_default=3000), "power of two"),
])
def test_what_only_the_simulator_has_is_refused_by_name(settings, needle):
    with pytest.raises(BackendError, match=needle):
        check_settings(settings, "client")


def test_a_fault_the_library_has_by_itself_needs_no_injecting():
    assert simulator_faults(frozenset({"reentrant-close"})) == []
    assert simulator_faults(frozenset({"reentrant-close", "unstarted-stream-leak"})) == ["unstarted-stream-leak"]
    check_settings(Settings(faults=["reentrant-close"]))  # no error


def test_scenarios_that_need_the_simulator_are_skipped_saying_why():
    assert "faults are the simulator's" in needs_simulator(_scenario("fault_drop_send_after_shutdown"), MSQUIC)
    assert needs_simulator(_scenario("msquic_4307_reentrant_close"), MSQUIC) is None
    spec = _scenario("send_then_graceful_shutdown")
    assert needs_simulator(spec, MSQUIC) is None
    assert "in-memory link" in needs_simulator(spec, replace(MSQUIC, transport="memory"))
    assert "simulator only" in needs_simulator(replace(spec, backends=("simulator",)), MSQUIC)
    # a skipped run is decided before any library is needed, and is neither passed nor failed work
    result = run_job(_scenario("fault_unstarted_stream_leak"), 1, MSQUIC)
    assert result["skipped"] and result["passed"] and result["sends"] == 0 and result["backend"] == "msquic"


def test_scenario_backends_option_is_checked():
    from quicsim import scenario

    with pytest.raises(ValueError, match="backends must name"):
        @scenario(backends=("aioquic",))
        async def bad(ctx):
            pass

    @scenario(backends="simulator")
    async def good(ctx):
        pass

    assert good.__quicsim_scenario__.backends == ("simulator",)


def _quicsim(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=env)


@pytest.mark.parametrize("args, needle", [
    (["--transport", "memory"], "--transport memory needs the simulator"),
    (["--preempt", "0.3"], "--preempt needs the simulator"),
    (["--inject", "drop-send-after-shutdown"], "--inject drop-send-after-shutdown is the simulator's"),
    (["--msquic-lib", "/nonexistent/libmsquic.so"], "/nonexistent/libmsquic.so"),
])
def test_run_with_the_msquic_backend_refuses_bad_input_in_one_line(args, needle):
    env = {k: v for k, v in os.environ.items() if k != MSQUIC_LIB_ENV}
    out = _quicsim("run", "scenarios/send_then_graceful_shutdown.py", "--backend", "msquic", *args, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr
    assert "Traceback" not in out.stderr


# ---------------------------------------------------------------- with the library

@needs_library
@pytest.mark.asyncio
async def test_sends_complete_acknowledged_through_the_lossy_relay():
    out = io.StringIO()
    tracer = Tracer(out)
    pair = await open_pair(backend="msquic", network={"loss": 0.05, "delay_ms": 2}, seed=5, observers=(tracer,))
    try:
        stream = pair.client.open_stream()
        assert stream.start() is Status.PENDING
        for i in range(40):
            assert stream.send(b"x" * 1500, client_context=("send", i)) is Status.PENDING
        assert stream.shutdown(StreamShutdownFlags.GRACEFUL) is Status.PENDING
        await stream.wait_shutdown_complete(timeout=15)
        assert stream.id == 0 and stream.pending_sends() == 0
        assert pair.ledger.sends == pair.ledger.completions == 40 and pair.ledger.canceled == 0
        assert sum(n["loss"] for n in pair.network.stats.values()) > 0  # the relay really dropped some
        stream.close()
        assert await pair.shutdown()
    finally:
        pair.close()
        tracer.close()
    pair.ledger.assert_ok()
    # the trace has the link's drops, as on the simulator
    assert '"kind": "datagram", "name": "loss"' in out.getvalue()


@needs_library
@pytest.mark.asyncio
async def test_events_carry_the_applications_objects_and_the_peers_bytes():
    received = bytearray()
    fin = asyncio.Event()
    loop = asyncio.get_running_loop()

    def server(conn, event):
        if event.type.name == "PEER_STREAM_STARTED":
            def on_stream(stream, ev):
                if ev.type is StreamEventType.RECEIVE:
                    received.extend(ev.data)
                elif ev.type is StreamEventType.PEER_SEND_SHUTDOWN:
                    stream.shutdown(StreamShutdownFlags.GRACEFUL)
                    loop.call_soon_threadsafe(fin.set)
                elif ev.type is StreamEventType.SHUTDOWN_COMPLETE:
                    stream.close()
            event.stream.set_handler(on_stream)

    pair = await open_pair(backend="msquic", server_handler=server)
    try:
        contexts = []
        marker = object()
        stream = pair.client.open_stream(
            handler=lambda s, e: e.type is StreamEventType.SEND_COMPLETE and contexts.append(e.client_context))
        stream.start()
        stream.send([b"hello ", bytearray(b"msquic "), memoryview(b"world")], client_context=marker)
        stream.send(b"!", SendFlags.FIN, client_context=7)
        await asyncio.wait_for(fin.wait(), 10)
        await stream.wait_shutdown_complete(timeout=10)
        assert bytes(received) == b"hello msquic world!"
        assert contexts == [marker, 7]
        stream.close()
        assert stream.send(b"late") is Status.INVALID_STATE  # the handle is gone: no call into freed memory
    finally:
        pair.close()
    pair.ledger.assert_ok()


@needs_library
@pytest.mark.asyncio
async def test_a_send_canceled_by_the_worker_at_once_is_reported_after_its_call():
    """The worker may complete a send before StreamSend returns to Python: the ledger must
    still see the call first (no 'unknown send' violation), however the threads race."""
    pair = await open_pair(backend="msquic")
    try:
        for _ in range(20):
            stream = pair.client.open_stream()
            stream.start()
            stream.shutdown(StreamShutdownFlags.ABORT_SEND, error_code=3)
            statuses = [stream.send(b"y" * 100, client_context=i) for i in range(30)]
            assert set(statuses) <= {Status.PENDING, Status.INVALID_STATE}
            await stream.wait_shutdown_complete(timeout=10)
            stream.close()
        assert pair.ledger.canceled == pair.ledger.completions == pair.ledger.sends
        assert not pair.ledger.violations and not pair.ledger.leaks
    finally:
        pair.close()


@needs_library
@pytest.mark.asyncio
async def test_a_handler_that_raises_is_recorded_and_the_stream_goes_on():
    pair = await open_pair(backend="msquic")
    try:
        def bad(stream, event):
            raise RuntimeError(f"boom at {event.type.name}")

        stream = pair.client.open_stream(handler=bad)
        stream.start()
        stream.send(b"z", SendFlags.FIN, client_context=1)
        await stream.wait_shutdown_complete(timeout=10)
        assert pair.client.handler_errors and "boom" in str(pair.client.handler_errors[0])
        assert pair.ledger.completions == 1
        stream.close()
    finally:
        pair.close()


@needs_library
@pytest.mark.asyncio
async def test_open_stream_failure_raises_the_librarys_status():
    from quicsim import StatusError

    pair = await open_pair(backend="msquic")
    try:
        pair.client.shutdown(ConnectionShutdownFlags.SILENT)
        await pair.client.wait_shutdown_complete(timeout=10)
        pair.client.close()
        with pytest.raises(StatusError) as caught:
            pair.client.open_stream()
        assert caught.value.status is Status.INVALID_STATE
    finally:
        pair.close()


@needs_library
def test_the_real_library_loses_a_completion_and_the_ledger_names_it():
    """MsQuic issue 4307 on the library itself: no fault injected, the scenario expects a
    leak and the ledger names the lost send, C."""
    result = run_job(_scenario("msquic_4307_reentrant_close"), 1, MSQUIC)
    assert result["backend"] == "msquic" and not result.get("skipped")
    assert result["passed"], result["error"]
    assert [leak["client_context"] for leak in result["leaks"]] == ["'C'"]


@needs_library
def test_a_clean_scenario_passes_on_the_library():
    result = run_job(_scenario("many_streams_lossy"), 1, MSQUIC)
    assert result["passed"] and result["ok"] and result["sends"] == result["completions"] > 0, result


@needs_library
def test_run_with_repeat_prints_how_often_the_library_failed():
    """Runs on the library are not replayable: ``--repeat N`` says how often a file failed."""
    proc = subprocess.run([sys.executable, "-m", "quicsim", "run", "scenarios/seed_story_close_in_first_cancel.py",
                           "--backend", "msquic", "--repeat", "3"], capture_output=True, text=True, timeout=240,
                          cwd=REPO)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "seed_story_close_in_first_cancel: failed 3 of 3 runs (100 %)" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- the pytest plugin

PLUGIN_TESTS = """
    import pytest
    from quicsim import StreamShutdownFlags

    @pytest.mark.asyncio
    async def test_clean(quicsim_pair):
        s = quicsim_pair.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="clean-send")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)
        assert quicsim_pair.ledger.report()["completions"] == 1
        assert type(quicsim_pair.client).__name__ == BACKEND_CLASS

    @pytest.mark.asyncio
    @pytest.mark.quicsim(transport="memory")
    async def test_memory(quicsim_pair):
        pass

    @pytest.mark.asyncio
    @pytest.mark.quicsim(faults=["drop-send-after-shutdown"], expect="leak")
    async def test_fault(quicsim_pair):
        pass
"""


def test_plugin_skips_what_needs_the_simulator_on_the_msquic_backend(pytester: pytest.Pytester):
    pytester.makepyfile(PLUGIN_TESTS.replace("BACKEND_CLASS", "'never compared'"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-backend", "msquic",
                                           "-k", "memory or fault", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*the memory transport is the simulator's*", "*faults are the simulator's*"])


@needs_library
def test_plugin_runs_pairs_and_scenario_files_on_the_library(pytester: pytest.Pytester):
    pytester.makepyfile(PLUGIN_TESTS.replace("BACKEND_CLASS", "'MsQuicConnection'"))
    for name in ("msquic_4307_reentrant_close", "fault_drop_send_after_shutdown"):
        pytester.makefile(".py", **{f"scn_{name}": (REPO / "scenarios" / f"{name}.py").read_text()})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-backend", "msquic", "-rs",
                                           "--quicsim-trace", str(pytester.path / "traces"))
    # the clean pair test and the 4307 scenario (the library's own leak, expected) pass;
    # the memory and fault tests and the fault scenario are skipped; traced on the library too
    result.assert_outcomes(passed=2, skipped=3)
    assert list((pytester.path / "traces").glob("*.jsonl"))

"""The pytest plugin, checked by running small test files in a pytest subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import skip_unless_installed

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"

CLEAN = """
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
"""

LEAKY = """
    import asyncio
    import pytest
    from quicsim import StreamShutdownFlags

    async def race(pair):
        s = pair.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="early")
        await asyncio.sleep(0)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        s.send(b"late", client_context="the-leaked-send")
        await s.wait_shutdown_complete(timeout=5)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(faults=["drop-send-after-shutdown"], loss=0.02)
    async def test_leaks(quicsim_pair):
        await race(quicsim_pair)   # the body passes; the ledger fails it at teardown

    @pytest.mark.asyncio
    @pytest.mark.quicsim(faults=["drop-send-after-shutdown"], expect="leak")
    async def test_expected_leak(quicsim_pair):
        await race(quicsim_pair)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(expect="leak")
    async def test_expected_leak_missing(quicsim_pair):
        await race(quicsim_pair)
"""


def test_clean_test_passes_in_strict_mode(pytester: pytest.Pytester):
    pytester.makepyfile(CLEAN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")
    result.assert_outcomes(passed=1)


def test_leak_fails_with_the_client_context(pytester: pytest.Pytester):
    pytester.makepyfile(LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    text = result.stdout.str()
    assert "'the-leaked-send'" in text and "on client stream 0" in text
    assert "expected a leaked send (expect='leak'), none was seen" in text


def test_marker_and_options_configure_the_pair(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.quicsim(delay_ms=7, seed=3)
        async def test_config(quicsim_pair, quicsim_network, quicsim_listener):
            assert quicsim_pair.network is quicsim_network
            assert quicsim_listener is quicsim_pair.listener and quicsim_listener.connections
            assert quicsim_network.profile.to_server.delay_ms == 7
            assert quicsim_network.profile.to_server.loss == 0.25   # from --quicsim-loss
            assert quicsim_pair.seed == 42                          # --quicsim-seed wins
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-loss", "0.25",
                                           "--quicsim-seed", "42")
    result.assert_outcomes(passed=1)


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile(CLEAN)
    result = pytester.runpytest_subprocess("--quicsim-loss", "1.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--quicsim-loss must be a fraction" in result.stderr.str()


def test_trace_kept_for_failing_tests_only(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_clean=CLEAN, test_leaky=LEAKY)
    trace_dir = tmp_path / "traces"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-trace", str(trace_dir))
    result.assert_outcomes(passed=2, failed=2)
    kept = sorted(p.name for p in trace_dir.glob("*.jsonl"))
    assert len(kept) == 2 and all("test_leaks" in n or "missing" in n for n in kept)
    leaked = next(p for p in trace_dir.glob("*.jsonl") if "test_leaks" in p.name).read_text()
    assert "the-leaked-send" in leaked
    # with the qlog of each kept trace (client and server), none of the passing tests'
    qlogs = sorted(p.name for p in trace_dir.glob("*.sqlog"))
    assert len(qlogs) == 4 and all("test_leaks" in n or "missing" in n for n in qlogs), qlogs
    assert {p.name for p in trace_dir.iterdir()} == {*kept, *qlogs}


_TYPES = {"string": str, "integer": int, "boolean": bool, "null": type(None), "array": list}


def _schema_problems(record: dict) -> list[str]:
    """What in ``record`` docs/history.schema.json does not allow: a listed field of the
    wrong type, or a field its kind and name require missing."""
    schema = json.loads((LIBRARY.parent / "docs" / "history.schema.json").read_text())
    problems = []
    for key, rule in schema["properties"].items():
        if key in record and "type" in rule:
            allowed = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
            if not any(type(record[key]) is _TYPES[t] for t in allowed):
                problems.append(f"{key}: {record[key]!r} is not {allowed}")
    for rule in schema["allOf"]:
        cond = rule["if"]["properties"]
        if all(k in record and (record[k] == v["const"] if "const" in v else record[k] in v["enum"])
               for k, v in cond.items()):
            problems += [f"{record['kind']} without {f}" for f in rule["then"].get("required", []) if f not in record]
    return problems


def _explain(path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", "explain", path], capture_output=True, text=True,
                          timeout=120)


def test_a_leaking_tests_trace_explains_the_leak(pytester: pytest.Pytester, tmp_path):
    """End to end: a test that fails on a leak, run with --quicsim-trace, says in its failure
    where the trace is and the command that explains it; that command reports the leak by
    its client context, as the test did, and quicsim check agrees."""
    pytester.makepyfile(test_leaky=LEAKY)
    trace_dir = tmp_path / "traces"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-trace", str(trace_dir),
                                           "-k", "test_leaks")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    match = re.search(r"explain it: quicsim explain (\S+\.jsonl)", text)
    assert match, text
    path = match.group(1)
    assert Path(path).is_file() and f"quicsim trace: {path}" in text
    qlogs = re.search(r"qlog \(qvis\): (.*)", text).group(1).split(", ")
    assert [Path(q).name for q in qlogs] == [Path(path).stem + "-client.sqlog", Path(path).stem + "-server.sqlog"]
    assert all(Path(q).is_file() for q in qlogs)
    assert "quicsim:leak" in Path(qlogs[0]).read_text()
    explained = _explain(path)
    assert explained.returncode == 1, explained.stderr  # (1: the trace shows a leak)
    out = explained.stdout
    assert "1 LEAKED" in out.splitlines()[0], out
    leak_line = next(line for line in out.splitlines() if line.startswith("LEAK "))
    assert "client_context='the-leaked-send'" in leak_line
    assert "LEAKED    no SEND_COMPLETE" in out and "(pending)" not in out
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert [r["kind"] for r in records][-2:] == ["leak", "verdict"]
    assert [p for r in records for p in _schema_problems(r)] == []
    assert records[-1]["passed"] is False and records[-1]["expect"] == "ok"
    checked = subprocess.run([sys.executable, "-m", "quicsim", "check", path], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 1 and "the-leaked-send" in checked.stdout


def test_a_test_body_that_fails_keeps_its_findings_and_says_where(pytester: pytest.Pytester, tmp_path):
    """A body that fails on its own assertion after a leak: the failure still names the
    trace, and the trace carries the leak and a failed verdict."""
    pytester.makepyfile(test_body="""
        import asyncio
        import pytest
        from quicsim import StreamShutdownFlags

        @pytest.mark.asyncio
        @pytest.mark.quicsim(faults=["drop-send-after-shutdown"])
        async def test_body_fails(quicsim_pair):
            s = quicsim_pair.client.open_stream()
            s.start()
            s.send(b"x" * 100, client_context="early")
            await asyncio.sleep(0)
            s.shutdown(StreamShutdownFlags.GRACEFUL)
            s.send(b"late", client_context="lost-then-assert")
            await s.wait_shutdown_complete(timeout=5)
            assert quicsim_pair.ledger.completions == 2, "my own check"
    """)
    trace_dir = tmp_path / "traces"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-trace", str(trace_dir))
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "my own check" in text
    path = re.search(r"explain it: quicsim explain (\S+\.jsonl)", text).group(1)
    out = _explain(path).stdout
    assert "1 LEAKED" in out and "client_context='lost-then-assert'" in out
    verdict = json.loads(Path(path).read_text().splitlines()[-1])
    assert verdict == {"kind": "verdict", "expect": "ok", "passed": False, "t": verdict["t"]}


def test_scenario_files_are_collected(pytester: pytest.Pytester):
    pytester.makepyfile(race_scenarios="""
        from quicsim import scenario, Settings, StreamShutdownFlags

        @scenario(repeat=2)
        async def fine(ctx):
            s = ctx.client.open_stream()
            s.start()
            s.send(b"x", client_context="a")
            s.shutdown(StreamShutdownFlags.GRACEFUL)
            await s.wait_shutdown_complete(timeout=5)

        @scenario(settings={"client": Settings(faults=["drop-send-after-shutdown"])})
        async def leaky(ctx):
            s = ctx.client.open_stream()
            s.start()
            s.send(b"x", client_context="first")
            await ctx.sleep(0)
            s.shutdown(StreamShutdownFlags.GRACEFUL)
            s.send(b"y", client_context="lost-in-scenario")
            await s.wait_shutdown_complete(timeout=5)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "race_scenarios.py", "-v")
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "fine[seed=1] PASSED" in text and "fine[seed=2] PASSED" in text
    assert "leaky[seed=1] FAILED" in text and "'lost-in-scenario'" in text


def test_the_library_fault_scenarios_pass_as_tests(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           str(LIBRARY / "fault_drop_send_after_shutdown.py"),
                                           str(LIBRARY / "send_fin_then_send.py"))
    result.assert_outcomes(passed=2)


def test_plugin_can_be_disabled(pytester: pytest.Pytester):
    pytester.makepyfile(CLEAN)
    result = pytester.runpytest_subprocess("-p", "no:quicsim")
    result.assert_outcomes(errors=1)
    assert "fixture 'quicsim_pair' not found" in result.stdout.str()


def test_memory_transport_pair(pytester: pytest.Pytester):
    pytester.makepyfile(CLEAN.replace("@pytest.mark.asyncio", "@pytest.mark.asyncio\n    @pytest.mark.quicsim(transport='memory', loss=0.1)"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--quicsim-transport", "carrier-pigeon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_module_loop_scope(pytester: pytest.Pytester):
    """Tests on a module-scoped loop: the fixtures follow asyncio_default_fixture_loop_scope."""
    pytester.makepyfile(CLEAN.replace("@pytest.mark.asyncio", '@pytest.mark.asyncio(loop_scope="module")'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o",
                                           "asyncio_default_fixture_loop_scope=module")
    result.assert_outcomes(passed=1)


STALLING = """
    import pytest
    from quicsim.core.send_queue import SendQueue

    @pytest.mark.asyncio
    @pytest.mark.quicsim(transport="memory")
    async def test_stalls(quicsim_pair, monkeypatch):
        # a broken stack: acknowledged sends wait for a shutdown to cancel them
        monkeypatch.setattr(SendQueue, "pop_acknowledged", lambda self, offset, fin: iter(()))
        s = quicsim_pair.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="never-on-time")

    @pytest.mark.asyncio
    @pytest.mark.quicsim(transport="memory")
    async def test_completes(quicsim_pair):
        s = quicsim_pair.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="on-time")
"""


def test_liveness_phase_reports_a_stalled_send(pytester: pytest.Pytester):
    """After the body, the network is healed and sends get a deadline: one still pending
    on a live connection fails the test as stalled; one that completes passes."""
    pytester.makepyfile(STALLING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*STALLED send client:1 client_context='never-on-time' on client stream 0*"])


PREEMPTED = """
    import pytest
    from quicsim import Settings, Status, StreamShutdownFlags

    async def story(pair):
        s = pair.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="first")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        late = s.send(b"late", client_context="late")
        await s.wait_shutdown_complete(timeout=5)
        return late

    @pytest.mark.asyncio
    @pytest.mark.quicsim(transport="memory", settings=Settings(preempt=1.0))
    async def test_worker_runs_after_every_call(quicsim_pair):
        assert await story(quicsim_pair) is Status.INVALID_STATE  # the shutdown was applied first

    @pytest.mark.asyncio
    @pytest.mark.quicsim(transport="memory")
    async def test_program_order(quicsim_pair):
        assert await story(quicsim_pair) is Status.PENDING  # rides with the unflushed batch
"""


def test_preemption_through_the_marker(pytester: pytest.Pytester):
    pytester.makepyfile(PREEMPTED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("options, marker, scopes", [
    # the fixtures on a session loop, the test on its own (a common way to silence
    # pytest-asyncio's warning about the unset fixture loop scope)
    (["-o", "asyncio_default_fixture_loop_scope=session"], "", ("'function'", "'session'")),
    # the reverse: the test on a module loop, the fixtures on the test's own
    (["-o", "asyncio_default_fixture_loop_scope=function"], '(loop_scope="module")', ("'module'", "'function'")),
])
def test_a_loop_scope_mismatch_is_named_at_once(pytester: pytest.Pytester, options, marker, scopes):
    """pytest-asyncio running the quicsim fixtures on another event loop than the test made
    the test wait its whole timeout on a stream that never started; now it fails before
    the body runs, naming the loop scopes and the setting to change."""
    pytester.makepyfile(CLEAN.replace("@pytest.mark.asyncio", "@pytest.mark.asyncio" + marker).replace(
        "s.start()", "s.start()\n        print('BODY RAN')"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", *options)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "BODY RAN" not in text and "timed out" not in text and "unstarted>" not in text
    assert "quicsim: pytest-asyncio runs this test on another event loop than the quicsim fixtures" in text
    assert f"the test's loop scope is {scopes[0]}" in text and f"the fixtures' {scopes[1]}" in text
    assert "asyncio_default_fixture_loop_scope = " in text and "@pytest.mark.asyncio(loop_scope=" in text


def test_one_loop_scope_for_both_is_fine(pytester: pytest.Pytester):
    """The same loop (both on the session's) is no mismatch: the test runs and passes."""
    pytester.makepyfile(CLEAN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=session",
                                           "-o", "asyncio_default_test_loop_scope=session")
    result.assert_outcomes(passed=1)


# -- a foreign peer as a fixture (peer=, peer_client=) --------------------------------

PEER_TESTS = """
    import pytest
    from quicsim import ConnectionEventType, Status, StreamShutdownFlags

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer="{peer}", peer_behaviour="echo", delay_ms=2)
    async def test_against_its_server(quicsim_pair, quicsim_peer):
        assert quicsim_pair.server is None and quicsim_peer.name == "{peer}" and quicsim_peer.host == "127.0.0.1"
        stream = quicsim_pair.client.open_stream()
        stream.start()
        stream.send(b"x" * 5000, client_context="to-the-peer")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        await stream.wait_shutdown_complete(timeout=15)
        await quicsim_peer.wait_event("fin-received")
        assert quicsim_pair.ledger.report()["acked"] == 1

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer_client="{peer}", peer_client_behaviour=("echo", "stop-sending"))
    async def test_with_its_client(quicsim_pair, quicsim_peer):
        assert quicsim_pair.client is None and quicsim_pair.server.connected
        await quicsim_peer.wait_event("stop-sending", timeout=15)
        await quicsim_peer.wait_event("fin-received", timeout=15)

    LATE = []

    def late_sender(conn, event):
        if event.type is ConnectionEventType.PEER_STREAM_STARTED:
            event.stream.set_handler(lambda s, e: None)
            LATE.append(event.stream)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(peer_client="{peer}", server_handler=late_sender,
                         server_settings=__import__("quicsim").Settings(faults=frozenset({{"drop-send-after-shutdown"}})))
    async def test_a_servers_leak_fails_it(quicsim_pair, quicsim_peer):
        import asyncio
        while not LATE:
            await asyncio.sleep(0.01)
        stream = LATE[0]
        stream.send(b"answer", client_context="answer")
        await asyncio.sleep(0)
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        assert stream.send(b"late", client_context="the-servers-late-send") is Status.PENDING
        await quicsim_peer.wait_event("fin-received", timeout=15)
"""


@pytest.mark.parametrize("peer", ["picoquic", "quiche"])
def test_a_peer_is_a_fixture_started_and_stopped_around_the_test(pytester: pytest.Pytester, peer, monkeypatch):
    from quicsim.peers import launcher
    from quicsim.peers.picoquic import peers_dir

    skip_unless_installed(launcher(peer))
    # pytester gives its subprocess a HOME of its own: name the peers found here (an
    # installed quicsim keeps them in the user's cache, under HOME)
    monkeypatch.setenv("QUICSIM_PEERS_DIR", str(peers_dir()))
    pytester.makepyfile(PEER_TESTS.format(peer=peer))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "FAILED test_a_peer_is_a_fixture_started_and_stopped_around_the_test.py::test_a_servers_leak_fails_it" \
        in text, text
    assert "'the-servers-late-send'" in text and "on server stream 0" in text, text


def test_a_peer_not_installed_skips_with_the_install_command(pytester: pytest.Pytester, tmp_path, monkeypatch):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.quicsim(peer="quiche")
        async def test_server(quicsim_peer):
            raise AssertionError("not reached")

        @pytest.mark.asyncio
        @pytest.mark.quicsim(peer_client="picoquic")
        async def test_client(quicsim_peer):
            raise AssertionError("not reached")
    """)
    empty = tmp_path / "no-peers"
    empty.mkdir()
    monkeypatch.setenv("QUICSIM_PEERS_DIR", str(empty))  # (the subprocess's environment)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2)
    text = result.stdout.str()
    assert "quiche peer not installed" in text and "npm install --prefix" in text, text
    assert "picoquic peer not installed" in text and "pip install" in text, text


def test_bad_peer_options_are_usage_errors(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.quicsim(peer="quich")
        async def test_bad_name(quicsim_pair):
            pass

        @pytest.mark.asyncio
        @pytest.mark.quicsim(peer="quiche", peer_client="quiche")
        async def test_both(quicsim_pair):
            pass

        @pytest.mark.asyncio
        @pytest.mark.quicsim(peer_client="quiche", peer_client_behaviour="answer-after-fin")
        async def test_bad_action(quicsim_pair):
            pass

        @pytest.mark.asyncio
        async def test_no_peer(quicsim_peer):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    text = result.stdout.str()
    assert "peer must be one of picoquic, quiche" in text and "got 'quich'" in text, text
    assert "peer= and peer_client= exclude each other" in text, text
    assert "unknown client action 'answer-after-fin'" in text, text
    assert "quicsim_peer needs @pytest.mark.quicsim(peer=...)" in text, text
    result.assert_outcomes(errors=4)

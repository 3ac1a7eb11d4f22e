"""The plumbing for foreign peers that needs no peer installed: the options, what is
skipped and why, a peer that is not installed, ctx.server in a peer run, and the child
process machinery (listening line, refusal, early exit, timeout, stop by pid)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap

import pytest

import quicsim
from quicsim.cli import main as cli_main
from quicsim.peers import BEHAVIOURS, PeerHandle, launcher, normalize_behaviours
from quicsim.peers import process as peer_process
from quicsim.peers.process import PeerProcess
from quicsim.runner import RunOptions, needs_quicsim_server, run_job
from quicsim.scenario_spec import ScenarioContext

from .conftest import load_scenario_text

PEER = RunOptions(peer="picoquic")


def test_the_menu_and_bad_choices_fail_when_the_file_is_imported():
    assert BEHAVIOURS == ("echo", "stop-sending", "reset", "close-connection", "answer-after-fin")
    assert normalize_behaviours("reset") == ("reset",)
    with pytest.raises(ValueError, match="unknown peer behaviour 'rest'"):
        normalize_behaviours(("stop-sending", "rest"))
    with pytest.raises(ValueError, match="peer must be one of picoquic, quiche, ngtcp2, got 'quich'"):
        quicsim.scenario(peer="quich")(_body)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown peer behaviour"):
        quicsim.scenario(peer="picoquic", peer_behaviour="echoes")(_body)  # type: ignore[arg-type]
    spec = getattr(quicsim.scenario(peer="picoquic", peer_behaviour=["reset", "echo"])(_body),
                   "__quicsim_scenario__")
    assert (spec.peer, spec.peer_behaviour) == ("picoquic", ("reset", "echo"))


async def _body(ctx):
    pass


def test_scenarios_that_need_quicsims_server_are_skipped_saying_why(tmp_path):
    specs = load_scenario_text(tmp_path, """
        from quicsim import Settings, scenario

        def handler(conn, event):
            pass

        @scenario(server=handler)
        async def with_handler(ctx):
            pass

        @scenario
        async def touches_server(ctx):
            def inner():
                return ctx.server.label
            inner()

        @scenario(transport="memory")
        async def on_memory(ctx):
            pass

        @scenario(settings={"server": Settings(idle_timeout_ms=2000)})
        async def server_settings(ctx):
            pass

        @scenario
        async def plain(ctx):
            pass
        """)
    reasons = {s.name: needs_quicsim_server(s, PEER) for s in specs}
    assert "server handler" in reasons["with_handler"]
    assert "ctx.server" in reasons["touches_server"]  # found in a function defined in the body
    assert "in-memory link" in reasons["on_memory"]
    assert "server's settings" in reasons["server_settings"]
    assert reasons["plain"] is None
    result = run_job(specs[0], 1, PEER)
    assert result["skipped"] == reasons["with_handler"] and result["peer"] == "picoquic"
    assert result["passed"] and result["connected"] is None  # nothing ran


def test_a_peer_that_is_not_installed_is_skipped_with_the_command_that_installs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICSIM_PEERS_DIR", str(tmp_path / "nowhere"))
    reason = launcher("picoquic").missing()
    assert reason is not None and "install it with: " in reason
    assert f"{tmp_path}/nowhere/picoquic-venv/bin/pip install 'aiopquic>=0.6.1,<0.7'" in reason
    [spec] = load_scenario_text(tmp_path, """
        from quicsim import scenario

        @scenario(peer="picoquic")
        async def against_picoquic(ctx):
            pass
        """)
    result = run_job(spec, 1)  # the scenario's own peer=, no --peer
    assert result["skipped"] == reason and result["peer"] == "picoquic"


def test_quicsim_run_peer_lists_the_skips_and_refuses_what_cannot_be_combined(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QUICSIM_PEERS_DIR", str(tmp_path / "nowhere"))
    path = tmp_path / "scn.py"
    path.write_text("from quicsim import scenario\n@scenario\nasync def plain(ctx):\n    pass\n")
    assert cli_main(["run", str(path), "--peer", "picoquic"]) == 0
    out = capsys.readouterr().out
    assert "skip plain against picoquic: picoquic peer not installed" in out and "install it with:" in out
    for extra, said in ((["--backend", "msquic"], "cannot be used with --backend msquic"),
                        (["--transport", "memory"], "cannot be used with --transport memory"),
                        (["--check-determinism"], "cannot be used with --check-determinism")):
        assert cli_main(["run", str(path), "--peer", "picoquic", *extra]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
    assert cli_main(["run", str(path), "--peer", "ngtcp3"]) == 2
    assert "invalid choice: 'ngtcp3'" in capsys.readouterr().err
    assert PEER.command_args() == ["--peer", "picoquic"]  # the reproduce line carries it


def test_ctx_server_in_a_peer_run_names_the_peer():
    handle = PeerHandle("picoquic", ("echo",), "127.0.0.1", 4433, 1)
    ctx = ScenarioContext(client=None, server=None, listener=None, seed=1, network=None,  # type: ignore[arg-type]
                          ledger=None, spec=None, peer=handle)  # type: ignore[arg-type]
    assert ctx.peer is handle and handle.behaviour == "echo"
    with pytest.raises(AttributeError, match="the picoquic peer, not quicsim's .use ctx.peer"):
        ctx.server
    with pytest.raises(AttributeError, match="ctx.listener"):
        ctx.listener


def _child(code: str) -> PeerProcess:
    return PeerProcess("fake", ("echo",), [sys.executable, "-c", textwrap.dedent(code)])


LISTENS = """
    import json, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: (print(json.dumps({"event": "stopped"}), flush=True), sys.exit(0)))
    print(json.dumps({"listening": {"host": HOST, "port": 4433, "bound": []}}), flush=True)
    print(json.dumps({"event": "reset", "stream": 0}), flush=True)
    for _ in range(600):
        time.sleep(0.1)
    """


def test_the_process_waits_for_the_listening_line_reads_reports_and_stops_by_pid():
    async def main():
        process = _child(LISTENS.replace("HOST", '"127.0.0.1"'))
        handle = await process.start()
        assert (handle.host, handle.port, handle.pid) == ("127.0.0.1", 4433, process.proc.pid)
        assert (await handle.wait_event("reset"))[0]["stream"] == 0
        await process.stop()
        assert handle.saw("stopped") and process.proc.returncode == 0

    asyncio.run(main())


def test_a_peer_that_does_not_listen_on_loopback_or_fails_is_refused(monkeypatch):
    async def main():
        with pytest.raises(ConnectionError, match="listens on 0.0.0.0, not 127.0.0.1"):
            await _child(LISTENS.replace("HOST", '"0.0.0.0"')).start()
        with pytest.raises(ConnectionError, match="refused to run: not pinned"):
            await _child('import json; print(json.dumps({"error": "not pinned"}))').start()
        with pytest.raises(ConnectionError, match="exited before listening: .*boom"):
            await _child("raise SystemExit('boom')").start()
        monkeypatch.setattr(peer_process, "START_SECONDS", 0.5)
        silent = _child("import time\nfor _ in range(600):\n    time.sleep(0.1)\n")
        with pytest.raises(ConnectionError, match="did not listen within 0.5 s"):
            await silent.start()
        assert silent.proc.returncode is not None  # stopped, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(silent.proc.pid, 0)

    asyncio.run(main())


def test_install_says_in_one_line_why_a_peer_could_not_be_installed(tmp_path, monkeypatch, capsys):
    from quicsim.peers import install

    monkeypatch.setenv("QUICSIM_PEERS_DIR", str(tmp_path / "peers"))
    monkeypatch.setenv("QUICSIM_PEER_PYTHON", str(tmp_path / "no-python"))
    assert install.main(["picoquic"]) == 0  # CI goes on: the peer's tests skip, saying why
    out = capsys.readouterr().out.strip()
    assert out.startswith("picoquic: not installed: ") and "no-python -m venv" in out and "\n" not in out
    assert install.main(["quiche2"]) == 2
    assert "unknown peer 'quiche2'" in capsys.readouterr().err


def test_the_matrix_shows_each_verdict_and_what_differed_from_quicsims_server(tmp_path, capsys):
    from quicsim.peers import matrix

    def run(name, seed, passed=True, acked=3, canceled=0, leaks=(), skipped=None, events=()):
        return {"scenario": name, "seed": seed, "passed": passed, "acked": acked, "canceled": canceled,
                "leaks": list(leaks), "error": None if passed else "timed out", "peer_events": list(events),
                **({"skipped": skipped} if skipped else {})}

    peer = [run("same", 1, events=[{"event": "connected"}, {"event": "reset"}]), run("same", 2),
            run("differs", 1, passed=False, acked=1, canceled=2), run("skipped", 1, skipped="it uses ctx.server"),
            run("quiet", 1), {**run("quiet", 2, passed=False), "peer_silence": {"text": "peer P sent nothing"}}]
    base = [run("same", 1), run("same", 2), run("differs", 1)]
    for path, results in (("peer.jsonl", peer), ("base.jsonl", base)):
        (tmp_path / path).write_text("".join(json.dumps(r) + "\n" for r in results))
    assert matrix.main([str(tmp_path / "peer.jsonl"), str(tmp_path / "base.jsonl")]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows == [
        "| `same` | pass (2 seeds) | reset | same verdict, same acked, canceled and leaks |",
        "| `differs` | FAIL 1/1: timed out | - | seed 1: passed/acked/canceled/leaks (False, 1, 2, 0) vs "
        "(True, 3, 0, 0) |",
        "| `skipped` | skip: it uses ctx.server | - | - |",
        "| `quiet` | FAIL 1/2, the peer's doing: peer P sent nothing | - | not run against quicsim's server |"]
    assert matrix.main([str(tmp_path / "missing.jsonl")]) == 2


def test_a_scenario_written_for_one_peer_skips_runs_that_name_another():
    """peer_only: a scenario that checks one stack's own codes is skipped, saying why, by a
    run whose --peer or --peer-client names another stack or the other end; a generic
    scenario runs wherever it is sent."""

    @quicsim.scenario(peer="ngtcp2", peer_only=True)
    async def for_ngtcp2(ctx: ScenarioContext) -> None:
        raise AssertionError("not reached")

    @quicsim.scenario(peer_client="ngtcp2", peer_only=True)
    async def for_ngtcp2s_client(ctx: ScenarioContext) -> None:
        raise AssertionError("not reached")

    spec, client_spec = for_ngtcp2.__quicsim_scenario__, for_ngtcp2s_client.__quicsim_scenario__
    result = run_job(spec, 1, RunOptions(peer="quiche"))
    assert result["skipped"] == "it is written for ngtcp2's server (peer_only); this run names --peer quiche"
    result = run_job(spec, 1, RunOptions(peer_client="picoquic"))
    assert result["skipped"].endswith("this run names --peer-client picoquic")
    result = run_job(client_spec, 1, RunOptions(peer="ngtcp2"))
    assert result["skipped"] == "it is written for ngtcp2's client (peer_only); this run names --peer ngtcp2"
    from quicsim.runner import not_its_peer

    assert not_its_peer(spec, RunOptions(peer="ngtcp2")) is None and not_its_peer(spec, RunOptions()) is None

    @quicsim.scenario(peer="picoquic")
    async def generic(ctx: ScenarioContext) -> None:
        raise AssertionError("not reached")

    assert not_its_peer(generic.__quicsim_scenario__, RunOptions(peer="quiche")) is None

    async def no_peer(ctx: ScenarioContext) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match="peer_only=True needs the peer it is written for"):
        quicsim.scenario(peer_only=True)(no_peer)

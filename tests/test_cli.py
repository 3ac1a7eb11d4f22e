"""quicsim run / certs from the command line: results, JSON, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def quicsim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    from quicsim import scenario, StreamShutdownFlags

    @scenario(network={"loss": 0.05})
    async def quick(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="a")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)
"""


def test_run_json_lines(tmp_path):
    path = _write(tmp_path, "good.py", GOOD)
    proc = quicsim("run", str(path), "--json", "--repeat", "2", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["scenario"], r["seed"], r["passed"]) for r in rows] == [("quick", 5, True), ("quick", 6, True)]
    for key in ("file", "expect", "error", "ok", "sends", "completions", "leaks", "violations"):
        assert key in rows[0]


def test_run_table_and_inject_fails_with_repro(tmp_path):
    path = _write(tmp_path, "late.py", """
        from quicsim import scenario, StreamShutdownFlags

        @scenario()
        async def late(ctx):
            s = ctx.client.open_stream()
            s.start()
            s.send(b"x", client_context="first")
            await ctx.sleep(0)
            s.shutdown(StreamShutdownFlags.GRACEFUL)
            s.send(b"y", client_context="the-late-one")
            await s.wait_shutdown_complete(timeout=5)
    """)
    ok = quicsim("run", str(path))
    assert ok.returncode == 0 and "1 passed, 0 failed" in ok.stdout
    bad = quicsim("run", str(path), "--inject", "drop-send-after-shutdown")
    assert bad.returncode == 1
    assert "LEAK" in bad.stdout and "'the-late-one'" in bad.stdout
    assert "reproduce: quicsim run" in bad.stdout and "--inject drop-send-after-shutdown" in bad.stdout


def test_scenarios_that_raise_or_hang_fail_and_the_run_continues(tmp_path):
    path = _write(tmp_path, "mixed.py", """
        import asyncio
        from quicsim import scenario

        @scenario(timeout=1)
        async def raises(ctx):
            s = ctx.client.open_stream()
            s.start()
            s.send(b"x", client_context="pending-one")
            assert 1 == 2, "scenario assertion"

        @scenario(timeout=1)
        async def hangs(ctx):
            s = ctx.client.open_stream()
            s.send(b"x", client_context="stuck")
            await asyncio.sleep(60)

        @scenario()
        async def fine(ctx):
            pass
    """)
    proc = quicsim("run", str(path), "--json")
    assert proc.returncode == 1
    rows = {r["scenario"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == {"raises", "hangs", "fine"}
    assert "AssertionError: scenario assertion" in rows["raises"]["error"]
    assert f"{path}:" in rows["raises"]["error"]
    assert rows["hangs"]["error"].startswith("timed out after 1 s")
    assert "'stuck'" in rows["hangs"]["error"]
    assert rows["fine"]["passed"] is True


@pytest.mark.parametrize("body,expected", [
    ("def broken(:\n    pass\n", "syntax error"),
    ("x = 1\n", "no scenarios found"),
    ("from quicsim import scenario, Settings\n\n@scenario(settings=Settings(faults=['nope']))\n"
     "async def s(ctx):\n    pass\n", "unknown fault 'nope'"),
    ("from quicsim import scenario\n\n@scenario(network={'loss': 2})\nasync def s(ctx):\n    pass\n",
     "network.loss must be a fraction"),
])
def test_bad_scenario_files_exit_2_with_one_line(tmp_path, body, expected):
    path = _write(tmp_path, "bad.py", body)
    proc = quicsim("run", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert expected in lines[0] and str(path) in lines[0]


@pytest.mark.parametrize("args,expected", [
    (["--loss", "1.5"], "must be a fraction in [0, 1], got 1.5"),
    (["--inject", "nope"], "unknown fault 'nope'"),
    (["--repeat", "0"], "must be >= 1"),
    (["-k", "nothing-matches"], "no scenario name contains it"),
])
def test_bad_options_exit_2(tmp_path, args, expected):
    path = _write(tmp_path, "good.py", GOOD)
    proc = quicsim("run", str(path), *args)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_path_exit_2(tmp_path):
    proc = quicsim("run", str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_certs_command(tmp_path):
    proc = quicsim("certs", str(tmp_path / "c"))
    assert proc.returncode == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["ca.pem", "server.key", "server.pem"]


def test_demo_runs_and_catches_an_injected_fault():
    proc = quicsim("demo", "--loss", "0.05")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SEND_COMPLETE" in proc.stdout and "ledger: ok" in proc.stdout
    assert "req-late" in proc.stdout
    bad = quicsim("demo", "--inject", "drop-send-after-shutdown")
    assert bad.returncode == 0, bad.stdout + bad.stderr
    assert "FAULT drop-send-after-shutdown" in bad.stdout
    assert "LEAK" in bad.stdout and "client_context='req-late'" in bad.stdout
    # MsQuic's own path: the handler closes the stream at the first canceled send, from
    # inside the graceful shutdown's cancel loop, and the second late send is lost.
    own = quicsim("demo", "--inject", "reentrant-close")
    assert own.returncode == 0, own.stdout + own.stderr
    assert "FAULT reentrant-close" in own.stdout
    assert "LEAK" in own.stdout and "client_context='req-late-2'" in own.stdout
    assert "client_context='req-late'" not in own.stdout.split("LEAK", 1)[1].splitlines()[0]


# Ctrl-C: tests/test_ctrl_c.py (run, fuzz, demo)

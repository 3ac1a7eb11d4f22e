"""A send is named one way in every message: ``CONN:SEND_ID`` (``send client:2``), the
form ``quicsim explain --send`` takes, in run's failures, check, explain and the ledger."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from quicsim.check import judge_lines

REPO = Path(__file__).resolve().parent.parent

LATE = """
    from quicsim import scenario, StreamShutdownFlags

    @scenario(transport="memory")
    async def late(ctx):
        s = ctx.client.open_stream()
        s.start()
        s.send(b"x" * 100, client_context="first")
        await ctx.sleep(0)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        s.send(b"y", client_context="late")
        await s.wait_shutdown_complete(timeout=5)
"""

#: a send named any other way: "send #2", "send 2"
OTHER_FORMS = re.compile(r"\bsend (#\d|\d)")
#: explain's echo of a trace record ("  0.000000  client stream 0  fault ..."): the record's own text
RECORD_ECHO = re.compile(r"^\s+\d+\.\d{6}  ")


def _messages(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not RECORD_ECHO.match(line))


def _quicsim(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode in (0, 1) and proc.stderr == "", proc.stderr
    return proc.stdout


def test_every_message_names_a_leaked_send_as_conn_colon_send_id(tmp_path):
    scenario = tmp_path / "late.py"
    scenario.write_text(textwrap.dedent(LATE))
    traces = tmp_path / "traces"
    run = _quicsim("run", str(scenario), "--inject", "drop-send-after-shutdown", "--trace", str(traces))
    trace = traces / "late-seed1.jsonl"
    ledger = judge_lines(trace.read_text().splitlines(), str(trace))
    [leak] = ledger.leaks
    name = f"{leak['connection']}:{leak['send_id']}"
    assert leak["connection"] == "client" and leak["client_context"] == "'late'"
    check = _quicsim("check", str(trace))
    explain = _quicsim("explain", str(trace))
    one = _quicsim("explain", str(trace), "--send", name)
    outputs = {"run": run, "check": check, "explain": explain, "ledger": ledger.summary()}
    for where, text in outputs.items():
        assert f"LEAK send {name} " in text, (where, text)
        assert not OTHER_FORMS.search(_messages(text)), (where, OTHER_FORMS.search(_messages(text)), text)
    assert f"LEAK send {name} client_context='late'" in run + check + ledger.summary()
    # the name in a message is what explain --send takes: that send, and no other
    assert f"LEAK send {name} on client stream 0" in one and "'first'" not in _messages(one)

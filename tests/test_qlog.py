"""qlog per connection: JSON-SEQ (qlog 0.3) that parses, with aioquic's and quicsim's events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job

REPO = Path(__file__).resolve().parent.parent


def _records(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.startswith("\x1e"), "JSON-SEQ: every record starts with RS"
    return [json.loads(chunk) for chunk in text.split("\x1e") if chunk.strip()]


def test_qlog_files_parse_and_have_the_expected_shape(tmp_path):
    spec = load_scenarios([str(REPO / "scenarios" / "idle_timeout_blackhole.py")])[0]
    result = run_job(spec, spec.seed, RunOptions(trace_dir=str(tmp_path), transport="memory"))
    assert result["passed"], result
    files = sorted(tmp_path.glob("*.sqlog"))
    assert [f.name for f in files] == ["idle_timeout_blackhole-seed1-client.sqlog",
                                       "idle_timeout_blackhole-seed1-server.sqlog"]
    for path, side in zip(files, ("client", "server")):
        header, *events = _records(path)
        assert header["qlog_version"] == "0.3" and header["qlog_format"] == "JSON-SEQ"
        assert header["trace"]["vantage_point"]["type"] == side
        assert "ODCID" in header["trace"]["common_fields"]
        names = {e["name"] for e in events}
        assert {"transport:packet_sent", "transport:packet_received", "recovery:metrics_updated"} <= names
        assert all(set(e) == {"time", "name", "data"} for e in events)
        times = [e["time"] for e in events]
        assert times == sorted(times), "virtual, monotonic times"
    client_names = [e["name"] for e in _records(files[0])[1:]]
    assert "transport:stream_data_moved" in client_names
    assert "quicsim:send_complete" in client_names
    assert "simulation:marker" in client_names  # the blackhole the scenario switched on
    moved = [e for e in _records(files[0])[1:] if e["name"] == "transport:stream_data_moved"]
    assert moved[0]["data"]["from"] == "application" and moved[0]["data"]["to"] == "transport"


def _events(path: Path) -> list[dict]:
    return _records(path)[1:]


def test_qlog_carries_the_fault_and_the_leak(tmp_path):
    spec = load_scenarios([str(REPO / "scenarios" / "fault_drop_send_after_shutdown.py")])[0]
    result = run_job(spec, spec.seed, RunOptions(trace_dir=str(tmp_path), transport="memory"))
    assert result["passed"] and result["leaks"], result
    client = _events(tmp_path / f"{spec.name}-seed{spec.seed}-client.sqlog")
    server = _events(tmp_path / f"{spec.name}-seed{spec.seed}-server.sqlog")
    faults = [e for e in client if e["name"] == "quicsim:fault"]
    assert faults and faults[0]["data"]["fault"] == "drop-send-after-shutdown"
    leaks = [e for e in client if e["name"] == "quicsim:leak"]
    assert len(leaks) == 1 and leaks[0]["data"]["client_context"] == "req-late"  # the value, not its repr
    assert leaks[0]["time"] >= faults[0]["time"]
    assert not [e for e in server if e["name"] in ("quicsim:leak", "quicsim:fault")]  # the client's bug


def test_qlog_names_stalled_sends(tmp_path, monkeypatch):
    """A core that never completes acknowledged sends (a mutation): the liveness phase
    reports the send as stalled, and the qlog carries it for qvis."""
    from quicsim.core.send_queue import SendQueue

    monkeypatch.setattr(SendQueue, "pop_acknowledged", lambda self, acked_offset, fin_acked: iter(()))
    path = tmp_path / "stall.py"
    path.write_text(
        "from quicsim import scenario\n\n"
        "@scenario(transport='memory')\n"
        "async def stall(ctx):\n"
        "    ctx.network.blackhole(1000)\n"
        "    s = ctx.client.open_stream()\n"
        "    s.start()\n"
        "    s.send(b'x' * 100, client_context='stuck')\n")
    spec = load_scenarios([str(path)])[0]
    result = run_job(spec, 1, RunOptions(trace_dir=str(tmp_path)))
    assert not result["passed"] and [s["client_context"] for s in result["stalled"]] == ["'stuck'"], result
    stalled = [e for e in _events(tmp_path / "stall-seed1-client.sqlog") if e["name"] == "quicsim:stalled_send"]
    assert [e["data"]["client_context"] for e in stalled] == ["stuck"]


def test_qlog_keeps_aioquics_datagram_frames(tmp_path):
    path = tmp_path / "dgram.py"
    path.write_text(
        "from quicsim import scenario, Settings, DatagramSendState\n\n"
        "@scenario(transport='memory', settings=Settings(datagram_receive_enabled=True))\n"
        "async def dgram(ctx):\n"
        "    ctx.client.send_datagram(b'hello', client_context='d1')\n"
        "    await ctx.sleep(1)\n")
    spec = load_scenarios([str(path)])[0]
    result = run_job(spec, 1, RunOptions(trace_dir=str(tmp_path)))
    assert result["passed"], result
    frames = [f for e in _events(tmp_path / "dgram-seed1-client.sqlog") if e["name"] == "transport:packet_sent"
              for f in e["data"].get("frames", [])]
    assert any(f.get("frame_type") == "datagram" for f in frames)


CONTEXTS = '''
from quicsim import Settings, StreamShutdownFlags, scenario


class Opaque:
    def __repr__(self):
        return "Opaque()"


@scenario(transport="memory", expect="leak", settings={"client": Settings(faults=["drop-send-after-shutdown"])})
async def contexts(ctx):
    stream = ctx.client.open_stream()
    stream.start()
    stream.send(b"a", client_context=7)
    stream.send(b"b", client_context=("req", 1))
    await ctx.sleep(0)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    stream.send(b"c", client_context={"req": 2})
    stream.send(b"d", client_context=Opaque())
    await stream.wait_shutdown_complete(timeout=15)
'''


def test_client_context_is_written_as_its_value_in_qlog_and_run_json(tmp_path, capsys):
    """A client_context is written as the value the application gave (a JSON-able one as
    it is; another as {"repr": ...}), not as its Python repr, in qlog and ``run --json``."""
    from quicsim.cli import main

    (tmp_path / "contexts.py").write_text(CONTEXTS)
    assert main(["run", str(tmp_path / "contexts.py"), "--json", "--trace", str(tmp_path / "out")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [leak["client_context"] for leak in result["leaks"]] == [{"req": 2}, {"repr": "Opaque()"}]
    client = _events(tmp_path / "out" / "contexts-seed1-client.sqlog")
    completed = [e["data"]["client_context"] for e in client if e["name"] == "quicsim:send_complete"]
    assert completed == [7, ["req", 1]]
    leaked = [e["data"]["client_context"] for e in client if e["name"] == "quicsim:leak"]
    assert leaked == [{"req": 2}, {"repr": "Opaque()"}]
    # the JSON Lines trace keeps the text quicsim check compares
    trace = [json.loads(line) for line in (tmp_path / "out" / "contexts-seed1.jsonl").read_text().splitlines()]
    assert [r["client_context"] for r in trace if r["kind"] == "leak"] == ["{'req': 2}", "Opaque()"]

"""qlog per connection: JSON-SEQ (qlog 0.3) that parses, with aioquic's and quicsim's events."""

from __future__ import annotations

import json
from pathlib import Path

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

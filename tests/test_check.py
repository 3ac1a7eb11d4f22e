"""quicsim check: real traces re-judged offline pass; an edited one (two completions of
one stream swapped) is flagged; bad input is one line and status 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from quicsim.check import judge_lines, main as check_main
from quicsim.cli import main as cli_main
from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    """A real trace: 3 sends, a graceful shutdown, a late send, on the memory link."""
    out = tmp_path_factory.mktemp("traces")
    spec = load_scenarios([str(ROOT / "scenarios" / "shutdown_then_send_same_tick.py")])[0]
    result = run_job(spec, 1, RunOptions(trace_dir=str(out), transport="memory"))
    assert result["passed"] and result["completions"] == 4
    return Path(result["trace"])


def _swap_two_completions(lines: list[str]) -> list[str]:
    acked = [i for i, line in enumerate(lines)
             if '"SEND_COMPLETE"' in line and '"conn": "client"' in line and '"canceled": false' in line]
    i, j = acked[0], acked[1]
    assert json.loads(lines[i])["stream_id"] == json.loads(lines[j])["stream_id"]
    lines = list(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def test_unedited_trace_passes(trace, capsys):
    assert cli_main(["check", str(trace)]) == 0
    assert capsys.readouterr().out == f"{trace}: ok (4 sends, 4 completions)\n"


def test_two_swapped_completions_are_flagged(trace, tmp_path, capsys):
    edited = tmp_path / "swapped.jsonl"
    edited.write_text("\n".join(_swap_two_completions(trace.read_text().splitlines())) + "\n")
    assert cli_main(["check", str(trace), str(edited)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{trace}: ok (4 sends, 4 completions)",
        f"{edited}: VIOLATION client stream id=0: SEND_COMPLETE (acknowledged) for send client:2 "
        f"(client_context='req-1') before older send client:1 (client_context='req-0')"]


def test_a_dropped_completion_is_a_leak_naming_send_context_stream_and_connection(trace):
    lines = [line for line in trace.read_text().splitlines() if "'req-late'\", \"send_id\"" not in line
             or '"SEND_COMPLETE"' not in line]
    out = io.StringIO()
    path = trace.parent / "dropped.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert check_main([str(path)], out=out) == 1
    assert out.getvalue() == (f"{path}: LEAK send client:4 client_context='req-late' stream 0 connection client "
                              f"(at its SHUTDOWN_COMPLETE)\n")


@pytest.mark.parametrize("content, message", [
    ('{"kind": "call"\n', "bad.jsonl:1: not JSON"),
    ('[1, 2]\n', "bad.jsonl:1: not a JSON object"),
    ('{"kind": "call", "name": "send", "conn": "c", "stream_handle": 1, "status": "MAYBE"}\n',
     "bad.jsonl:1: unknown status 'MAYBE'"),
    ('\n{"kind": "event", "name": "SEND_COMPLETE", "conn": "c", "stream_handle": 1, "client_context": "1"}\n',
     "bad.jsonl:2: missing field 'canceled'"),
    ('{"kind": "event", "name": "NO_SUCH_EVENT", "conn": "c", "stream_handle": 1}\n',
     "bad.jsonl:1: unknown stream event 'NO_SUCH_EVENT'"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    out, err = io.StringIO(), io.StringIO()
    assert check_main([str(path)], out=out, err=err) == 2
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1 and message in err.getvalue()


def test_missing_file_is_status_2(tmp_path, capsys):
    assert cli_main(["check", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.jsonl: cannot read" in err


def test_schema_requires_what_the_checker_reads(trace):
    """docs/history.schema.json: valid JSON, and every line of a real trace has the
    fields it requires for its kind and name."""
    schema = json.loads((ROOT / "docs" / "history.schema.json").read_text())
    rules = schema["allOf"]
    checked = 0
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        for rule in rules:
            cond = rule["if"]["properties"]
            if all(k in record and (record[k] == v.get("const") if "const" in v else record[k] in v["enum"])
                   for k, v in cond.items()):
                checked += 1
                for field in rule["then"].get("required", []):
                    assert field in record, (field, record)
                if "anyOf" in rule["then"]:
                    assert any(all(f in record for f in alt["required"]) for alt in rule["then"]["anyOf"])
    assert checked > 20
    # and a history with only the required fields is judged the same way
    minimal = ['{"kind": "call", "name": "send", "conn": "c", "stream_handle": 1, "status": "PENDING", '
               '"bytes": 3, "flags": "NONE", "client_context": "a"}',
               '{"kind": "event", "name": "SEND_COMPLETE", "conn": "c", "stream_handle": 1, "canceled": false, '
               '"client_context": "a"}']
    assert judge_lines(minimal).ok
    assert not judge_lines(minimal + [minimal[1]]).ok  # a second completion


def test_a_never_started_stream_left_open_is_one_finding_live_and_offline(tmp_path):
    """A body that opens a stream, sends on it and never starts or closes it: the send is
    reported once, as a leak (MsQuic completes it only at StreamClose), not again as a
    duplicate completion when the teardown closes the handle nor as pending in the
    unsettled note; and quicsim check of the run's trace reaches the same verdict (the
    trace marks where the run judged what the application left)."""
    (tmp_path / "left_open.py").write_text(
        "from quicsim import scenario\n\n"
        "@scenario(transport='memory', timeout=10)\n"
        "async def left_open(ctx):\n"
        "    ctx.client.open_stream().send(b'abc', client_context='u1')\n")
    spec = load_scenarios([str(tmp_path / "left_open.py")])[0]
    result = run_job(spec, 1, RunOptions(trace_dir=str(tmp_path / "trace")))
    assert not result["passed"]
    assert [(leak["client_context"], leak["stream_id"], leak["stream_handle"]) for leak in result["leaks"]] == [
        ("'u1'", None, 1)]
    assert result["violations"] == [] and result["unsettled"] is None
    assert result["completions"] == 0 and result["pending"] == 0
    offline = judge_lines(Path(result["trace"]).read_text().splitlines())
    assert [leak["client_context"] for leak in offline.leaks] == ["'u1'"] and offline.violations == []
    assert check_main([result["trace"]]) == 1

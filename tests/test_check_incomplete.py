"""quicsim check of a history that stops early: a trace cut at a line boundary, cut in the
middle of a line, or empty is judged *incomplete* (exit 1, the sends still pending listed),
never "ok"; the whole trace still passes."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from quicsim.check import main as check_main
from quicsim.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    """A real trace of many sends on a lossy link, written by ``quicsim run --trace``."""
    out = tmp_path_factory.mktemp("traces")
    assert cli_main(["run", str(ROOT / "scenarios" / "many_streams_lossy.py"), "--transport", "memory",
                     "--trace", str(out), "--json"]) == 0
    (path,) = out.glob("*.jsonl")
    return path


def _check(path: Path) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    status = check_main([str(path)], out=out, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


def _pending(lines: list[str]) -> Counter:
    """Accepted sends without their SEND_COMPLETE in ``lines``, counted by (connection,
    stream, client_context): worked out from the records, apart from the ledger."""
    pending: Counter = Counter()
    for line in lines:
        record = json.loads(line)
        if record.get("kind") == "call" and record.get("name") == "send" and record.get("status") == "PENDING":
            pending[(record["conn"], record["stream_handle"], record["client_context"])] += 1
        elif record.get("kind") == "event" and record.get("name") == "SEND_COMPLETE":
            pending[(record["conn"], record["stream_handle"], record["client_context"])] -= 1
    return +pending


def _listed(out: list[str], path: Path, handles: dict) -> Counter:
    """The PENDING lines, as (connection, stream handle, client_context)."""
    listed: Counter = Counter()
    for line in out:
        if line.startswith(f"{path}: PENDING "):
            words = line.split()
            context = line.split("client_context=", 1)[1].rsplit(" stream ", 1)[0]
            listed[(words[-1], handles[(words[-1], int(words[-3]))], context)] += 1
    return listed


def _handles(lines: list[str]) -> dict:
    """(connection, stream id) -> stream handle, from the records."""
    return {(r["conn"], r["stream_id"]): r["stream_handle"] for r in map(json.loads, lines)
            if r.get("stream_id") is not None and r.get("stream_handle") is not None}


def test_the_whole_trace_is_ok(trace):
    status, out, err = _check(trace)
    assert (status, err) == (0, "")
    assert out == [f"{trace}: ok (520 sends, 520 completions)"]


def test_a_trace_cut_at_a_line_boundary_is_incomplete_and_lists_the_pending_sends(trace, tmp_path):
    lines = trace.read_text().splitlines(keepends=True)
    keep = len(lines) // 3
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:keep]))
    expected = _pending(lines[:keep])
    assert expected, "the cut leaves sends pending"
    status, out, err = _check(cut)
    assert (status, err) == (1, "")
    assert out[0] == (f"{cut}: INCOMPLETE the history ends early, after line {keep}: no SHUTDOWN_COMPLETE "
                      f"for connection client, server; {sum(expected.values())} sends still pending")
    assert _listed(out, cut, _handles(lines)) == expected
    assert not [line for line in out if " ok " in line]


def test_a_last_line_cut_mid_write_is_dropped_with_a_warning_and_the_rest_judged(trace, tmp_path):
    lines = trace.read_text().splitlines(keepends=True)
    keep = len(lines) // 2
    boundary, mid = tmp_path / "boundary.jsonl", tmp_path / "mid.jsonl"
    boundary.write_text("".join(lines[:keep]))
    mid.write_text("".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])
    status, out, err = _check(mid)
    assert status == 1
    assert err == f"quicsim check: warning: {mid}:{keep + 1}: the last line was cut mid-write; dropped, the rest judged\n"
    b_status, b_out, _ = _check(boundary)
    assert [line.replace(str(mid), "P") for line in out] == [line.replace(str(boundary), "P") for line in b_out]
    assert b_status == 1 and "INCOMPLETE" in out[0]


def test_a_bad_line_that_is_not_the_last_is_still_bad_input(trace, tmp_path):
    lines = trace.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines[:10]) + lines[10][:20] + "\n" + "".join(lines[11:20]))
    status, out, err = _check(bad)
    assert (status, out) == (2, [])
    assert err.startswith(f"quicsim check: {bad}:11: not JSON") and err.count("\n") == 1


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_history_is_incomplete(tmp_path, content):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    status, out, err = _check(empty)
    assert (status, err) == (1, "")
    assert out == [f"{empty}: INCOMPLETE the history ends before it begins: it is empty"]


def test_a_history_with_records_but_no_connection_is_incomplete(tmp_path):
    path = tmp_path / "no_conn.jsonl"
    path.write_text('{"kind": "datagram", "name": "forward", "t": 0.1}\n')
    status, out, _ = _check(path)
    assert status == 1 and out == [f"{path}: INCOMPLETE the history ends before it begins: no connection in it"]

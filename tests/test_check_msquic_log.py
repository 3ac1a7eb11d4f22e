"""quicsim check --msquic-log: 30 real MsQuic v2.3.5 logs of one client stream and 13 of four
client streams (two of them with a second client connection) and their server streams with sends outstanding at once (tests/fixtures/msquic-logs)
judged against the application's own record of them: per-stream counts, every lost send found,
every delivered completion line placed on its stream, the control runs clean; a log cut short is incomplete; a file that is not a MsQuic log is
one line and status 2; the history written with --to-trace is read by explain and check."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quicsim.cli import main as cli_main
from quicsim.explain import analyze, load_trace
from quicsim.msquic_log.command import main as log_main, read
from quicsim.msquic_log.rebuild import status_name

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "tests" / "fixtures" / "msquic-logs"
NAMES = sorted(p.name[: -len(".log.gz")] for p in LOGS.glob("*.log.gz"))
ALL = [name for name in NAMES if not name.startswith("multi")]  # one client stream with sends
MULTI = [name for name in NAMES if name.startswith("multi")]  # several streams, both ends


def _truth(name: str) -> dict:
    return json.loads((LOGS / f"{name}.truth.json").read_text())


def _text(name: str) -> str:
    return gzip.decompress((LOGS / f"{name}.log.gz").read_bytes()).decode()


def _run(path: str, to_trace: str | None = None) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    status = log_main(path, to_trace, out=out, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


def test_the_fixtures_are_all_there():
    assert len(ALL) == 30
    assert sum(1 for name in ALL if _truth(name)["streams"][0]["sends_lost"]) == 18
    assert len(MULTI) == 13
    assert all(len([s for s in _truth(name)["streams"] if s["send_calls"]]) >= 6 for name in MULTI)
    assert sum(1 for name in MULTI if _truth(name)["log"]["extra_send_complete_indications"]) == 3


@pytest.mark.parametrize("name", MULTI)
def test_several_streams_at_once_counts_equal_the_applications_own_record(name):
    """Four client streams sending interleaved (one graceful, one closing inside its first
    canceled SEND_COMPLETE, one aborted, one closing inside its first SEND_COMPLETE) and the
    server's sends: each stream's counts and lost sends, and each delivered completion line
    on the stream whose handler received it (the application printed it right after)."""
    truth = _truth(name)
    judgment = read(str(LOGS / f"{name}.log.gz"))
    assert not judgment.early and not judgment.rebuilt.unplaced and judgment.ledger.violations == []
    by_lifetime = {(j.stream.pointer, j.stream.allocated.number): j for j in judgment.streams}
    lost_ids = []
    for expected in truth["streams"]:
        mine = by_lifetime.pop((expected["handle"], expected["allocated_line"]))
        assert (mine.stream.conn.side, mine.stream.conn.pointer) == (expected["side"], expected["conn"])
        c = mine.counts
        assert (c.accepted, c.refused, c.acked, c.canceled, c.lost, c.pending, c.in_flight) == (
            expected["sends_accepted"], expected["sends_refused"], expected["completions_acked"],
            expected["completions_canceled"], expected["sends_lost"], 0, 0), expected["handle"]
        contexts = [call["ctx"] for call in expected["send_calls"]]
        assert [contexts[send.index - 1] for send in mine.lost] == expected["lost_contexts"]
        assert [s.enter.number for s in mine.stream.sends] == expected["log_streamsend_enter_lines"]
        assert [status_name(s.status) for s in mine.stream.sends] == [call["status"] for call in expected["send_calls"]]
        assert [(x.line.number, x.canceled) for x in mine.stream.completions if x.discarded is None] == [
            (x["line"], x["canceled"]) for x in expected["log_send_complete_lines"]]
        lost_ids += [s.send_id for s in mine.lost]
    assert all(not j.stream.sends for j in by_lifetime.values())  # the rest: streams without sends
    # MsQuic's extra completion lines (raised for no send of the application) are all
    # discarded: told to no one, counted for no send.
    extra = judgment.rebuilt.extra
    assert len(extra) == truth["log"]["extra_send_complete_indications"]
    assert all(x.discarded is not None and x.send is None for x in extra)
    # ... raised, not canceled, after their stream's StreamClose returned (the lost send's own
    # line, when there are both, is the canceled one: StreamClose cancels what is left)
    for x in extra:
        assert x.stream is not None and not x.canceled
        close = x.stream.closed()
        assert close is not None and close.exit is not None and close.exit.number < x.line.number
    assert sorted(leak["send_id"] for leak in judgment.ledger.leaks) == sorted(lost_ids)


@pytest.mark.parametrize("name", MULTI)
def test_several_streams_at_once_the_command_names_each_losing_stream(name):
    truth = _truth(name)
    status, out, err = _run(str(LOGS / f"{name}.log.gz"))
    losing = [s for s in truth["streams"] if s["sends_lost"]]
    assert status == (1 if losing else 0) and err == ""
    heads = [line for line in out if ": LOST " in line]
    assert len(heads) == len(losing)
    for expected in losing:
        (head,) = [h for h in heads if f"({expected['handle']}, connection {expected['conn']})" in h]
        assert f"LOST {expected['sends_lost']} of {expected['sends_accepted']} accepted sends on client stream" in head
    notes = [line for line in out if ": NOTE " in line and "had theirs already" in line]
    assert len(notes) == truth["log"]["extra_send_complete_indications"]
    lost = sum(s["sends_lost"] for s in truth["streams"])
    assert out[-1].split(": ", 1)[1].startswith(f"{'FAILED' if lost else 'ok'}: "
                                                f"{sum(s['sends_accepted'] for s in truth['streams'])} accepted, ")
    assert f"; {lost} lost on {len(losing)} stream" in out[-1]


@pytest.mark.parametrize("name", ALL)
def test_counts_equal_the_applications_own_record(name):
    truth = _truth(name)
    judgment = read(str(LOGS / f"{name}.log.gz"))
    (expected,) = truth["streams"]  # each program has one client stream
    (mine,) = [j for j in judgment.streams if j.stream.pointer == expected["handle"]]
    assert mine.stream.conn.pointer == truth["client_connection"] and mine.stream.conn.side == "client"
    assert mine.stream.allocated.number == expected["allocated_line"]
    c = mine.counts
    assert (c.accepted, c.refused, c.acked, c.canceled, c.lost) == (
        expected["sends_accepted"], expected["sends_refused"], expected["completions_acked"],
        expected["completions_canceled"], expected["sends_lost"])
    # Every lost send found: the sends judged lost are the application's lost ones (by position).
    contexts = [call["ctx"] for call in expected["send_calls"]]
    assert [contexts[send.index - 1] for send in mine.lost] == expected["lost_contexts"]
    # The StreamSend Enter/Exit pairs and the completion lines are the log's, as recorded.
    assert [(s.enter.number, s.exit.number if s.exit else None) for s in mine.stream.sends] == [
        (call["enter_line"], call["exit_line"]) for call in expected["log_streamsend_calls"]]
    assert [(x.line.number, x.canceled, x.discarded is not None) for x in mine.stream.completions] == [
        (x["line"], x["canceled"], x["discarded"]) for x in expected["log_send_complete_lines"]]
    # Nothing is pending, no other stream lost anything, the log ran to its end.
    assert not judgment.early and c.pending == 0 and c.in_flight == 0
    assert all(not j.lost for j in judgment.streams if j is not mine)
    # The ledger, replaying the rebuilt history, finds the same sends and nothing else.
    assert sorted(leak["send_id"] for leak in judgment.ledger.leaks) == [s.send_id for s in mine.lost]
    assert judgment.ledger.violations == []


@pytest.mark.parametrize("name", ALL)
def test_the_command_prints_each_loss_with_its_lines_and_exits_1(name):
    expected = _truth(name)["streams"][0]
    status, out, err = _run(str(LOGS / f"{name}.log.gz"))
    lost = expected["sends_lost"]
    completions = expected["completions_acked"] + expected["completions_canceled"]
    assert out[-1].endswith(f": {'FAILED' if lost else 'ok'}: {expected['sends_accepted']} accepted, "
                            f"{completions} completions ({expected['completions_acked']} acked, "
                            f"{expected['completions_canceled']} canceled), {expected['sends_refused']} refused, "
                            f"{lost} discarded; {lost} lost on {1 if lost else 0} stream"
                            + ("" if lost else "s") + f" of {out[-1].rsplit(' ', 1)[1]}")
    if not lost:
        assert (status, out[:-1], err) == (0, [], "")
        return
    assert status == 1
    (head,) = [line for line in out if ": LOST " in line]
    assert f"LOST {lost} of {expected['sends_accepted']} accepted sends on client stream" in head
    assert expected["handle"] in head
    shown = "\n".join(out)
    for line in expected["log_send_complete_lines"]:
        if line["discarded"]:  # the discarded completion and its discard line
            assert f"line {line['line']}: Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [{line['request']}]" in shown
            assert f"line {line['line'] + 1}: Event silently discarded  <- not delivered" in shown
    # The StreamClose made inside the callback, before the discarded completion.
    assert "Enter 19 (" + expected["handle"] + ").  <- StreamClose, called from the handler" in shown
    assert "StreamClose returned" in shown
    assert ("cannot be told" in shown) == (lost > 1)  # which lost send was which: said, not guessed


def test_a_log_cut_before_its_discarded_completion_is_incomplete_with_the_send_pending(tmp_path):
    name = "b-wait-buf1-run1"
    lines = _text(name).splitlines(keepends=True)
    discard = _truth(name)["streams"][0]["log_send_complete_lines"][-1]["line"]
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[: discard - 3]))  # inside the StreamClose, before the lost completion
    status, out, _ = _run(str(cut))
    assert status == 1
    assert any("INCOMPLETE the log ends early" in line and "calls still open: StreamClose" in line
               and "1 accepted sends still pending" in line for line in out)
    assert any(": PENDING send #5 on client stream 0" in line for line in out)
    assert not any(": LOST " in line for line in out)
    assert out[-1].endswith("INCOMPLETE: 5 accepted, 4 completions (3 acked, 1 canceled), 0 refused, 0 discarded; "
                            "0 lost on 0 streams of 2")


def test_a_log_cut_mid_line_is_judged_as_far_as_it_goes(tmp_path):
    text = _text("b-wait-buf1-run1")
    at = text.index("\n", text.index("Event silently discarded")) + 1
    cut = tmp_path / "cut.log"
    cut.write_text(text[: at + 30])  # the loss is in, then half a line
    status, out, _ = _run(str(cut))
    assert status == 1
    assert any(": LOST 1 of 5 accepted sends" in line for line in out)
    (incomplete,) = [line for line in out if "INCOMPLETE" in line]
    assert "is cut mid-write" in incomplete and "no SHUTDOWN_COMPLETE for connection client" in incomplete


def test_a_compressed_log_cut_short_says_so(tmp_path):
    data = (LOGS / "a-buf1-run1.log.gz").read_bytes()
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(data[: len(data) // 2])
    status, out, _ = _run(str(cut))
    assert status == 1
    assert any("INCOMPLETE" in line and "the compressed data stops early" in line for line in out)


def test_a_control_log_cut_before_its_end_is_not_ok(tmp_path):
    lines = _text("a-buf1-run1").splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[: len(lines) // 2]))
    status, out, _ = _run(str(cut))
    assert status == 1 and ": INCOMPLETE: " in out[-1]  # nothing lost yet: not ok, not a loss


@pytest.mark.parametrize("content", [
    "",
    "hello\nworld\n",
    "\n".join(json.dumps({"kind": "call", "name": "send", "n": n}) for n in range(400)) + "\n",
    "\x00\x01\xfe binary",
])
def test_a_file_that_is_not_a_msquic_log_is_one_line_and_status_2(tmp_path, content):
    path = tmp_path / "not-a-log.txt"
    path.write_text(content, encoding="latin-1")
    status, out, err = _run(str(path))
    assert (status, out) == (2, [])
    assert err.count("\n") == 1 and err.startswith(f"quicsim check: {path}: not a MsQuic log")


def test_a_long_file_that_is_not_a_msquic_log_is_named_by_its_first_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps({"kind": "call", "n": n}) for n in range(400)) + "\n")
    status, out, err = _run(str(path))
    assert (status, out) == (2, [])
    assert err.endswith("""; line 1: '{"kind": "call", "n": 0}'\n"""), err


def test_a_known_line_in_an_unknown_shape_is_named(tmp_path):
    text = _text("b-wait-buf1-run1").replace("[ api] Enter 22 (0x5626de574450). [ApiEnter",
                                              "[ api] Enter 22 (stream 7). [ApiEnter", 1)
    path = tmp_path / "odd.log"
    path.write_text(text)
    status, out, err = _run(str(path))
    assert (status, out) == (2, [])
    assert err == (f"quicsim check: {path}:915: ApiEnter line in a shape this checker does not know: "
                   f"'[ api] Enter 22 (stream 7). [ApiEnter:src/core/api.c:1013]'\n")


def test_a_missing_file_is_one_line_and_status_2(tmp_path, capsys):
    assert cli_main(["check", "--msquic-log", str(tmp_path / "nope.log")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_plain_and_gz_give_the_same_verdict(tmp_path):
    plain = tmp_path / "b-wait.log"
    plain.write_text(_text("b-wait-buf0-run2"))
    gz_status, gz_out, _ = _run(str(LOGS / "b-wait-buf0-run2.log.gz"))
    status, out, _ = _run(str(plain))
    strip = [line.split(": ", 1)[1] for line in out if not line.startswith("  ")]
    assert (status, strip) == (gz_status, [line.split(": ", 1)[1] for line in gz_out if not line.startswith("  ")])


@pytest.mark.parametrize("compressed", [True, False])
def test_stdin(compressed):
    data = (LOGS / "flush-close-buf1-run1.log.gz").read_bytes()
    result = subprocess.run([sys.executable, "-m", "quicsim", "check", "--msquic-log", "-"],
                            input=data if compressed else gzip.decompress(data), capture_output=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = result.stdout.decode().splitlines()
    assert result.returncode == 1, result.stderr
    assert out[0].startswith("<stdin>: LOST 1 of 2 accepted sends on client stream 0")
    assert out[-1] == ("<stdin>: FAILED: 2 accepted, 1 completions (1 acked, 0 canceled), 0 refused, "
                       "1 discarded; 1 lost on 1 stream of 2")


def test_the_trace_is_read_by_explain_its_report_and_check(tmp_path, capsys):
    trace = tmp_path / "b-wait.jsonl"
    assert cli_main(["check", "--msquic-log", str(LOGS / "b-wait-buf1-run1.log.gz"), "--to-trace", str(trace)]) == 1
    analysis = analyze(load_trace(trace), str(trace))
    (leak,) = analysis.leaks
    assert (leak.client_context, leak.accepted_t, analysis.summary()["sends"]) == ("#5", 1341.0, 5)
    # the log has no clock: times are told as its line numbers
    assert leak.cause is not None and "discarded at line 1361" in leak.cause and "close()" in leak.cause
    assert leak.closed_by is not None and leak.closed_by["in_handler"] == "SEND_COMPLETE client_context=#4"
    capsys.readouterr()
    html = tmp_path / "report.html"
    assert cli_main(["explain", str(trace), "--html", str(html)]) == 1
    told = capsys.readouterr().out
    assert "LEAK send client:5 on client stream 0, client_context=#5" in told
    assert "  accepted  line 1341 -> PENDING" in told and not re.search(r"\bt=\d", told)
    page = html.read_text()
    assert 'data-client-context="#5"' in page and "sends accepted: 5" in page
    assert "accepted at line 1341," in page and ">line 910</span>" in page  # its axis counts log lines
    assert cli_main(["check", str(trace)]) == 1
    assert f"{trace}: LEAK send client:5 client_context=#5 stream 0 connection client" in capsys.readouterr().out


def test_a_control_logs_trace_is_clean_for_explain_and_check(tmp_path, capsys):
    trace = tmp_path / "a.jsonl"
    assert cli_main(["check", "--msquic-log", str(LOGS / "a-buf0-run2.log.gz"), "--to-trace", str(trace)]) == 0
    assert cli_main(["check", str(trace)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{trace}: ok (3 sends, 3 completions)"
    assert cli_main(["explain", str(trace)]) == 0
    assert "3 sends accepted, 3 completed (3 acked, 0 canceled), 1 rejected, 0 LEAKED" in capsys.readouterr().out


def _line(message: str, event: str, where: str) -> str:
    return f"{message} [{event}:src/core/{where}]\n"


def _two_streams_log() -> str:
    """Two streams with a send each, their StreamSend calls overlapping (two threads); a
    completion line the log cannot tie to one stream by itself, then discarded."""
    enter = lambda code, handle: _line(f"[ api] Enter {code} ({handle}).", "ApiEnter",  # noqa: E731
                                       {18: "api.c:624", 19: "api.c:694", 22: "api.c:1013"}[code])
    out = [_line("[ lib] Version 2.3.5.0", "LibraryVersion", "library.c:426"),
           _line("[conn][0xc1] Created, IsServer=0, CorrelationId=0", "ConnCreated", "connection.c:87")]
    for stream, stream_id in (("0xa1", 0), ("0xa2", 4)):
        out += [enter(18, "0xc1"), _line(f"[strm][{stream}] Allocated, Conn=0xc1", "StreamAlloc", "stream.c:40"),
                _line("[ api] Exit 0", "ApiExitStatus", "api.c:671"),
                _line(f"[strm][{stream}] Created, Conn=0xc1 ID={stream_id} IsLocal=1", "StreamCreated",
                      "stream.c:296")]
    queuing = "App queuing send [100 bytes, 1 buffers, 0x0 flags]"
    out += [enter(22, "0xa1"), enter(22, "0xa2"),
            _line(f"[strm][0xa1] {queuing}", "StreamAppSend", "api.c:1070"),
            _line(f"[strm][0xa2] {queuing}", "StreamAppSend", "api.c:1070"),
            _line("[ api] Exit 4294967294", "ApiExitStatus", "api.c:1189"),
            _line("[ api] Exit 4294967294", "ApiExitStatus", "api.c:1189"),
            enter(19, "0xa2"), _line("[ api] Exit", "ApiExit", "api.c:784"),
            _line("[strm][0xa2] Send State: 2", "StreamSendState", "stream_send.c:286"),
            _line("Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [0xbb] (Canceled)", "IndicateSendCanceled",
                  "stream_send.c:443"),
            _line("Event silently discarded", "EventSilentDiscard", "stream.c:469"),
            _line("[strm][0xa1] Send State: 2", "StreamSendState", "stream_send.c:286"),
            _line("Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [0xaa]", "IndicateSendComplete", "stream_send.c:449"),
            enter(19, "0xa1"), _line("[ api] Exit", "ApiExit", "api.c:784"),
            _line("[conn][0xc1] Shutdown complete, PeerFailedToAcknowledged=0.", "ConnShutdownComplete",
                  "connection.c:1500"),
            _line("Indicating QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE", "IndicateConnectionShutdownComplete",
                  "connection.c:1520")]
    return "".join(out)


def test_what_the_log_leaves_uncertain_is_said_in_the_finding(tmp_path):
    path = tmp_path / "two-streams.log"
    path.write_text(_two_streams_log())
    status, out, _ = _run(str(path))
    assert status == 1
    assert out[0] == (f"{path}: LOST 1 of 1 accepted sends on client stream 4 (0xa2, connection 0xc1): 1 accepted, "
                      f"0 completions delivered (0 acked, 0 canceled), 1 discarded")
    notes = [line for line in out if line.startswith("  uncertain: ")]
    assert any("the SEND_COMPLETE line 20 was placed on this stream by context: the nearest line naming a stream "
               "with sends outstanding (line 19), among 2" in note for note in notes)
    assert any("StreamSend #1 was paired by nesting, among 2 open calls of the same function" in note
               for note in notes)
    assert out[-1].endswith("FAILED: 2 accepted, 1 completions (1 acked, 0 canceled), 0 refused, 1 discarded; "
                            "1 lost on 1 stream of 2; 1 completion lines placed on their stream by context")


def test_a_send_with_no_completion_line_at_all_is_found_by_subtraction(tmp_path):
    """MsQuic raising nothing at all for a send shows only in the count: accepted minus
    delivered. The discarded completion and its discard line are taken out of a real log."""
    name = "b-wait-buf1-run1"
    lines = _text(name).splitlines(keepends=True)
    last = _truth(name)["streams"][0]["log_send_complete_lines"][-1]["line"]
    path = tmp_path / "no-completion.log"
    path.write_text("".join(lines[: last - 1] + lines[last + 1:]))
    status, out, _ = _run(str(path))
    assert status == 1
    assert out[0].endswith("5 accepted, 4 completions delivered (3 acked, 1 canceled), 0 discarded")
    assert "  StreamSend #5 (line 1341): no SEND_COMPLETE line at all, and the stream was closed" in out
    assert out[-1].endswith("FAILED: 5 accepted, 4 completions (3 acked, 1 canceled), 0 refused, 0 discarded; "
                            "1 lost on 1 stream of 2")


def _many_streams_log(streams: int, lose_last: bool) -> str:
    """``streams`` streams open at once with two sends each, their completions interleaved
    (each after a worker line naming its stream); the last completion discarded, if asked."""
    out = [_line("[conn][0xc1] Created, IsServer=0, CorrelationId=0", "ConnCreated", "connection.c:87")]
    handles = [f"0x{0x100000 + i:x}" for i in range(streams)]
    for handle in handles:
        out += [_line("[ api] Enter 18 (0xc1).", "ApiEnter", "api.c:624"),
                _line(f"[strm][{handle}] Allocated, Conn=0xc1", "StreamAlloc", "stream.c:40"),
                _line("[ api] Exit 0", "ApiExitStatus", "api.c:671")]
        out += [_line(f"[ api] Enter 22 ({handle}).", "ApiEnter", "api.c:1013"),
                _line(f"[strm][{handle}] App queuing send [10 bytes, 1 buffers, 0x0 flags]", "StreamAppSend",
                      "api.c:1070"),
                _line("[ api] Exit 4294967294", "ApiExitStatus", "api.c:1189")] * 2
    for handle in handles * 2:
        out += [_line(f"[strm][{handle}] Writing frames to packet 1", "StreamWriteFrames", "stream_send.c:1107"),
                _line("Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [0x900]", "IndicateSendComplete", "stream_send.c:449")]
    if lose_last:
        out.append(_line("Event silently discarded", "EventSilentDiscard", "stream.c:469"))
    for handle in handles:
        out += [_line(f"[ api] Enter 19 ({handle}).", "ApiEnter", "api.c:694"), _line("[ api] Exit", "ApiExit", "api.c:784")]
    out += [_line("[conn][0xc1] Shutdown complete, PeerFailedToAcknowledged=0.", "ConnShutdownComplete", "connection.c:1"),
            _line("Indicating QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE", "IndicateConnectionShutdownComplete",
                  "connection.c:2")]
    return "".join(out)


@pytest.mark.parametrize("lose_last", [False, True])
def test_many_streams_at_once_are_placed_by_their_worker_lines(tmp_path, lose_last):
    path = tmp_path / "many.log"
    path.write_text(_many_streams_log(300, lose_last))
    status, out, _ = _run(str(path))
    summary = (f"600 accepted, {599 if lose_last else 600} completions ({599 if lose_last else 600} acked, "
               f"0 canceled), 0 refused, {int(lose_last)} discarded; {int(lose_last)} lost on {int(lose_last)} "
               f"stream{'' if lose_last else 's'} of 300; 599 completion lines placed on their stream by context")
    assert out[-1] == f"{path}: {'FAILED' if lose_last else 'ok'}: {summary}"
    assert status == int(lose_last)
    if lose_last:  # the stream the last worker line named: the last one
        assert out[0].startswith(f"{path}: LOST 1 of 2 accepted sends on client unstarted stream (0x10012b,")


def test_a_discarded_completion_goes_to_the_closed_stream_not_to_one_still_sending(tmp_path):
    """``Event silently discarded`` says the event's stream had no handler: only StreamClose
    takes it away. A real log's extra SEND_COMPLETE (raised after a StreamClose made inside
    a buffered SEND_COMPLETE) with another stream's send made outstanding just before it
    stays on the closed stream, and the other stream's send keeps its own completion."""
    name = "multi-buf1-run1"
    truth = _truth(name)
    ghost = truth["log"]["discarded_send_complete_lines"][0]  # 1959: no send of the application
    sending, closed = truth["streams"][0], truth["streams"][3]  # S1, and S4 (closed in its handler)
    send = [_line(f"[ api] Enter 22 ({sending['handle']}).", "ApiEnter", "api.c:1013"),
            _line(f"[strm][{sending['handle']}] App queuing send [10 bytes, 1 buffers, 0x0 flags]", "StreamAppSend",
                  "api.c:1070"),
            _line("[ api] Exit 4294967294", "ApiExitStatus", "api.c:1189")]
    done = [_line("Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [0x99]", "IndicateSendComplete", "stream_send.c:525")]
    path = _edited(tmp_path, name, lambda lines: lines[: ghost - 1] + send + lines[ghost - 1: ghost + 1] + done
                   + lines[ghost + 1:])
    judgment = read(str(path))
    streams = {j.stream.pointer: j for j in judgment.streams}
    s1, s4 = streams[sending["handle"]].counts, streams[closed["handle"]].counts
    assert (s1.accepted, s1.acked, s1.canceled, s1.lost) == (sending["sends_accepted"] + 1,
                                                             sending["completions_acked"] + 1, 1, 0)
    assert (s4.accepted, s4.acked, s4.canceled, s4.lost) == (2, 1, 1, 0)
    (extra,) = judgment.rebuilt.extra
    assert extra.line.number == ghost + 3 and extra.stream is not None and extra.stream.pointer == closed["handle"]
    assert extra.placed_by.startswith("'Event silently discarded' follows it, so its stream had no handler")
    status, out, _ = _run(str(path))
    (note,) = [line for line in out if ": NOTE " in line]
    assert f"line {ghost + 3}: Indicating QUIC_STREAM_EVENT_SEND_COMPLETE" in note
    assert f"({closed['handle']}, connection {closed['conn']}), whose 2 accepted sends had theirs already" in note
    assert "so the application was told nothing; not counted" in note
    assert any(line.startswith("  uncertain: its stream was placed by context: 'Event silently discarded'")
               for line in out)
    assert status == 1 and out[-1].endswith("; 1 extra completion line (no send owed)")


def test_the_lost_send_keeps_its_canceled_line_among_extra_ones():
    """A real log where StreamClose, made inside the first buffered SEND_COMPLETE of a stream,
    is followed by five extra completion lines (acked, each discarded) and then the canceled
    completion of the stream's second send: the canceled one is the lost send's, the five
    are extra. Matching in order alone took the first extra line for the lost send."""
    name = "multi-conns-buf1-run4"
    (closed,) = [s for s in _truth(name)["streams"] if s["lost_contexts"] == [42]]  # S4's B
    judgment = read(str(LOGS / f"{name}.log.gz"))
    (mine,) = [j for j in judgment.streams if j.stream.pointer == closed["handle"]]
    (lost,) = mine.lost
    extra = [x for x in judgment.rebuilt.extra if x.stream is mine.stream]
    assert len(extra) == 5
    assert lost.completion is not None and lost.completion.canceled
    assert lost.completion.line.number > max(x.line.number for x in extra)
    status, out, _ = _run(str(LOGS / f"{name}.log.gz"))
    assert f"  line {lost.completion.line.number}: Indicating QUIC_STREAM_EVENT_SEND_COMPLETE " \
           f"[{lost.completion.request}] (Canceled)  <- completes send #2 (canceled)" in out


def test_an_extra_completion_that_was_delivered_fails_the_log(tmp_path):
    """The same extra line without its discard: the application was told of a completion no
    send was owed (nothing had sends outstanding), and the log is not ok."""
    name = "multi-buf1-run1"
    ghost = _truth(name)["log"]["discarded_send_complete_lines"][0]
    path = _edited(tmp_path, name, lambda lines: lines[:ghost] + lines[ghost + 1:])
    status, out, _ = _run(str(path))
    assert status == 1
    assert f"{path}: UNPLACED line {ghost}: Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [" in "\n".join(out)


def _edited(tmp_path: Path, name: str, edit) -> Path:
    lines = _text(name).splitlines(keepends=True)
    path = tmp_path / f"{name}-edited.log"
    path.write_text("".join(edit(lines)))
    return path


def test_a_discard_a_line_away_from_its_indicating_line_is_taken_and_said(tmp_path):
    discard = _truth("d-close-buf1-run1")["streams"][0]["log_send_complete_lines"][-1]["line"] + 1  # 950
    other = "[conn][0x55e479c21100] Scheduling: 1 [ConnScheduleState:src/core/worker.c:232]\n"
    path = _edited(tmp_path, "d-close-buf1-run1", lambda lines: lines[: discard - 1] + [other] + lines[discard - 1:])
    status, out, _ = _run(str(path))
    assert status == 1 and any(": LOST 1 of 2 accepted sends" in line for line in out)
    assert ("  uncertain: 'Event silently discarded' at line 951 comes 1 lines after the Indicating line at 949: "
            "taken as that event's (another thread's lines may lie between)") in out


def test_a_discard_with_nothing_to_pair_with_is_noted(tmp_path):
    stray = "Event silently discarded [EventSilentDiscard:src/core/stream.c:469]\n"
    path = _edited(tmp_path, "a-buf1-run1", lambda lines: [lines[0], stray] + lines[1:])
    status, out, _ = _run(str(path))
    assert status == 0
    assert out[0] == f"{path}: NOTE line 2: Event silently discarded: no Indicating line before it to pair with"


def test_a_send_refused_with_out_of_memory_after_queuing_is_noted(tmp_path):
    exit_line = _truth("a-buf1-run1")["streams"][0]["log_streamsend_calls"][-1]["exit_line"]

    def edit(lines: list[str]) -> list[str]:
        assert lines[exit_line - 1].startswith("[ api] Exit 4294967294 ")
        lines[exit_line - 1] = lines[exit_line - 1].replace("Exit 4294967294", "Exit 12")
        return lines

    status, out, _ = _run(str(_edited(tmp_path, "a-buf1-run1", edit)))
    assert any(": NOTE StreamSend #4 on client stream 0" in line and "returned OUT_OF_MEMORY after 'App queuing "
               "send'" in line for line in out)
    # Counted as refused; its completion line is then one the ledger finds no send for.
    assert "3 accepted" in out[-1] and "1 refused" in out[-1] and status == 1


def test_to_trace_into_a_folder_is_one_line_and_status_2(tmp_path, capsys):
    assert cli_main(["check", "--msquic-log", str(LOGS / "a-buf1-run1.log.gz"), "--to-trace", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"quicsim: error: --to-trace {tmp_path}: is a folder, expected a file\n"


def test_a_never_started_stream_never_closed_loses_its_send_at_the_logs_end(tmp_path):
    """Program e without its StreamClose (lines 1416-1432): MsQuic cancels a never-started
    stream's sends only at StreamClose, so the connection's end does not settle them; the
    log's end does, as the ledger's teardown does."""
    path = _edited(tmp_path, "e-buf1-run1", lambda lines: lines[:1415] + lines[1432:])
    judgment = read(str(path))
    (leak,) = judgment.ledger.leaks
    assert leak["detected"] == "on a never-started stream whose handle was never closed"
    status, out, _ = _run(str(path))
    assert status == 1
    assert out[0].startswith(f"{path}: LOST 1 of 1 accepted sends on client unstarted stream (0x557cc45fb450,")
    assert "  StreamSend #1 (line 912): no SEND_COMPLETE line at all, and the log ends with the stream never closed" \
        in out
    # Cut before the connection's end instead, the same send is pending, not lost.
    cut = _edited(tmp_path, "e-buf1-run1", lambda lines: lines[:1415])
    status, out, _ = _run(str(cut))
    assert status == 1 and not any(": LOST " in line for line in out)
    assert any(": PENDING send #1 on client unstarted stream" in line for line in out)


@pytest.mark.parametrize("name", NAMES)
def test_the_json_verdict_carries_each_streams_counts_as_recorded(name, capsys):
    """--json: one object per log; each stream the application recorded appears with the
    counts it recorded, its lost sends by their order on the stream, and the verdict and
    exit status agree with the text report."""
    truth = _truth(name)
    status = cli_main(["check", "--msquic-log", str(LOGS / f"{name}.log.gz"), "--json"])
    out = capsys.readouterr().out
    (line,) = out.splitlines()  # one JSON object, nothing else on stdout
    verdict = json.loads(line)
    by_stream = {(s["handle"], s["allocated_line"]): s for s in verdict["streams"]}
    for expected in truth["streams"]:
        if not expected["send_calls"]:  # (the JSON lists the streams that made StreamSend calls)
            assert (expected["handle"], expected["allocated_line"]) not in by_stream
            continue
        mine = by_stream.pop((expected["handle"], expected["allocated_line"]))
        counts = mine["counts"]
        assert (counts["accepted"], counts["refused"], counts["acked"], counts["canceled"], counts["lost"]) == (
            expected["sends_accepted"], expected["sends_refused"], expected["completions_acked"],
            expected["completions_canceled"], expected["sends_lost"])
        contexts = [call["ctx"] for call in expected["send_calls"]]
        assert [contexts[index - 1] for index in mine["lost"]] == expected["lost_contexts"]
        assert (mine["lines"] != []) == (expected["sends_lost"] > 0)  # a loss shows its lines
    assert by_stream == {}  # no stream with sends the application did not record
    lost = sum(s["sends_lost"] for s in truth["streams"])
    assert verdict["totals"]["lost"] == lost and verdict["verdict"] == ("FAILED" if lost else "ok")
    assert status == (1 if lost else 0)
    assert verdict["report"][-1].startswith(f"{verdict['file']}: {verdict['verdict']}: ")


def test_json_needs_a_log(capsys):
    assert cli_main(["check", "--json", "run.jsonl"]) == 2
    assert capsys.readouterr().err.strip() == "quicsim check: --json needs --msquic-log FILE"

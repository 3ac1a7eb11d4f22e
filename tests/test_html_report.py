"""The trace, `quicsim explain` and the HTML report name a leaked send and the shutdown
it raced with; the report loads in a real headless browser with no console errors."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quicsim.explain import analyze, explain_text, load_trace
from quicsim.loader import UsageError, load_scenarios
from quicsim.report_html import write_report
from quicsim.runner import RunOptions, run_job

REPO = Path(__file__).resolve().parent.parent
FAULT = REPO / "scenarios" / "fault_drop_send_after_shutdown.py"


@pytest.fixture(scope="module")
def fault_trace(tmp_path_factory) -> Path:
    spec = load_scenarios([str(FAULT)])[0]
    result = run_job(spec, spec.seed, RunOptions(trace_dir=str(tmp_path_factory.mktemp("trace")),
                                                 transport="memory"))
    return Path(result["trace"])


def test_trace_names_the_leak_and_the_race(fault_trace):
    text = fault_trace.read_text()
    assert '"kind": "leak"' in text and "'req-late'" in text
    assert '"kind": "fault", "name": "drop-send-after-shutdown"' in text
    assert '"name": "shutdown"' in text and '"flags": "GRACEFUL"' in text
    assert '"kind": "queued", "name": "send"' in text and '"range": [0, 1000]' in text


def test_explain_puts_the_leak_first_with_its_race(fault_trace):
    out = explain_text(analyze(load_trace(fault_trace), str(fault_trace)))
    lines = out.splitlines()
    leak_line = next(i for i, line in enumerate(lines) if line.startswith("LEAK"))
    assert "client_context='req-late'" in lines[leak_line] and "client stream 0" in lines[leak_line]
    assert any("raced with: shutdown(GRACEFUL)" in line for line in lines)
    assert leak_line < next(i for i, line in enumerate(lines) if "'req-0'" in line)
    only = explain_text(analyze(load_trace(fault_trace), str(fault_trace)), send="client:4")
    assert "req-late" in only and not re.search(r"^  send 1 ", only, re.M)  # the other sends are left out


def test_explain_command_and_bad_trace(fault_trace, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "quicsim", "explain", str(fault_trace), "--html",
                           str(tmp_path / "r.html")], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1 and "LEAK" in proc.stdout and (tmp_path / "r.html").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "call", "t": 0}\nnot json\n')
    proc = subprocess.run([sys.executable, "-m", "quicsim", "explain", str(bad)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2 and f"{bad}:2: not a JSON trace line" in proc.stderr
    with pytest.raises(UsageError):
        load_trace(tmp_path / "missing.jsonl")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here: .ci/run installs Debian's chromium package; "
                "without it the browser check cannot run")


#: Run in the page after the report's own script: counts marks a LEAK label overlaps.
OVERLAP_PROBE = """<script>
var n = 0;
document.querySelectorAll('.m.leakmark').forEach(function (label) {
  var a = label.getBoundingClientRect();
  label.parentElement.querySelectorAll('.m:not(.leakmark)').forEach(function (m) {
    var b = m.getBoundingClientRect();
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) { n++; }
  });
});
document.body.setAttribute('data-leak-overlaps', String(n));
var causes = [];
document.querySelectorAll('.leak .cause').forEach(function (c) {
  if (c.getBoundingClientRect().height > 0) { causes.push(c.innerText); }
});
document.body.setAttribute('data-visible-causes', causes.join(' | '));
</script>"""

LATE = """
from quicsim import scenario, StreamShutdownFlags

@scenario(transport="memory")
async def late(ctx):
    s = ctx.client.open_stream()
    s.start()
    s.send(b"x" * 1000, client_context="req-0")
    await ctx.sleep(0)
    s.shutdown(StreamShutdownFlags.GRACEFUL)
    s.send(b"late", client_context="req-late")
    await s.wait_shutdown_complete(timeout=5)
"""


@pytest.fixture(scope="module")
def unexpected_leak_trace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("unexpected")
    (folder / "late.py").write_text(LATE)
    spec = load_scenarios([str(folder / "late.py")])[0]
    result = run_job(spec, 1, RunOptions(trace_dir=str(folder), faults=frozenset({"drop-send-after-shutdown"})))
    assert not result["passed"] and result["leaks"]
    return Path(result["trace"])


def _browser_dom(report: Path, tmp_path: Path) -> str:
    page = tmp_path / "probed.html"
    page.write_text(report.read_text().replace("</body>", OVERLAP_PROBE + "</body>"))
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,900", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert 'data-ready="1"' in proc.stdout, "the page's script ran"
    return proc.stdout.replace("&#x27;", "'")


def test_report_in_a_real_browser(fault_trace, tmp_path):
    report = write_report(tmp_path / "report.html", [analyze(load_trace(fault_trace), str(fault_trace))])
    source = report.read_text()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', source), "the report fetches nothing"
    dom = _browser_dom(report, tmp_path)
    # the fault scenario expects its leak: shown as expected, as the terminal says it
    leak = re.search(r'<div class="leak expected" data-client-context="([^"]+)"><b>EXPECTED LEAK</b>', dom)
    assert leak and "req-late" in leak.group(1)
    assert "result: expected leak caught" in dom and "FAILED" not in dom
    assert 'class="bad"' not in dom and "leaks: 1 (expected)" in dom and "failed: 0" in dom
    assert re.search(r'class="m leakmark expected"[^>]*>LEAK \'req-late\'</div>', dom)
    assert 'data-leak-overlaps="0"' in dom, "the LEAK label covers marks of its lane"
    # the cause is on the page, not only in a hover title
    causes = re.search(r'data-visible-causes="([^"]*)"', dom).group(1)
    assert "cause: injected fault drop-send-after-shutdown: send client:4 dropped" in causes


def test_report_shows_an_unexpected_leak_as_a_failure(unexpected_leak_trace, tmp_path):
    report = write_report(tmp_path / "report.html",
                          [analyze(load_trace(unexpected_leak_trace), str(unexpected_leak_trace))])
    dom = _browser_dom(report, tmp_path)
    assert re.search(r'<div class="leak" data-client-context="\'req-late\'"><b>LEAK</b>', dom)
    assert "result: FAILED" in dom and '<span class="bad">leaks: 1</span>' in dom
    assert "failed: 1" in dom and "leaks: 1 (1 not expected)" in dom
    assert re.search(r'class="m leakmark"[^>]*>LEAK \'req-late\'</div>', dom)
    assert 'data-leak-overlaps="0"' in dom


REENTRANT = REPO / "scenarios" / "msquic_4307_reentrant_close.py"


@pytest.fixture(scope="module")
def reentrant_report(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("reentrant")
    spec = load_scenarios([str(REENTRANT)])[0]
    result = run_job(spec, spec.seed, RunOptions(trace_dir=str(folder), transport="memory"))
    assert result["passed"] and result["leaks"], result
    trace = Path(result["trace"])
    return write_report(folder / "report.html", [analyze(load_trace(trace), str(trace))]).read_text()


def _leak_box(page: str) -> str:
    box = re.search(r'<div class="leak[^"]*" data-client-context="[^"]*">(.*?)</div></div>', page)
    assert box, page[:2000]
    return html.unescape(re.sub(r"<[^>]+>", "", box.group(1)))


def test_the_leak_box_names_the_close_from_the_handler_not_the_shutdown(reentrant_report):
    """reentrant-close: the lost send C raced with the close() B's SEND_COMPLETE handler made
    (which detached the handler), not with the graceful shutdown before it; the box says so
    in its text, with the fault that fired and the discarded completion."""
    box = _leak_box(reentrant_report)
    assert "client_context='C'" in box
    assert "raced with close() from the handler of SEND_COMPLETE client_context='B'" in box
    assert "shutdown(GRACEFUL)" not in box
    assert "cause: injected fault reentrant-close: 1 send(s) of a detached batch left to a closed handle" in box
    assert "its SEND_COMPLETE (canceled=True) was discarded" in box


def test_the_legend_explains_every_mark_drawn(reentrant_report, fault_trace, tmp_path):
    """Each kind of mark a report draws has its legend entry: the fault marks and the
    discarded completion too."""
    other = write_report(tmp_path / "drop.html", [analyze(load_trace(fault_trace), str(fault_trace))]).read_text()
    for page in (reentrant_report, other):
        legend = html.unescape(re.search(r'<div class="legend">(.*?)</div>', page).group(1))
        drawn = set(re.findall(r'<div class="m ([a-z]+)[ "]', page)) - {"leakmark"}
        explained = {"call": "call", "queued": "send queued", "event": "event", "acked": "SEND_COMPLETE acked",
                     "canceled": "canceled", "shutdown": "shutdown", "drop": "datagram dropped",
                     "preempt": "preemption point", "fault": "injected fault fired",
                     "discard": "event discarded (no handler)"}
        assert drawn - explained.keys() == set(), drawn
        for cls in drawn:
            assert explained[cls] in legend, (cls, legend)
    assert "discard" in set(re.findall(r'<div class="m ([a-z]+)[ "]', reentrant_report))
    assert "fault" in set(re.findall(r'<div class="m ([a-z]+)[ "]', reentrant_report))


def test_explain_names_the_cause_too(tmp_path):
    spec = load_scenarios([str(REENTRANT)])[0]
    result = run_job(spec, spec.seed, RunOptions(trace_dir=str(tmp_path), transport="memory"))
    out = explain_text(analyze(load_trace(result["trace"]), result["trace"]))
    assert "  cause     injected fault reentrant-close" in out
    assert "raced with: close() from the handler of SEND_COMPLETE client_context='B'" in out

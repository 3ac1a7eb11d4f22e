"""A self-contained HTML report: per run, the ledger summary, the leaked sends (red) with
their cause (the fault that fired, the close that left a completion nowhere to go) and the
call each raced with, and a swimlane timeline per connection and stream (calls,
completions, shutdown events, datagram drops). No network fetches: CSS and JS are inline."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .explain import Analysis, call_text, describe, when

CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 6px}
.summary{display:flex;gap:18px;flex-wrap:wrap;margin:6px 0}
.summary span{background:#fff;border:1px solid #ddd;border-radius:4px;padding:3px 8px}
.summary .bad{background:#fde8e8;border-color:#e53935;color:#b71c1c;font-weight:600}
.summary .expected{background:#fff8e1;border-color:#f9a825;color:#8d6e00}
.summary .good{background:#e8f5e9;border-color:#43a047;color:#1b5e20}
.leak.expected{background:#fff8e1;border-left-color:#f9a825} .leak.expected b{color:#8d6e00}
.leak{background:#fde8e8;border-left:4px solid #e53935;padding:6px 10px;margin:6px 0;font-family:monospace}
.leak b{color:#b71c1c}
.violation{background:#fff3e0;border-left:4px solid #fb8c00;padding:6px 10px;margin:4px 0;font-family:monospace}
.lanes{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px 0;overflow-x:auto}
.lane{position:relative;height:22px;border-bottom:1px dotted #eee;margin-left:190px;min-width:900px}
.lane .name{position:absolute;left:-186px;width:180px;text-align:right;font-family:monospace;font-size:11px;
 color:#555;white-space:nowrap;overflow:hidden;top:3px}
.m{position:absolute;top:5px;width:8px;height:12px;margin-left:-4px;border-radius:2px;cursor:pointer;opacity:.85}
.m.call{background:#1e88e5;width:4px;margin-left:-2px}
.m.queued{background:#90caf9;width:3px}
.m.event{background:#43a047;border-radius:50%;width:9px;height:9px;top:6px}
.m.acked{background:#2e7d32}
.m.canceled{background:#fb8c00}
.m.shutdown{background:#8e24aa;width:4px;height:18px;top:2px}
.m.drop{background:#757575;width:2px}
.m.fault{background:#000;width:6px}
.m.discard{background:#fff;border:2px solid #b71c1c;width:6px;height:8px;border-radius:0}
.leak .cause{margin-top:3px;font-family:system-ui,sans-serif;color:#333}
.m.preempt{background:#00acc1;width:3px;height:18px;top:2px}
.lane.tall{height:40px}
.m.leakmark{background:#e53935;width:auto;height:14px;top:21px;margin-left:0;padding:0 4px;color:#fff;
 font-size:10px;line-height:14px;white-space:nowrap;opacity:1;z-index:2;border-top-left-radius:0}
.m.leakmark.expected{background:#f9a825;color:#222}
.axis{margin-left:190px;min-width:900px;position:relative;height:16px;font-size:10px;color:#888}
.axis span{position:absolute}
#tip{position:fixed;display:none;background:#263238;color:#fff;padding:6px 8px;border-radius:4px;
 font:11px monospace;max-width:600px;white-space:pre-wrap;z-index:10;pointer-events:none}
.legend span{margin-right:12px} .legend i{display:inline-block;width:10px;height:10px;margin-right:4px;
 vertical-align:middle;border-radius:2px}
"""

JS = """
(function(){
  var tip=document.getElementById('tip');
  document.querySelectorAll('.m').forEach(function(el){
    el.addEventListener('mouseenter',function(e){tip.textContent=el.getAttribute('data-info');
      tip.style.display='block';});
    el.addEventListener('mousemove',function(e){tip.style.left=(e.clientX+12)+'px';
      tip.style.top=(e.clientY+12)+'px';});
    el.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
  document.body.setAttribute('data-ready','1');
})();
"""

MAX_MARKERS = 20000


def _marker_class(r: dict[str, Any]) -> str | None:
    kind, name = r["kind"], r.get("name", "")
    if kind == "call":
        return "shutdown" if name in ("shutdown", "close", "connection_shutdown") else "call"
    if kind == "queued":
        return "queued"
    if kind in ("preempt", "window"):
        return "preempt"
    if kind == "event":
        if name == "SEND_COMPLETE":
            return "canceled" if r.get("canceled") else "acked"
        return "shutdown" if "SHUTDOWN" in name else "event"
    if kind == "conn_event":
        return "shutdown" if "SHUTDOWN" in name else "event"
    if kind == "datagram" and name != "forward":
        return "drop"
    if kind in ("fault", "network"):
        return "fault"
    if kind == "discarded":
        return "discard"
    return None


def _lane_key(r: dict[str, Any]) -> str | None:
    if r["kind"] in ("datagram", "network"):
        return f"network {r.get('direction', '')}".strip()
    if "conn" not in r:
        return None
    if r.get("stream_handle") is None:
        return f"{r['conn']} connection"
    return f"{r['conn']} stream {r['stream_handle']}"


def _expected(analysis: Analysis, what: str) -> bool:
    """The run was meant to show ``what`` ("leak" / "violation") and did: not a failure."""
    return analysis.expect == what and analysis.passed is True


def _count(label: str, n: int, expected: bool) -> str:
    if not n:
        return f"<span>{label}: 0</span>"
    if expected:
        return f'<span class="expected">{label}: {n} (expected)</span>'
    return f'<span class="bad">{label}: {n}</span>'


def _run_section(analysis: Analysis, index: int) -> str:
    s = analysis.summary()
    parts = [f"<h2>{html.escape(Path(analysis.path).name if analysis.path.endswith('.jsonl') else analysis.path or f'run {index}')}</h2>"]
    leak_expected = _expected(analysis, "leak")
    verdict = analysis.verdict
    parts.append('<div class="summary">'
                 f"<span>sends accepted: {s['sends']}</span>"
                 f"<span>completions: {s['completions']} ({s['acked']} acked / {s['canceled']} canceled)</span>"
                 f"<span>rejected: {s['rejected']}</span>"
                 + _count("leaks", s["leaks"], leak_expected)
                 + _count("violations", s["violations"], _expected(analysis, "violation"))
                 + f'<span class="verdict {"bad" if verdict == "FAILED" else "good"}">result: {html.escape(verdict)}'
                 "</span></div>")
    leak_class = "leak expected" if leak_expected else "leak"
    leak_word = "EXPECTED LEAK" if leak_expected else "LEAK"
    for life in analysis.leaks:
        raced = ""
        if life.raced_with is not None:
            r = life.raced_with
            raced = f"; raced with {html.escape(call_text(r))} at {when(r)}"
        cause = (f'<div class="cause">cause: {html.escape(life.cause)}</div>' if life.cause is not None else "")
        parts.append(f'<div class="{leak_class}" data-client-context="{html.escape(life.client_context)}">'
                     f"<b>{leak_word}</b> send {life.key} client_context=<b>{html.escape(life.client_context)}</b> "
                     f"on {html.escape(life.conn)} stream {html.escape(life.stream_name)} "
                     f"({life.bytes} bytes) accepted at {life.at(life.accepted_t)}, never completed "
                     f"({html.escape(str((life.leak or {}).get('detected', '')))}){raced}{cause}</div>")
    for text in analysis.violations:
        parts.append(f'<div class="violation">VIOLATION {html.escape(text)}</div>')
    records = [r for r in analysis.records if "t" in r]
    if not records:
        return "".join(parts)
    t0 = min(r["t"] for r in records)
    t1 = max(r["t"] for r in records)
    span = (t1 - t0) or 1.0
    lanes: dict[str, list[str]] = {}
    count = 0
    for r in records:
        cls = _marker_class(r)
        lane = _lane_key(r)
        if cls is None or lane is None or count >= MAX_MARKERS:
            continue
        count += 1
        left = (r["t"] - t0) / span * 100
        info = html.escape(describe(r), quote=True)
        lanes.setdefault(lane, []).append(f'<div class="m {cls}" style="left:{left:.3f}%" data-info="{info}" '
                                          f'title="{info}"></div>')
    tall: set[str] = set()
    for life in analysis.leaks:
        lane = f"{life.conn} stream {life.stream_handle}"
        tall.add(lane)
        left = (life.accepted_t - t0) / span * 100
        # drawn below the lane's marks, starting at the send: it must not hide the race it explains
        lanes.setdefault(lane, []).append(
            f'<div class="m leakmark{" expected" if leak_expected else ""}" style="left:{left:.3f}%" '
            f'data-client-context="{html.escape(life.client_context)}"'
            f' data-info="{"EXPECTED " if leak_expected else ""}LEAKED send {life.key} '
            f'{html.escape(life.client_context)}">'
            f"LEAK {html.escape(life.client_context)}</div>")
    stream_names = {}
    for r in records:
        if r.get("stream_handle") is not None and r.get("stream_id") is not None and "conn" in r:
            stream_names[f"{r['conn']} stream {r['stream_handle']}"] = f"{r['conn']} stream {r['stream_id']}"
    parts.append('<div class="legend"><span><i style="background:#1e88e5"></i>call</span>'
                 '<span><i style="background:#90caf9"></i>send queued (handed to the transport)</span>'
                 '<span><i style="background:#43a047"></i>event</span>'
                 '<span><i style="background:#2e7d32"></i>SEND_COMPLETE acked</span>'
                 '<span><i style="background:#fb8c00"></i>canceled</span>'
                 '<span><i style="background:#8e24aa"></i>shutdown</span>'
                 '<span><i style="background:#757575"></i>datagram dropped/delayed</span>'
                 '<span><i style="background:#000"></i>injected fault fired / network change</span>'
                 '<span><i style="background:#fff;border:2px solid #b71c1c;width:6px;height:6px"></i>'
                 'event discarded (no handler)</span>'
                 '<span><i style="background:#00acc1"></i>worker ran at a preemption point '
                 '(and the network, in a window)</span>'
                 '<span><i style="background:#e53935"></i>leak</span>'
                 '<span><i style="background:#f9a825"></i>expected leak</span></div>')
    parts.append('<div class="lanes">')
    # a trace rebuilt from a MsQuic log counts its lines, not seconds (the log has no clock)
    by_line = analysis.by_line
    ticks = "".join(f'<span style="left:{p}%">'
                    + (f"line {t0 + span * p / 100:.0f}" if by_line else f"{t0 + span * p / 100:.3f}s") + "</span>"
                    for p in (0, 25, 50, 75, 95))
    parts.append(f'<div class="axis">{ticks}</div>')
    for lane in sorted(lanes, key=lambda k: (k.startswith("network"), k)):
        label = stream_names.get(lane, lane)
        parts.append(f'<div class="lane{" tall" if lane in tall else ""}"><span class="name" title="{html.escape(label)}">{html.escape(label)}</span>'
                     + "".join(lanes[lane]) + "</div>")
    parts.append("</div>")
    if count >= MAX_MARKERS:
        parts.append(f"<p>Only the first {MAX_MARKERS} records are drawn.</p>")
    return "".join(parts)


def render_report(analyses: list[Analysis], title: str = "quicsim report") -> str:
    total = {"leaks": 0, "violations": 0, "sends": 0, "completions": 0}
    unexpected = {"leaks": 0, "violations": 0}
    for a in analyses:
        s = a.summary()
        for key in total:
            total[key] += s[key]
        unexpected["leaks"] += 0 if _expected(a, "leak") else s["leaks"]
        unexpected["violations"] += 0 if _expected(a, "violation") else s["violations"]
    failed = sum(1 for a in analyses if a.verdict == "FAILED")

    def count(key: str) -> str:
        n, bad = total[key], unexpected[key]
        if not n:
            return f"<span>{key}: 0</span>"
        if not bad:
            return f'<span class="expected">{key}: {n} (all expected)</span>'
        return f'<span class="bad">{key}: {n} ({bad} not expected)</span>'

    head = (f'<h1>{html.escape(title)}</h1><div class="summary"><span>runs: {len(analyses)}</span>'
            f'<span class="{"bad" if failed else "good"}">failed: {failed}</span>'
            f"<span>sends: {total['sends']}</span><span>completions: {total['completions']}</span>"
            + count("leaks") + count("violations") + "</div>")
    body = head + "".join(_run_section(a, i) for i, a in enumerate(analyses, 1))
    data = json.dumps({"runs": len(analyses), **total})
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>"
            f"<style>{CSS}</style></head><body data-summary='{html.escape(data)}'>{body}"
            f"<div id=\"tip\"></div><script>{JS}</script></body></html>")


def write_report(path: str | Path, analyses: list[Analysis], title: str = "quicsim report") -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(analyses, title), encoding="utf-8")
    return out

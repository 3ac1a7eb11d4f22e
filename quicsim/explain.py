"""Read a JSON Lines trace and tell the life of each send: accepted -> handed to the
transport -> completed (acknowledged or canceled) or leaked, leaks first, each with its cause
as far as the trace tells (the fault that fired, the close that left its completion nowhere to
go), the call it raced with and what happened on its stream around the time it was accepted."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .send_order import send_name
from .errors import BadTraceLine
from .trace import json_records


@dataclass
class SendLife:
    conn: str
    send_id: int
    stream_handle: int | None
    stream_id: int | None
    client_context: str
    bytes: int
    flags: object
    status: str
    accepted_t: float
    accepted_index: int
    queued_t: float | None = None
    range: list[Any] | None = None
    complete_t: float | None = None
    canceled: bool | None = None
    leak: dict[str, Any] | None = None
    raced_with: dict[str, Any] | None = None
    #: why it leaked, as far as the trace tells: the injected fault that fired on its stream,
    #: the StreamClose that detached the handler, its discarded SEND_COMPLETE
    fault: dict[str, Any] | None = None
    closed_by: dict[str, Any] | None = None
    discarded: dict[str, Any] | None = None
    context: list[dict[str, Any]] = field(default_factory=list)
    #: its times are log line numbers (a trace rebuilt from MsQuic's log, which has no clock)
    by_line: bool = False

    def at(self, t: float) -> str:
        """A time of this send's, as the trace counts it."""
        return f"line {int(t)}" if self.by_line else f"t={t:.6f}"

    @property
    def cause(self) -> str | None:
        """The leak's cause in one line, or None when the trace shows none."""
        parts = []
        if self.fault is not None:
            parts.append(f"injected fault {self.fault.get('name')}: {self.fault.get('what', '')}".rstrip(": "))
        if self.closed_by is not None:
            parts.append(f"{call_text(self.closed_by)} at {when(self.closed_by)} detached the stream's handler")
        if self.discarded is not None:
            parts.append(f"its SEND_COMPLETE (canceled={self.discarded.get('canceled')}) was discarded "
                         f"at {when(self.discarded)}: no handler was left to deliver it to")
        return "; ".join(parts) or None

    @property
    def key(self) -> str:
        return send_name(self.conn, self.send_id)

    @property
    def stream_name(self) -> str:
        return str(self.stream_id) if self.stream_id is not None else f"handle={self.stream_handle} (unstarted)"


@dataclass
class Analysis:
    path: str
    records: list[dict[str, Any]]
    sends: list[SendLife]
    leaks: list[SendLife]
    violations: list[str]
    errors: list[str]
    #: what the run was expected to show ("ok", "leak", "violation") and whether it met that:
    #: from the runner's verdict record, absent from traces of other code (then "ok", None)
    expect: str = "ok"
    passed: bool | None = None
    #: its times are log line numbers: rebuilt from a MsQuic log (quicsim.msquic_log), which has no clock
    by_line: bool = False

    @property
    def verdict(self) -> str:
        """The run's outcome in the words of ``quicsim run``'s table."""
        if self.passed is None:
            return "ok" if not self.leaks and not self.violations else "FAILED"
        if not self.passed:
            return "FAILED"
        return "pass" if self.expect == "ok" else f"expected {self.expect} caught"

    def summary(self) -> dict[str, Any]:
        accepted = [s for s in self.sends if s.status == "PENDING"]
        done = [s for s in accepted if s.complete_t is not None]
        return {
            "sends": len(accepted),
            "rejected": len(self.sends) - len(accepted),
            "completions": len(done),
            "acked": sum(1 for s in done if not s.canceled),
            "canceled": sum(1 for s in done if s.canceled),
            "leaks": len(self.leaks),
            "violations": len(self.violations),
        }


def load_trace(path: str | Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read trace ({exc.strerror})") from None
    try:
        for number, record in json_records(lines):
            if "kind" not in record:
                raise UsageError(f"{path}:{number}: not a quicsim trace record")
            records.append(record)
    except BadTraceLine as exc:
        what = f"not a JSON trace line ({exc.json_error})" if exc.json_error else "not a quicsim trace record"
        raise UsageError(f"{path}:{exc.number}: {what}") from None
    if not records:
        raise UsageError(f"{path}: empty trace")
    return records


def _is_shutdown_like(r: dict[str, Any]) -> bool:
    if r["kind"] == "call" and r["name"] in ("shutdown", "close", "connection_shutdown"):
        return True
    return r["kind"] == "call" and r["name"] == "send" and "FIN" in str(r.get("flags", ""))


def when(r: dict[str, Any]) -> str:
    """When a record happened: its time, or its line in the MsQuic log it was rebuilt from."""
    return f"line {r['log_line']}" if "log_line" in r else f"t={r['t']:.6f}"


def call_text(r: dict[str, Any]) -> str:
    """A call record as the application wrote it: ``close()``, ``shutdown(GRACEFUL)``, and
    the handler it was made from."""
    flags = r.get("flags")
    text = f"{r.get('name')}({flags if flags not in (None, 'NONE') else ''})"
    if r.get("in_handler"):
        text += f" from the handler of {r['in_handler']}"
    return text


def _find_cause(life: SendLife, records: list[dict[str, Any]], indices: list[int]) -> None:
    """Fill ``life``'s cause from its stream's records: the fault that fired (the one that
    names the send, else the stream's first), its discarded SEND_COMPLETE and the last
    StreamClose before that discard."""
    named = re.compile(rf"\bsends? (?:{re.escape(life.conn)}:)?{life.send_id}\b")
    faults = [records[i] for i in indices if records[i]["kind"] == "fault"]
    if not faults:  # a fault of the connection (no stream named)
        faults = [r for r in records if r["kind"] == "fault" and r.get("conn") == life.conn
                  and r.get("stream_handle") is None]
    life.fault = next((r for r in faults if named.search(str(r.get("what", "")))), faults[0] if faults else None)
    for i in indices:
        r = records[i]
        if r["kind"] == "discarded" and r.get("name") == "SEND_COMPLETE" and r.get("send_id") == life.send_id:
            life.discarded = r
            closes = [records[j] for j in indices if j < i and records[j]["kind"] == "call"
                      and records[j].get("name") == "close"]
            life.closed_by = closes[-1] if closes else None
            break


def analyze(records: list[dict[str, Any]], path: str = "") -> Analysis:
    sends: dict[str, SendLife] = {}
    by_line = any(r["kind"] == "source" and r.get("name") == "msquic-log" for r in records)
    by_stream: dict[tuple[Any, ...], list[int]] = {}
    stream_ids: dict[tuple[Any, ...], int] = {}
    for index, r in enumerate(records):
        if "stream_handle" in r and "conn" in r:
            by_stream.setdefault((r["conn"], r["stream_handle"]), []).append(index)
        kind, name = r["kind"], r.get("name")
        if kind == "call" and name == "send":
            life = SendLife(r["conn"], r["send_id"], r.get("stream_handle"), r.get("stream_id"),
                            r.get("client_context", "?"), r.get("bytes", 0), r.get("flags"), r.get("status", "?"),
                            r["t"], index, by_line=by_line)
            sends[life.key] = life
        elif kind == "queued" and name == "send":
            queued = sends.get(f"{r['conn']}:{r['send_id']}")
            if queued is not None:
                queued.queued_t, queued.range = r["t"], r["range"]
                queued.stream_id = r.get("stream_id", queued.stream_id)
        elif kind == "event" and name == "SEND_COMPLETE":
            completed = sends.get(f"{r['conn']}:{r.get('send_id')}")
            if completed is not None:
                completed.complete_t, completed.canceled = r["t"], r.get("canceled")
        if r.get("stream_id") is not None and "stream_handle" in r and "conn" in r:
            stream_ids[(r["conn"], r["stream_handle"])] = r["stream_id"]
    for life in sends.values():
        if life.stream_id is None:
            life.stream_id = stream_ids.get((life.conn, life.stream_handle))
    leaks = []
    for r in records:
        if r["kind"] == "leak":
            leaked = sends.get(f"{r['connection']}:{r['send_id']}")
            if leaked is not None:
                leaked.leak = r
                leaks.append(leaked)
    for life in leaks:
        indices = by_stream.get((life.conn, life.stream_handle), [])
        _find_cause(life, records, indices)
        nearby = [records[i] for i in indices if i != life.accepted_index]
        shutdowns = [r for r in nearby if _is_shutdown_like(r)]
        conn_shutdowns = [r for r in records if r["kind"] == "call" and r.get("name") == "connection_shutdown"
                          and r.get("conn") == life.conn]
        candidates = shutdowns or conn_shutdowns
        if life.closed_by is not None:
            life.raced_with = life.closed_by  # the close that left its completion nowhere to go
        elif candidates:
            life.raced_with = min(candidates, key=lambda r: abs(r["t"] - life.accepted_t))
        before = [records[i] for i in indices if i < life.accepted_index][-6:]
        after = [records[i] for i in indices if i > life.accepted_index][:8]
        life.context = before + [records[life.accepted_index]] + after
        life.context += [r for r in conn_shutdowns if r not in life.context]
        life.context.sort(key=lambda r: r["t"])
    violations = [r.get("text", "") for r in records if r["kind"] == "violation"]
    errors = [r.get("text", "") for r in records if r["kind"] == "error"]
    verdict = next((r for r in records if r["kind"] == "verdict"), None)
    return Analysis(path, records, list(sends.values()), leaks, violations, errors,
                    expect=verdict.get("expect", "ok") if verdict else "ok",
                    passed=verdict.get("passed") if verdict else None, by_line=by_line)


def describe(r: dict[str, Any]) -> str:
    """One trace record as a short line."""
    where = f"{r.get('conn', '')} stream {r.get('stream_id', '-')}" if "conn" in r else "network"
    stamp = f"line {r['log_line']:>5}" if "log_line" in r else f"{r['t']:9.6f}"
    if r["kind"] == "preempt":
        return f"{stamp}  {where:<18} {'preempt':<10} worker ran right after this {r.get('name')} call"
    if r["kind"] == "window":
        return (f"{stamp}  {where:<18} {'window':<10} the network ran {r.get('ms')} ms inside this "
                f"{r.get('name')} call: {r.get('to_server', 0)} datagrams to the server, "
                f"{r.get('to_client', 0)} to the client, {r.get('timers', 0)} timers")
    skip = {"kind", "name", "t", "side", "conn", "cid", "stream_id", "stream_handle", "log_line"}
    fields = " ".join(f"{k}={v}" for k, v in r.items() if k not in skip)
    return f"{stamp}  {where:<18} {r['kind']:<10} {r.get('name', ''):<24} {fields}"


def _life_lines(life: SendLife) -> list[str]:
    lines = [f"send {life.key} on {life.conn} stream {life.stream_name}, client_context={life.client_context}, "
             f"{life.bytes} bytes, flags={life.flags}"]
    lines.append(f"  accepted  {life.at(life.accepted_t)} -> {life.status}")
    if life.status != "PENDING":
        lines.append("  rejected: no SEND_COMPLETE is owed")
        return lines
    if life.queued_t is not None and life.range is not None:
        lines.append(f"  queued    {life.at(life.queued_t)} bytes [{life.range[0]}, {life.range[1]}) handed to the transport")
    if life.complete_t is not None:
        lines.append(f"  complete  {life.at(life.complete_t)} SEND_COMPLETE canceled={life.canceled}")
    elif life.leak is not None:
        lines.append(f"  LEAKED    no SEND_COMPLETE; detected {life.leak.get('detected', '')}")
        if life.cause is not None:
            lines.append(f"  cause     {life.cause}")
    else:
        lines.append("  pending   no SEND_COMPLETE yet when the trace ends")
    return lines


def explain_text(analysis: Analysis, send: str | None = None) -> str:
    s = analysis.summary()
    out = [f"trace {analysis.path}: {s['sends']} sends accepted, {s['completions']} completed "
           f"({s['acked']} acked, {s['canceled']} canceled), {s['rejected']} rejected, {s['leaks']} LEAKED, "
           f"{s['violations']} violations"]
    preempts = sum(1 for r in analysis.records if r["kind"] == "preempt")
    if preempts:
        windows = sum(1 for r in analysis.records if r["kind"] == "window")
        out.append(f"the worker ran at {preempts} preemption point(s) (Settings.preempt): "
                   f"'preempt' lines show where"
                   + (f"; {windows} let the network in ('window' lines)" if windows else ""))
    lives = analysis.sends
    if send is not None:
        lives = [life for life in lives if life.key == send or str(life.send_id) == send]
        if not lives:
            raise UsageError(f"--send {send}: no such send in {analysis.path}")
    leaked = [life for life in lives if life.leak is not None]
    for life in leaked:
        out.append("")
        out.append("LEAK " + _life_lines(life)[0])
        out += _life_lines(life)[1:]
        if life.raced_with is not None:
            r = life.raced_with
            out.append(f"  raced with: {call_text(r)} on {r['conn']} at {when(r)} -> {r.get('status')}")
        out.append("  around it on that stream:")
        out += ["    " + describe(r) for r in life.context]
    for text in analysis.violations:
        out.append(f"VIOLATION {text}")
    for text in analysis.errors:
        out.append(f"ERROR {text}")
    by_stream: dict[str, list[SendLife]] = {}
    for life in lives:
        if life.leak is None:
            by_stream.setdefault(f"{life.conn} stream {life.stream_name}", []).append(life)
    for stream, group in by_stream.items():
        out.append("")
        out.append(stream)
        for life in group:
            done = (f"-> {'canceled' if life.canceled else 'acked'} at {life.at(life.complete_t)}"
                    if life.complete_t is not None else ("(rejected)" if life.status != "PENDING" else "(pending)"))
            span = f"[{life.range[0]}, {life.range[1]})" if life.range else ""
            out.append(f"  send {life.key:<12} {life.client_context:<24} {life.bytes:>8} B {span:<18} "
                       f"accepted {life.at(life.accepted_t)} {life.status:<14} {done}")
    return "\n".join(out)

"""Judge a rebuilt MsQuic log by the ledger's rule: every StreamSend that returned PENDING
gets exactly one SEND_COMPLETE delivered to the application. The history is replayed
into a fresh :class:`~quicsim.ledger.Ledger` (as ``quicsim check`` replays a trace); the
findings carry the log lines that show each loss and say what the log leaves uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..check import Replay
from ..enums import Status
from ..errors import BadHistory
from ..ledger import Ledger
from . import parse as p
from .history import records
from .rebuild import Indication, Rebuilt, Send, Stream, status_name

@dataclass
class Counts:
    """What one stream's application was told, counted from the log."""

    accepted: int = 0
    refused: int = 0
    acked: int = 0  # delivered SEND_COMPLETE, Canceled=FALSE
    canceled: int = 0  # delivered SEND_COMPLETE, Canceled=TRUE
    discarded: int = 0  # SEND_COMPLETE lines followed by ``Event silently discarded``
    lost: int = 0  # accepted sends whose completion was not delivered, on a stream that ended
    pending: int = 0  # accepted sends with no completion line yet, on a stream still open
    in_flight: int = 0  # StreamSend calls without their Exit where the log ends

    @property
    def delivered(self) -> int:
        return self.acked + self.canceled

    def add(self, other: "Counts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class StreamJudgment:
    """One stream's verdict: its counts, the sends lost and pending, and the evidence."""

    stream: Stream
    counts: Counts
    lost: list[Send]  # the sends judged lost (which ones is by send order: see ``notes``)
    pending: list[Send]
    lines: list[str] = field(default_factory=list)  # the log lines that show the loss
    notes: list[str] = field(default_factory=list)  # what the log leaves uncertain


@dataclass
class Judgment:
    """The verdict on one log: per stream, in total, and the ledger's on the replayed history."""

    where: str
    source: p.Source
    rebuilt: Rebuilt
    streams: list[StreamJudgment]
    total: Counts
    history: list[dict[str, Any]]
    ledger: Ledger
    findings: list[dict[str, Any]]  # the ledger's leak and violation records, for the trace
    #: why the log looks cut short (empty when it ran to its end)
    early: list[str]

    @property
    def failed(self) -> bool:
        """A loss, a leak or violation, a log cut short, or a SEND_COMPLETE the application was
        told of that no accepted send was owed (one silently discarded told it nothing)."""
        told = [c for c in self.rebuilt.unplaced + self.rebuilt.extra if c.discarded is None]
        return bool(self.early or self.ledger.leaks or self.ledger.violations or any(j.lost for j in self.streams)
                    or told)


def _show(line: p.Line) -> str:
    return f"line {line.number}: {line.message}"


def _counts(stream: Stream, log_ended: bool) -> tuple[Counts, list[Send], list[Send]]:
    """The stream's counts, its lost sends and those still pending. In a log that ran to its
    end nothing is pending: a send never completed there is lost (the ledger's teardown)."""
    counts = Counts()
    lost: list[Send] = []
    pending: list[Send] = []
    for send in stream.sends:
        accepted = send.accepted
        if accepted is None:
            counts.in_flight += 1
            continue
        if not accepted:
            counts.refused += 1
            continue
        counts.accepted += 1
        completion = send.completion
        if completion is not None and completion.discarded is None:
            if completion.canceled:
                counts.canceled += 1
            else:
                counts.acked += 1
        elif completion is not None or stream.ended or log_ended:
            lost.append(send)  # discarded, or never indicated on a stream that can raise no more
        else:
            pending.append(send)
    counts.discarded = sum(1 for c in stream.completions if c.discarded is not None and c.send is not None)
    counts.lost, counts.pending = len(lost), len(pending)
    return counts, lost, pending


def _evidence(stream: Stream, lost: list[Send]) -> list[str]:
    """The log lines that show a stream's loss: the lost sends, the StreamClose, and for
    each lost send its completion line and the discard after it (or that it has none)."""
    lines: list[str] = []
    for send in lost:
        exit_text = f"Exit {status_name(send.status)} at line {send.exit.number}" if send.exit else "no Exit"
        lines.append(f"{_show(send.enter)}  <- StreamSend #{send.index} accepted ({exit_text})")
    close = stream.closed()
    if close is not None:
        if close.in_handler is not None:
            event = close.in_handler
            what = (f"the SEND_COMPLETE of send #{event.send.index}" if event.event == "SEND_COMPLETE"
                    and event.send is not None else event.event)
            lines.append(f"{_show(event.line)}  <- {what} raised")
            lines.append(f"{_show(close.enter)}  <- StreamClose, called from the handler of that event (its Enter "
                         f"is the next line; the log names no thread)")
        else:
            lines.append(f"{_show(close.enter)}  <- StreamClose")
        if close.without_shutdown is not None:
            lines.append(_show(close.without_shutdown))
        assert close.exit is not None  # (closed() is a StreamClose that returned)
        lines.append(f"{_show(close.exit)}  <- StreamClose returned: the stream has no handler from here on")
    for send in lost:
        completion = send.completion
        if completion is None:
            lines.append(f"StreamSend #{send.index} (line {send.enter.number}): no SEND_COMPLETE line at all, and "
                         f"{_end(stream)}")
            continue
        lines.append(f"{_show(completion.line)}  <- completes send #{send.index} "
                     f"({'canceled' if completion.canceled else 'acked'})")
        assert completion.discarded is not None
        lines.append(f"{_show(completion.discarded)}  <- not delivered")
    return lines


def _uncertain(stream: Stream, lost: list[Send]) -> list[str]:
    """What the log leaves uncertain about a stream's loss: how each line was tied to the
    send or stream it is taken for."""
    notes: list[str] = []
    for send in lost:
        completion = send.completion
        if completion is not None and completion.discarded is not None and completion.discard_gap:
            notes.append(f"'Event silently discarded' at line {completion.discarded.number} comes "
                         f"{completion.discard_gap} lines after the Indicating line at {completion.line.number}: "
                         f"taken as that event's (another thread's lines may lie between)")
    if len(lost) > 1:
        notes.append(f"which of sends {', '.join(f'#{s.index}' for s in lost)} each lost completion belongs to "
                     f"cannot be told: the log prints no client context, and the request pointer of a "
                     f"StreamSend only once it is queued; completion lines were matched to sends in send order")
    elif lost:
        notes.append(f"send #{lost[0].index} is named by matching completion lines to sends in send order "
                     f"(the log prints no client context)")
    for completion in stream.completions:
        if not completion.placed_certainly and completion.send is not None:  # (extra lines: said on their own)
            notes.append(f"the SEND_COMPLETE line {completion.line.number} was placed on this stream by context: "
                         f"{completion.placed_by}")
    for send in stream.sends:
        if send.exit is not None and not send.paired_certainly:
            notes.append(f"the Exit (line {send.exit.number}) of StreamSend #{send.index} was paired by "
                         f"{send.paired_by}")
    close = stream.closed()
    if close is not None and close.exit is not None and not close.paired_certainly:
        notes.append(f"StreamClose's Exit (line {close.exit.number}) was paired by {close.paired_by}")
    return notes


def _end(stream: Stream) -> str:
    if stream.closed() is not None:
        return "the stream was closed"
    shutdown = stream.shutdown_complete()
    if shutdown is not None:
        return f"the stream's SHUTDOWN_COMPLETE was raised (line {shutdown.line.number}, placed by context)"
    if stream.destroyed is not None:
        return f"the stream was freed (line {stream.destroyed.number})"
    if stream.stream_id is not None and stream.conn.shutdown_complete is not None:
        return "the stream's connection reached SHUTDOWN_COMPLETE"
    return "the log ends with the stream never closed"


def _replay(history: list[dict[str, Any]], where: str) -> Ledger:
    ledger = Ledger()
    replay = Replay(ledger)
    for record in history:
        try:
            replay.feed(record)
        except BadHistory as exc:  # a rebuilt record the replay cannot read: a defect here
            raise AssertionError(f"{where}: line {record.get('log_line')}: {exc}") from None
    return ledger


def _early(rebuilt: Rebuilt, source: p.Source) -> list[str]:
    early = []
    if source.truncated:
        early.append(source.truncated)
    if source.cut_line is not None:
        early.append(f"its last line ({source.cut_line}) is cut mid-write")
    if rebuilt.open_calls:
        early.append("calls still open: " + ", ".join(f"{c.name} (line {c.enter.number})"
                                                      for c in rebuilt.open_calls))
    unfinished = [f"{c.label} {c.pointer}" for c in rebuilt.connections if c.shutdown_complete is None]
    if unfinished:
        early.append(f"no SHUTDOWN_COMPLETE for connection {', '.join(unfinished)}")
    if not rebuilt.connections:
        early.append("no connection in it")
    if early and rebuilt.ends_on_indication is not None:
        early.append(f"its last MsQuic line ({rebuilt.ends_on_indication.number}) is an Indicating line: whether "
                     f"that event was delivered or silently discarded the log does not say")
    return early


def judge(rebuilt: Rebuilt, source: p.Source, where: str) -> Judgment:
    """Count each stream's sends, gather the evidence of each loss, and replay the history
    into a fresh ledger (in a log cut short, a send with no completion yet on a stream
    still open is pending, not lost)."""
    streams = []
    total = Counts()
    early = _early(rebuilt, source)
    for stream in rebuilt.streams:
        counts, lost, pending = _counts(stream, not early)
        total.add(counts)
        judgment = StreamJudgment(stream, counts, lost, pending)
        if lost:
            judgment.lines, judgment.notes = _evidence(stream, lost), _uncertain(stream, lost)
        streams.append(judgment)
    history = records(rebuilt, where, ended=not early)
    ledger = _replay(history, where)
    last = float(source.lines)
    findings = ([{"kind": "leak", **leak, "t": last} for leak in ledger.leaks]
                + [{"kind": "violation", "text": text, "t": last} for text in ledger.violations])
    return Judgment(where, source, rebuilt, streams, total, history, ledger, findings, early)


def report_lines(j: Judgment) -> list[str]:
    """The findings, one block per stream that lost sends, then the summary line."""
    where = j.where
    out: list[str] = []
    judged = {leak["send_id"] for leak in j.ledger.leaks}
    for sj in j.streams:
        if not sj.lost:
            continue
        c = sj.counts
        out.append(f"{where}: LOST {len(sj.lost)} of {c.accepted} accepted sends on {sj.stream.name}: "
                   f"{c.accepted} accepted, {c.delivered} completions delivered ({c.acked} acked, "
                   f"{c.canceled} canceled), {c.discarded} discarded")
        out += [f"  {line}" for line in sj.lines]
        out += [f"  uncertain: {note}" for note in sj.notes]
        judged -= {s.send_id for s in sj.lost}
    for leak in j.ledger.leaks:
        if leak["send_id"] in judged:  # the ledger's own word on a send the counts did not call lost
            out.append(f"{where}: LEAK send {leak['connection']}:{leak['send_id']} "
                       f"client_context={leak['client_context']} ({leak['detected']})")
    for text in j.ledger.violations:
        out.append(f"{where}: VIOLATION {text} (the ledger, on the history rebuilt from the log)")
    for stream in j.rebuilt.streams:
        for send in stream.sends:
            if send.status == Status.OUT_OF_MEMORY and send.queuing is not None:
                # v2.3.5's MsQuicStreamSend sets PENDING only at its end: an allocation that
                # fails after the request was linked in returns OUT_OF_MEMORY for a queued send.
                out.append(f"{where}: NOTE StreamSend #{send.index} on {stream.name} (line {send.enter.number}) "
                           f"returned OUT_OF_MEMORY after 'App queuing send': in v2.3.5 it may be queued all the "
                           f"same and complete; counted as refused")
    for line in j.rebuilt.stray_discards:
        out.append(f"{where}: NOTE {_show(line)}: no Indicating line before it to pair with")
    for completion in j.rebuilt.extra:
        out += _extra_lines(where, completion)
    for completion in j.rebuilt.unplaced:
        told = ("it was silently discarded, so the application was told nothing" if completion.discarded
                else "no stream had a send it could complete")
        out.append(f"{where}: {'NOTE' if completion.discarded else 'UNPLACED'} {_show(completion.line)}: {told}")
    if j.early:
        out += _incomplete_lines(j)
    out.append(_summary_line(j))
    return out


def _extra_lines(where: str, completion: Indication) -> list[str]:
    """A SEND_COMPLETE line beyond the accepted sends of the stream it was placed on."""
    stream = completion.stream
    assert stream is not None  # (extra lines are those placed on a stream)
    accepted = len(stream.accepted())
    text = (f"{_show(completion.line)}: a SEND_COMPLETE on {stream.name}, whose {accepted} accepted "
            f"send{'s' if accepted != 1 else ''} had theirs already")
    if completion.discarded is None:
        out = [f"{where}: EXTRA {text}: delivered to the application with no send owed it"]
    else:
        out = [f"{where}: NOTE {text}: 'Event silently discarded' follows it (line {completion.discarded.number}), "
               f"so the application was told nothing; not counted"]
        close = stream.closed()
        if close is not None and close.exit is not None and close.exit.number < completion.line.number:
            # v2.3.5's QuicSendBufferFill raises SEND_COMPLETE at buffer copy, then steps to
            # Req->Next: a StreamClose in that handler frees Req, and the pool's free-list link
            # overlays Next, so a freed request is "buffered" and completed once more.
            out.append(f"  line {close.enter.number}: StreamClose on that stream, returned at line "
                       f"{close.exit.number}: MsQuic's send-buffer fill can go on, after a StreamClose made inside "
                       f"a SEND_COMPLETE it raised, to a request that close freed")
    if not completion.placed_certainly:
        out.append(f"  uncertain: its stream was placed by context: {completion.placed_by}")
    return out


def _incomplete_lines(j: Judgment) -> list[str]:
    """Why the log looks cut short, and each send whose fate it does not show yet."""
    where = j.where
    pending = [(sj.stream, s) for sj in j.streams for s in sj.pending]
    in_flight = [(st, s) for st in j.rebuilt.streams for s in st.sends if s.accepted is None]
    out = [f"{where}: INCOMPLETE the log ends early, after line {j.source.lines}: {'; '.join(j.early)}; "
           f"{len(pending)} accepted sends still pending, {len(in_flight)} StreamSend calls without their Exit"]
    for stream, send in pending:
        out.append(f"{where}: PENDING send #{send.index} on {stream.name}: accepted at "
                   f"line {send.enter.number}, no SEND_COMPLETE line yet")
    for stream, send in in_flight:
        out.append(f"{where}: PENDING StreamSend #{send.index} on {stream.name}: entered at line "
                   f"{send.enter.number}, no Exit yet (accepted or refused: the log does not say yet)")
    return out


def _summary_line(j: Judgment) -> str:
    """The last line: the verdict and the counts over the whole log."""
    t = j.total
    lost = sum(1 for sj in j.streams if sj.lost)
    summary = (f"{t.accepted} accepted, {t.delivered} completions ({t.acked} acked, {t.canceled} canceled), "
               f"{t.refused} refused, {t.discarded} discarded; {t.lost} lost on {lost} "
               f"stream{'s' if lost != 1 else ''} of {len(j.rebuilt.streams)}")
    by_context = sum(1 for stream in j.rebuilt.streams for c in stream.completions if not c.placed_certainly)
    if by_context:  # (several streams with sends outstanding at once: the log cannot tie them)
        summary += f"; {by_context} completion lines placed on their stream by context"
    extra = len(j.rebuilt.extra)
    if extra:
        summary += f"; {extra} extra completion line{'s' if extra != 1 else ''} (no send owed)"
    return f"{j.where}: {verdict(j)}: {summary}"


def verdict(j: Judgment) -> str:
    """ok, FAILED (a loss, even in a log cut short), or INCOMPLETE (cut short, none found yet)."""
    t = j.total
    return ("FAILED" if j.failed and (t.lost or j.ledger.leaks or j.ledger.violations)
            else "INCOMPLETE" if j.failed else "ok")


def _counts_json(c: Counts) -> dict[str, int]:
    return {"accepted": c.accepted, "refused": c.refused, "delivered": c.delivered, "acked": c.acked,
            "canceled": c.canceled, "discarded": c.discarded, "lost": c.lost, "pending": c.pending}


def judgment_json(j: Judgment) -> dict[str, Any]:
    """The verdict as one JSON object (``check --msquic-log --json``): per stream that made
    StreamSend calls, its counts, the lost and pending sends (by their order on the stream)
    and the log lines and doubts of each finding; the text report's lines beside it."""
    streams = []
    for sj in j.streams:
        stream = sj.stream
        if not stream.sends:
            continue
        streams.append({
            "connection": stream.conn.pointer, "side": stream.conn.side, "handle": stream.pointer,
            "stream_id": stream.stream_id, "allocated_line": stream.allocated.number,
            "counts": _counts_json(sj.counts),
            "lost": [send.index for send in sj.lost], "pending": [send.index for send in sj.pending],
            "lines": sj.lines, "uncertain": sj.notes,
        })
    return {"file": j.where, "verdict": verdict(j), "msquic_version": j.source.version,
            "totals": _counts_json(j.total), "streams": streams, "ended_early": j.early,
            "report": report_lines(j)}

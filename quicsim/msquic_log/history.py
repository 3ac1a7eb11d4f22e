"""The rebuilt history as quicsim's own JSON Lines trace records (quicsim/trace.py), so the
ledger can replay it and ``quicsim explain`` and its HTML report can show a real MsQuic run.

The log has no clock: a record's ``t`` is the number of the log line it comes from (also
in ``log_line``). It never prints a client context: a send's ``client_context`` is ``#k``,
the k-th StreamSend on its stream. ``stream_handle`` is the stream's rank in the log (a
handle pointer can be reused); ``msquic_handle`` is the pointer MsQuic printed.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from ..enums import SendFlags
from . import parse as p
from .rebuild import PENDING, Call, Connection, Indication, Rebuilt, Stream, known_status

#: Stream events the history carries (the ledger judges them by the stream's phase);
#: RECEIVE and the rest say nothing about sends.
_EVENTS = frozenset({"START_COMPLETE", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE", "PEER_SEND_SHUTDOWN",
                     "PEER_SEND_ABORTED", "PEER_RECEIVE_ABORTED"})


def context(index: int) -> str:
    """The client context the history gives the k-th StreamSend of a stream."""
    return f"#{index}"


def _where(conn: Connection, stream: Stream | None, line: p.Line) -> dict[str, Any]:
    where: dict[str, Any] = {"side": conn.side, "conn": conn.label, "msquic_conn": conn.pointer}
    if stream is not None:
        where["stream_id"] = stream.stream_id if stream.created and stream.created.number < line.number else None
        where["stream_handle"] = stream.ordinal
        where["msquic_handle"] = stream.pointer
    return where


def _record(kind: str, name: str, conn: Connection, stream: Stream | None, line: p.Line,
            **fields: Any) -> tuple[int, dict[str, Any]]:
    return line.number, {"kind": kind, "name": name, **_where(conn, stream, line), **fields,
                         "log_line": line.number, "t": float(line.number)}


def _in_handler(call: Call) -> str | None:
    """What the tracer writes for a call made from an event handler."""
    event = call.in_handler
    if event is None:
        return None
    if event.event == "SEND_COMPLETE" and event.send is not None:
        return f"SEND_COMPLETE client_context={context(event.send.index)}"
    return event.event


def _stream_records(stream: Stream) -> list[tuple[int, dict[str, Any]]]:
    conn = stream.conn
    out = []
    opener = stream.open_call
    if opener is not None:
        out.append(_record("call", "open_stream", conn, stream, stream.allocated,
                           status=known_status(opener.status) or "SUCCESS"))
    if stream.peer_started is not None and stream.stream_id is not None:
        out.append(_record("conn_event", "PEER_STREAM_STARTED", conn, None, stream.peer_started,
                           stream_id=stream.stream_id))
    for send in stream.sends:
        accepted = send.accepted
        if accepted is None:
            continue  # no Exit yet where the log ends: the application was not told yet
        status = "PENDING" if accepted else (known_status(send.status) or "INVALID_STATE")
        out.append(_record("call", "send", conn, stream, send.enter, status=status, send_id=send.send_id,
                           bytes=send.bytes, flags=SendFlags(send.flags).name or "NONE",
                           client_context=context(send.index), exit_line=send.exit.number if send.exit else None,
                           paired_by=send.paired_by or None))
    for call in stream.calls:
        name = {p.API_STREAM_START: "start", p.API_STREAM_SHUTDOWN: "shutdown", p.API_STREAM_CLOSE: "close"}[call.code]
        if name == "close" and call.exit is None:
            continue  # StreamClose has not returned where the log ends
        line = call.exit if name == "close" and call.exit is not None else call.enter
        fields: dict[str, Any] = {"status": known_status(call.status) if name != "close" else None,
                                  "enter_line": call.enter.number}
        if call.in_handler is not None:
            fields["in_handler"] = _in_handler(call)
        out.append(_record("call", name, conn, stream, line, **fields))
    for completion in stream.completions:
        out.append(_completion(stream, completion))
    for event in stream.events:
        if event.event in _EVENTS:
            fields = {"placed_by": event.placed_by}
            if event.event == "START_COMPLETE":
                fields.update(_start_fields(event.detail))
            kind = "discarded" if event.discarded is not None else "event"
            out.append(_record(kind, event.event, conn, stream, event.line, **fields))
    return out


def _start_fields(detail: str) -> dict[str, Any]:
    """``[Status=0x0 ID=0 Accepted=1]`` as the trace's START_COMPLETE fields."""
    fields: dict[str, Any] = {"status": "SUCCESS", "peer_accepted": True}
    for part in detail.strip("[]").split():
        key, _, value = part.partition("=")
        if key == "Status":
            fields["status"] = known_status(p.signed_status(int(value, 16))) or "INTERNAL_ERROR"
        elif key == "Accepted":
            fields["peer_accepted"] = value == "1"
    return fields


def _completion(stream: Stream, completion: Indication) -> tuple[int, dict[str, Any]]:
    send = completion.send
    fields: dict[str, Any] = {"canceled": completion.canceled, "request": completion.request,
                              "placed_by": completion.placed_by}
    if send is not None:
        fields.update(client_context=context(send.index), send_id=send.send_id)
    else:
        fields.update(client_context="?", send_id=None)
    if completion.discarded is not None:
        fields["discarded_line"] = completion.discarded.number
        return _record("discarded", "SEND_COMPLETE", stream.conn, stream, completion.line, **fields)
    return _record("event", "SEND_COMPLETE", stream.conn, stream, completion.line, **fields)


def records(rebuilt: Rebuilt, where: str, ended: bool = True) -> list[dict[str, Any]]:
    """The history's records in log order, after a ``source`` record saying what they are;
    for a log that ran to its end, a last ``teardown`` record: the ledger judges there what
    the application left (sends on a never-started stream it never closed)."""
    out: list[tuple[int, dict[str, Any]]] = []
    for stream in rebuilt.streams:
        out += _stream_records(stream)
    for conn in rebuilt.connections:
        for call in conn.calls:
            if call.code == p.API_CONNECTION_SHUTDOWN:
                out.append(_record("call", "connection_shutdown", conn, None, call.enter, status=None))
        if conn.shutdown_complete is not None:
            out.append(_record("conn_event", "SHUTDOWN_COMPLETE", conn, None, conn.shutdown_complete))
    out.sort(key=lambda item: item[0])  # (stable: a line's own records keep their order)
    head = {"kind": "source", "name": "msquic-log", "file": where,
            "note": "t is the log line number (the log has no clock); client_context #k is the k-th StreamSend "
                    "on its stream (the log prints no client context)"}
    tail = [{"kind": "teardown", "t": float(out[-1][0]) if out else 0.0}] if ended else []
    return [head] + [record for _, record in out] + tail


def write(file: TextIO, history: list[dict[str, Any]], findings: list[dict[str, Any]]) -> None:
    """The history, then the ledger's findings (``leak`` / ``violation`` records, as a run's trace ends)."""
    for record in history + findings:
        file.write(json.dumps(record) + "\n")


__all__ = ["PENDING", "context", "records", "write"]

"""MsQuic's stdout log (v2.3.x) as typed records: one per line whose shape is documented
(docs/msquic-log.md), the rest kept only as the stream or connection they name.

Every MsQuic line is ``<message> [<EventName>:<source file>:<line>]``. A line with a known
event name in a shape the parser does not know is bad input, named by its number: its
meaning cannot be guessed. Lines of other events, and lines that are not MsQuic's at
all (the application's own output on the same stdout), are skipped.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Generator, Iterator, cast

from ..errors import QuicsimError

#: A log whose first this many lines hold no MsQuic line is not a MsQuic log.
SNIFF_LINES = 200

_LINE = re.compile(r"^(?P<message>.*) \[(?P<name>[A-Za-z][A-Za-z0-9_]*):(?P<file>[^\]\s]+):(?P<src_line>\d+)\]$")
_OBJECT = re.compile(r"^\[(strm|conn)\]\[(0x[0-9a-fA-F]+)\]")

#: QUIC_TRACE_API_TYPE (src/inc/quic_trace.h), numbered from 0: the calls the checker reads
API_CONNECTION_OPEN, API_CONNECTION_CLOSE, API_CONNECTION_SHUTDOWN = 12, 13, 14
API_STREAM_OPEN, API_STREAM_CLOSE, API_STREAM_START, API_STREAM_SHUTDOWN, API_STREAM_SEND = 18, 19, 20, 21, 22
API_NAMES = {12: "ConnectionOpen", 13: "ConnectionClose", 14: "ConnectionShutdown", 15: "ConnectionStart",
             16: "ConnectionSetConfiguration", 18: "StreamOpen", 19: "StreamClose", 20: "StreamStart",
             21: "StreamShutdown", 22: "StreamSend"}


class NotMsQuicLog(QuicsimError, ValueError):
    """The input is not a MsQuic log, or holds a line of a known event in an unknown shape."""


@dataclass(frozen=True)
class Line:
    """One MsQuic line: its number in the log, its event name, its message and source."""

    number: int
    name: str
    message: str
    source: str  # "file:line" of the trace macro
    text: str

    @property
    def object(self) -> tuple[str, str] | None:
        """("strm" | "conn", pointer) when the message starts with the object it is about."""
        match = _OBJECT.match(self.message)
        return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class ApiEnter:
    """``[ api] Enter <code> (<handle>).``: an API call begins (QUIC_TRACE_API_TYPE ``code``)."""

    line: Line
    code: int
    handle: str | None  # the call's first handle argument; None when "(nil)"


@dataclass(frozen=True)
class ApiExit:
    """``[ api] Exit [<status>]``: the innermost open call of its function returns."""

    line: Line
    status: int | None  # QUIC_STATUS as a signed 32-bit number; None for a void call's Exit


@dataclass(frozen=True)
class ConnCreated:
    """``[conn][C] Created, IsServer=...``: a connection's lifetime begins."""

    line: Line
    conn: str
    is_server: bool


@dataclass(frozen=True)
class ConnShutdownComplete:
    """``[conn][C] Shutdown complete``: printed right before the connection's SHUTDOWN_COMPLETE."""

    line: Line
    conn: str


@dataclass(frozen=True)
class StreamAlloc:
    """``[strm][S] Allocated, Conn=C``: a stream handle's lifetime begins (pointers are reused)."""

    line: Line
    stream: str
    conn: str


@dataclass(frozen=True)
class StreamCreated:
    """``[strm][S] Created, Conn=C ID=n IsLocal=b``: the stream has its id."""

    line: Line
    stream: str
    conn: str
    stream_id: int
    is_local: bool


@dataclass(frozen=True)
class StreamDestroyed:
    """``[strm][S] Destroyed``: the stream handle is freed."""

    line: Line
    stream: str


@dataclass(frozen=True)
class StreamAppSend:
    """``[strm][S] App queuing send [...]``: inside StreamSend, before it accepts or refuses."""

    line: Line
    stream: str
    bytes: int
    flags: int


@dataclass(frozen=True)
class SendQueued:
    """``Send Request [R] queued ...``: a send request on its stream's queue (R: its pointer)."""

    line: Line
    request: str
    bytes: int
    offset: int
    flags: int


@dataclass(frozen=True)
class IndicateSendComplete:
    """``Indicating QUIC_STREAM_EVENT_SEND_COMPLETE [R] [(Canceled)]``: a completion raised."""

    line: Line
    request: str
    canceled: bool


@dataclass(frozen=True)
class IndicateStreamEvent:
    """Any other ``Indicating QUIC_STREAM_EVENT_...`` line (none names its stream but RECEIVE)."""

    line: Line
    event: str  # the QUIC_STREAM_EVENT_ name without its prefix
    detail: str


@dataclass(frozen=True)
class IndicateConnEvent:
    """Any ``Indicating QUIC_CONNECTION_EVENT_...`` line."""

    line: Line
    event: str  # the QUIC_CONNECTION_EVENT_ name without its prefix
    detail: str


@dataclass(frozen=True)
class EventSilentDiscard:
    """``Event silently discarded``: the event indicated just before found no handler."""

    line: Line


@dataclass(frozen=True)
class Other:
    """A MsQuic line of another event: kept for the stream or connection it names."""

    line: Line


Record = (ApiEnter | ApiExit | ConnCreated | ConnShutdownComplete | StreamAlloc | StreamCreated | StreamDestroyed
          | StreamAppSend | SendQueued | IndicateSendComplete | IndicateStreamEvent | IndicateConnEvent
          | EventSilentDiscard | Other)

# The documented shapes of the events read here, by event name (the message, its source cut off).
_SHAPES = {
    "ApiExitStatus": re.compile(r"^\[ api\] Exit (\d+)$"),
    "ApiExit": re.compile(r"^\[ api\] Exit$"),
    "ConnCreated": re.compile(r"^\[conn\]\[(0x[0-9a-fA-F]+)\] Created, IsServer=([01]), CorrelationId=\d+$"),
    "ConnShutdownComplete": re.compile(r"^\[conn\]\[(0x[0-9a-fA-F]+)\] Shutdown complete, .*$"),
    "StreamAlloc": re.compile(r"^\[strm\]\[(0x[0-9a-fA-F]+)\] Allocated, Conn=(0x[0-9a-fA-F]+)$"),
    "StreamCreated": re.compile(r"^\[strm\]\[(0x[0-9a-fA-F]+)\] Created, Conn=(0x[0-9a-fA-F]+) ID=(\d+) "
                                r"IsLocal=([01])$"),
    "StreamDestroyed": re.compile(r"^\[strm\]\[(0x[0-9a-fA-F]+)\] Destroyed$"),
    "StreamAppSend": re.compile(r"^\[strm\]\[(0x[0-9a-fA-F]+)\] App queuing send \[(\d+) bytes, \d+ buffers, "
                                r"0x([0-9a-fA-F]+) flags\]$"),
    "SendQueued": re.compile(r"^Send Request \[(0x[0-9a-fA-F]+)\] queued with (\d+) bytes at offset (\d+) "
                             r"\(flags 0x([0-9a-fA-F]+)\)$"),
    "IndicateSendComplete": re.compile(r"^Indicating QUIC_STREAM_EVENT_SEND_COMPLETE \[(0x[0-9a-fA-F]+)\]$"),
    "IndicateSendCanceled": re.compile(r"^Indicating QUIC_STREAM_EVENT_SEND_COMPLETE \[(0x[0-9a-fA-F]+)\] "
                                       r"\(Canceled\)$"),
    "EventSilentDiscard": re.compile(r"^Event silently discarded$"),
}
_STREAM_EVENT = re.compile(r"^Indicating QUIC_STREAM_EVENT_([A-Z_0-9]+)\s*(.*)$")
_CONN_EVENT = re.compile(r"^Indicating QUIC_CONNECTION_EVENT_([A-Z_0-9]+)\s*(.*)$")
_ENTER = re.compile(r"^\[ api\] Enter (\d+) \((0x[0-9a-fA-F]+|\(nil\))\)\.$")


def signed_status(value: int) -> int:
    """A QUIC_STATUS the log prints as an unsigned 32-bit number (``[ api] Exit 4294967294``,
    ``Status=0xfffffffe``) as the signed one it is: PENDING is -2."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _record(line: Line) -> Record:
    """The typed record of one MsQuic line; raises :class:`NotMsQuicLog` for a known event
    in an unknown shape."""
    name, message = line.name, line.message
    if name == "ApiEnter":
        match = _ENTER.match(message)
        if match:
            handle = match.group(2)
            return ApiEnter(line, int(match.group(1)), None if handle == "(nil)" else handle)
    elif name in ("ApiExitStatus", "ApiExit"):
        match = _SHAPES[name].match(message)
        if match:
            return ApiExit(line, signed_status(int(match.group(1))) if name == "ApiExitStatus" else None)
    elif name in _SHAPES:
        match = _SHAPES[name].match(message)
        if match:
            g = match.groups()
            if name == "ConnCreated":
                return ConnCreated(line, g[0], g[1] == "1")
            if name == "ConnShutdownComplete":
                return ConnShutdownComplete(line, g[0])
            if name == "StreamAlloc":
                return StreamAlloc(line, g[0], g[1])
            if name == "StreamCreated":
                return StreamCreated(line, g[0], g[1], int(g[2]), g[3] == "1")
            if name == "StreamDestroyed":
                return StreamDestroyed(line, g[0])
            if name == "StreamAppSend":
                return StreamAppSend(line, g[0], int(g[1]), int(g[2], 16))
            if name == "SendQueued":
                return SendQueued(line, g[0], int(g[1]), int(g[2]), int(g[3], 16))
            if name in ("IndicateSendComplete", "IndicateSendCanceled"):
                return IndicateSendComplete(line, g[0], name == "IndicateSendCanceled")
            return EventSilentDiscard(line)
    elif message.startswith("Indicating QUIC_STREAM_EVENT_"):
        match = _STREAM_EVENT.match(message)
        if match:
            return IndicateStreamEvent(line, match.group(1), match.group(2))
    elif message.startswith("Indicating QUIC_CONNECTION_EVENT_"):
        match = _CONN_EVENT.match(message)
        if match:
            return IndicateConnEvent(line, match.group(1), match.group(2))
    else:
        return Other(line)
    raise NotMsQuicLog(f"{line.number}: {name} line in a shape this checker does not know: {line.text!r}")


@dataclass
class Source:
    """What reading the log found besides its records: where it stopped and why."""

    lines: int = 0
    msquic_lines: int = 0
    #: the last line had no newline and is no MsQuic line: cut mid-write, skipped
    cut_line: int | None = None
    #: a compressed log that stops before its end (the reason)
    truncated: str | None = None
    #: the version MsQuic printed (``[ lib] Version 2.3.5.0``), if the log holds it
    version: str | None = None
    #: the start of the log's first line: what the input is, named when it is no MsQuic log
    first_line: str = ""


_VERSION = re.compile(r"^\[ lib\] Version (\S+)$")


def parse(lines: Iterator[str], source: Source, where: str) -> Generator[Record, None, None]:
    """The records of a log's lines, in order. Raises :class:`NotMsQuicLog` when none of
    the first :data:`SNIFF_LINES` lines is MsQuic's, or at a known line in an unknown shape."""
    previous: str | None = None
    number = 0
    for raw in lines:
        if previous is not None:
            number += 1
            yield from _one(previous, number, True, source, where)
        previous = raw
    if previous is not None:
        number += 1
        yield from _one(previous, number, previous.endswith("\n"), source, where)
    if source.msquic_lines == 0:
        raise NotMsQuicLog(f"{where}: not a MsQuic log: " + ("it is empty" if not number else
                                                            f"none of its {number} lines is a MsQuic log line"))


def _one(raw: str, number: int, whole: bool, source: Source, where: str) -> Iterator[Record]:
    source.lines = number
    text = raw.rstrip("\r\n")
    if number == 1:
        source.first_line = text[:80]
    match = _LINE.match(text)
    if match is None:
        if not whole and text:
            source.cut_line = number
        elif source.msquic_lines == 0 and number >= SNIFF_LINES:
            raise NotMsQuicLog(f"{where}: not a MsQuic log: none of its first {SNIFF_LINES} lines is a MsQuic "
                               f"log line ('<message> [<Event>:<file>:<line>]'); line 1: {source.first_line!r}")
        return
    source.msquic_lines += 1
    line = Line(number, match.group("name"), match.group("message"),
                f"{match.group('file')}:{match.group('src_line')}", text)
    if line.name == "LibraryVersion":
        version = _VERSION.match(line.message)
        if version:
            source.version = version.group(1)
    try:
        yield _record(line)
    except NotMsQuicLog as exc:
        raise NotMsQuicLog(f"{where}:{exc}") from None


@contextmanager
def open_log(path: str) -> Iterator[IO[str]]:
    """The log's text: a file (gzip-compressed when it starts so), or stdin for ``-``
    (left open)."""
    binary: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        head = binary.peek(2)[:2] if isinstance(binary, io.BufferedReader) else b""
        raw: IO[bytes] = cast(IO[bytes], gzip.GzipFile(fileobj=binary)) if head == b"\x1f\x8b" else binary
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        try:
            yield text
        finally:
            text.detach()  # closing is the owner's: the file below, never stdin
    finally:
        if path != "-":
            binary.close()


def read_lines(file: IO[str], source: Source) -> Generator[str, None, None]:
    """The lines of ``file``; a compressed log cut short ends them, noted in ``source``."""
    try:
        for line in file:  # (not ``yield from``: closing this must not close the file)
            yield line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        source.truncated = f"the compressed data stops early ({exc})"

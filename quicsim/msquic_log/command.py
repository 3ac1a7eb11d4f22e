"""``quicsim check --msquic-log FILE [--to-trace OUT] [--json]``: exit 0 when every accepted send
had its SEND_COMPLETE delivered, 1 for a loss or a log that ends early, 2 for input that
cannot be read or is not a MsQuic log (one line: what, where)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..errors import UsageError
from ..outpaths import output_file
from . import history, parse
from .judge import Judgment, judge, judgment_json, report_lines
from .rebuild import rebuild


def read(path: str) -> Judgment:
    """Parse, rebuild and judge one log (``-``: stdin). Raises :class:`parse.NotMsQuicLog`
    and :class:`OSError`."""
    where = "<stdin>" if path == "-" else path
    source = parse.Source()
    with parse.open_log(path) as file:
        lines = parse.read_lines(file, source)
        records = parse.parse(lines, source, where)
        try:
            rebuilt = rebuild(records)
        finally:  # stopped early (not a MsQuic log): closed while the file is open
            records.close()
            lines.close()
    return judge(rebuilt, source, where)


def main(path: str, to_trace: str | None = None, out: TextIO | None = None, err: TextIO | None = None,
         as_json: bool = False) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if to_trace is not None:
        output_file(to_trace, "--to-trace")
    try:
        judgment = read(path)
    except parse.NotMsQuicLog as exc:
        print(f"quicsim check: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"quicsim check: {path}: cannot read: {getattr(exc, 'strerror', None) or exc}", file=err)
        return 2
    source = judgment.source
    if source.version is not None and not source.version.startswith("2."):
        print(f"quicsim check: warning: {judgment.where}: MsQuic {source.version}: the line shapes read here are "
              f"v2.x's", file=err)
    if as_json:
        print(json.dumps(judgment_json(judgment)), file=out)
    else:
        for line in report_lines(judgment):
            print(line, file=out)
    if to_trace is not None:
        with open(to_trace, "w", encoding="utf-8") as file:
            history.write(file, judgment.history, judgment.findings)
        print(f"wrote {to_trace}", file=err)
    return 1 if judgment.failed else 0


def from_args(path: str | None, to_trace: str | None, traces: list[str], as_json: bool = False) -> int:
    """The command line's options, checked: one log, no trace beside it."""
    if path is None:
        raise UsageError(f"quicsim check: {'--to-trace' if to_trace is not None else '--json'} needs --msquic-log FILE")
    if traces:
        raise UsageError(f"quicsim check: --msquic-log judges one log; {traces[0]} is extra (check traces apart)")
    return main(path, to_trace, as_json=as_json)

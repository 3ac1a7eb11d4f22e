"""How ``quicsim run`` shows results: a table, failure details, and the repro command."""

from __future__ import annotations

import io
import shlex
from typing import Any
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .send_order import send_name


_SETTLE_NOTE = "when the body returned and the settle time ran out (the teardown closed it)"


def result_label(result: dict[str, Any]) -> Text:
    if result.get("skipped"):
        return Text("skip", style="dim")
    if not result["passed"]:
        return Text("FAIL", style="bold red")
    if result["expect"] != "ok":
        return Text(f"expected {result['expect']} caught", style="yellow")
    return Text("pass", style="green")


_COLUMNS = (("seed", "right"), ("result", "left"), ("sends", "right"),
            ("completions (acked/canceled)", "right"), ("rejected", "right"), ("leaks", "right"),
            ("wall s", "right"))
#: Shorter headers for a narrow console, so the scenario names keep the room.
_NARROW_HEADERS = ("seed", "result", "sends", "done (a/c)", "rej.", "leaks", "s")


def _wrap_name(name: str, width: int) -> str:
    """Break a scenario name after underscores into lines of at most ``width``: cut by
    an ellipsis, ``shutdown_...`` names were no longer recognisable."""
    lines: list[str] = []
    line = ""
    for part in name.split("_"):
        piece = part if not line else "_" + part
        if line and len(line) + len(piece) + 1 > width:  # + 1: the "_" that ends a broken line
            lines.append(line + "_")
            line = part
        else:
            line += piece
    lines.append(line)
    return "\n".join(lines)


def _table(results: list[dict[str, Any]], name_width: int | None) -> Table:
    narrow = name_width is not None
    table = Table(title=None, show_lines=False, header_style="bold",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    table.add_column("scenario", justify="left", width=name_width, overflow="fold")
    for (column, justify), short in zip(_COLUMNS, _NARROW_HEADERS):
        table.add_column(short if narrow else column, justify=justify,  # type: ignore[arg-type]
                         max_width=11 if narrow and column == "result" else None)
    for r in results:
        table.add_row(
            _wrap_name(r["scenario"], name_width) if name_width else r["scenario"], str(r["seed"]),
            result_label(r), str(r["sends"]), f"{r['completions']} ({r['acked']}/{r['canceled']})",
            str(r["rejected"]), Text(str(len(r["leaks"])), style="red" if r["leaks"] and r["expect"] == "ok" else ""),
            f"{r['wall_time']:.2f}",
        )
    return table


def results_table(results: list[dict[str, Any]], width: int | None = None) -> Table:
    """One row per run. On a console narrower than the table (``width``), the frame gets
    lighter, headers shorter, and scenario names wrap at underscores instead of being cut."""
    table = _table(results, None)
    if width is None:
        return table
    def natural(t: Table) -> int:
        """The width ``t`` takes when nothing constrains it."""
        console = Console(width=10_000, file=io.StringIO(), color_system=None)
        console.print(t)
        return max(len(line.rstrip()) for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]

    if natural(table) <= width:
        return table
    longest = max((len(r["scenario"]) for r in results), default=8)
    spare = width - natural(_table(results, longest))  # the scenario column gives what is missing
    return _table(results, max(12, longest + min(spare, 0)))


def repro_command(result: dict[str, Any], extra_args: list[str]) -> str:
    """The exact command that reruns one scenario run."""
    return shlex.join(["quicsim", "run", result["file"], "-k", result["scenario"],
                       "--seed", str(result["seed"]), "--repeat", "1", *extra_args])


def print_skips(console: Console, results: list[dict[str, Any]]) -> None:
    """One line per skipped scenario (not per seed): why its backend cannot run it."""
    seen: set[str] = set()
    for r in results:
        reason = r.get("skipped")
        if reason and r["scenario"] not in seen:
            seen.add(r["scenario"])
            where = (f"against {r['peer']}" if r.get("peer") else f"with {r['peer_client']}'s client"
                     if r.get("peer_client") else f"on {r.get('backend', 'simulator')}")
            console.print(f"skip {r['scenario']} {where}: {reason}", style="dim", markup=False)


def print_failure_rates(console: Console, results: list[dict[str, Any]]) -> None:
    """For scenarios run with several seeds: how often each failed (on the real library a
    run is not replayable, so a rate is what a repro can promise)."""
    runs: dict[str, list[bool]] = {}
    for r in results:
        if not r.get("skipped"):
            runs.setdefault(r["scenario"], []).append(bool(r["passed"]))
    for name, passed in runs.items():
        if len(passed) > 1:
            failed = passed.count(False)
            console.print(f"{name}: failed {failed} of {len(passed)} runs ({100 * failed / len(passed):.0f} %)",
                          markup=False)


def print_failures(console: Console, results: list[dict[str, Any]], extra_args: list[str]) -> None:
    for r in results:
        if r["passed"]:
            if r.get("unsettled"):
                console.print(f"{r['scenario']} (seed {r['seed']}): still open {_SETTLE_NOTE}: {r['unsettled']}",
                              style="yellow", markup=False)
            continue
        console.print(Text(f"FAIL {r['scenario']} (seed {r['seed']}, expect {r['expect']})", style="bold red"))
        if r["error"]:
            console.print(f"  error: {r['error']}", markup=False)
        if r["expect"] != "ok" and not r["error"]:
            console.print(f"  expected the ledger to catch a {r['expect']}, it reported none", markup=False)
        for leak in r["leaks"]:
            stream = leak["stream_id"] if leak["stream_id"] is not None else f"handle={leak['stream_handle']} (unstarted)"
            console.print(f"  LEAK send {send_name(leak['connection'], leak['send_id'])} "
                          f"client_context={leak['client_context']} "
                          f"on {leak['connection']} stream {stream} ({leak['bytes']} bytes, "
                          f"{leak['flags']}) {leak['detected']}", markup=False)
        for stalled in r.get("stalled", []):
            console.print(f"  STALLED send {send_name(stalled['connection'], stalled['send_id'])} "
                          f"client_context={stalled['client_context']} "
                          f"on {stalled['connection']} stream {stalled['stream_id']} ({stalled['bytes']} bytes, "
                          f"{stalled['flags']}) {stalled['detected']}", markup=False)
        for violation in r["violations"]:
            console.print(f"  VIOLATION {violation}", markup=False)
        if r.get("unsettled"):
            console.print(f"  still open {_SETTLE_NOTE}: {r['unsettled']}", markup=False)
        for note in r.get("notes", []):
            console.print(f"  note: {note}", markup=False)
        # a command to copy: never wrapped, whatever the console's width
        console.print(f"  reproduce: {repro_command(r, extra_args)}", markup=False, soft_wrap=True)

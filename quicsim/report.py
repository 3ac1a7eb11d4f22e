"""How ``quicsim run`` shows results: a table, failure details, and the repro command."""

from __future__ import annotations

import shlex
from rich.console import Console
from rich.table import Table
from rich.text import Text


def result_label(result: dict) -> Text:
    if not result["passed"]:
        return Text("FAIL", style="bold red")
    if result["expect"] != "ok":
        return Text(f"expected {result['expect']} caught", style="yellow")
    return Text("pass", style="green")


def results_table(results: list[dict]) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    for column, justify in (("scenario", "left"), ("seed", "right"), ("result", "left"),
                            ("sends", "right"), ("completions (acked/canceled)", "right"),
                            ("rejected", "right"), ("leaks", "right"), ("wall s", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r["scenario"], str(r["seed"]), result_label(r), str(r["sends"]),
            f"{r['completions']} ({r['acked']}/{r['canceled']})", str(r["rejected"]),
            Text(str(len(r["leaks"])), style="red" if r["leaks"] and r["expect"] == "ok" else ""),
            f"{r['wall_time']:.2f}",
        )
    return table


def repro_command(result: dict, extra_args: list[str]) -> str:
    """The exact command that reruns one scenario run."""
    return shlex.join(["quicsim", "run", result["file"], "-k", result["scenario"],
                       "--seed", str(result["seed"]), "--repeat", "1", *extra_args])


def print_failures(console: Console, results: list[dict], extra_args: list[str]) -> None:
    for r in results:
        if r["passed"]:
            continue
        console.print(Text(f"FAIL {r['scenario']} (seed {r['seed']}, expect {r['expect']})", style="bold red"))
        if r["error"]:
            console.print(f"  error: {r['error']}", markup=False)
        if r["expect"] != "ok" and not r["error"]:
            console.print(f"  expected the ledger to catch a {r['expect']}, it reported none", markup=False)
        for leak in r["leaks"]:
            stream = leak["stream_id"] if leak["stream_id"] is not None else f"handle={leak['stream_handle']} (unstarted)"
            console.print(f"  LEAK send {leak['send_id']} client_context={leak['client_context']} "
                          f"on {leak['connection']} stream {stream} ({leak['bytes']} bytes, "
                          f"{leak['flags']}) {leak['detected']}", markup=False)
        for stalled in r.get("stalled", []):
            console.print(f"  STALLED send {stalled['send_id']} client_context={stalled['client_context']} "
                          f"on {stalled['connection']} stream {stalled['stream_id']} ({stalled['bytes']} bytes, "
                          f"{stalled['flags']}) {stalled['detected']}", markup=False)
        for violation in r["violations"]:
            console.print(f"  VIOLATION {violation}", markup=False)
        for note in r.get("notes", []):
            console.print(f"  note: {note}", markup=False)
        console.print(f"  reproduce: {repro_command(r, extra_args)}", markup=False)

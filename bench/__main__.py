"""``python -m bench``: quicsim against bare aioquic, A/B alternated in one process.

Each case runs quicsim and its baseline in alternation for several rounds and reports
the median, min and max of each and the ratio of medians, marked against its target.
After the timed part every case checks its work and raises on a short count: the bare
receiver got every byte and FIN, and quicsim's receiver did too, every send completed
and the ledger is clean (a fuzz run judges its own ledger; the pending-send memory case
checks that closing cancels every send). ``--quick`` shrinks every size (for the smoke
test); ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

from rich.console import Console
from rich.table import Table

from . import cases


def _stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def _ab(rounds: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[list[float], list[float]]:
    qs, bs = [], []
    for i in range(rounds):
        # Alternate which goes first so drift on a noisy machine hits both alike.
        if i % 2 == 0:
            qs.append(a())
            bs.append(b())
        else:
            bs.append(b())
            qs.append(a())
    return qs, bs


def _case(name: str, unit: str, quicsim: dict, baseline: dict | None, ratio: float, target: str, met: bool) -> dict:
    return {"name": name, "unit": unit, "quicsim": quicsim, "baseline": baseline, "ratio": round(ratio, 3),
            "target": target, "met": met}


def run(quick: bool) -> list[dict]:
    rounds = 5 if not quick else 1
    results = []
    bulk_total = 20 * 1024 * 1024 if not quick else 512 * 1024
    chunk = 64 * 1024
    n_chunks = bulk_total // chunk

    q, b = _ab(rounds, lambda: asyncio.run(cases.quicsim_sends(n_chunks, chunk)),
               lambda: asyncio.run(cases.bare_sends(n_chunks, chunk)))
    qmb = [bulk_total / t / 1e6 for t in q]
    bmb = [bulk_total / t / 1e6 for t in b]
    ratio = statistics.median(qmb) / statistics.median(bmb)
    results.append(_case(f"bulk {bulk_total >> 20 or bulk_total >> 10}{'MB' if bulk_total >= 1 << 20 else 'KB'} "
                         f"UDP, 64 KiB sends", "MB/s", _stats(qmb), _stats(bmb), ratio, ">= 0.97x", ratio >= 0.97))

    small = 100_000 if not quick else 2_000
    q, b = _ab(rounds, lambda: asyncio.run(cases.quicsim_sends(small, 64)),
               lambda: asyncio.run(cases.bare_sends(small, 64)))
    ratio = statistics.median(q) / statistics.median(b)
    results.append(_case(f"{small} sends of 64 B (completions checked, not timed)", "s", _stats(q), _stats(b), ratio,
                         "<= 1.3x time", ratio <= 1.3))
    t_large = statistics.median(q)

    scale_small = small // 10
    q10 = [asyncio.run(cases.quicsim_sends(scale_small, 64)) for _ in range(rounds)]
    ratio = t_large / statistics.median(q10)
    per_send = cases.pending_send_bytes(10_000 if not quick else 1_000)
    scaling = _case(f"scaling {scale_small} -> {small} sends (time ratio)", "s",
                    _stats(q10), None, ratio, "<= 10.5 (linear)", ratio <= 10.5)
    scaling["pending_send_bytes"] = round(per_send, 1)
    results.append(scaling)

    n_streams = 1000 if not quick else 50
    q, b = _ab(rounds, lambda: asyncio.run(cases.quicsim_sends(10, 64, streams=n_streams)),
               lambda: asyncio.run(cases.bare_sends(10, 64, streams=n_streams)))
    ratio = statistics.median(q) / statistics.median(b)
    results.append(_case(f"{n_streams} streams x 10 sends", "s", _stats(q), _stats(b), ratio,
                         "<= 1.1x time", ratio <= 1.1))

    mem_total = 4 * 1024 * 1024 if not quick else 256 * 1024
    q, b = _ab(rounds, lambda: cases.quicsim_memory_bulk(mem_total, chunk),
               lambda: cases.bare_memory_bulk(mem_total, chunk))
    qmb = [mem_total / t / 1e6 for t in q]
    bmb = [mem_total / t / 1e6 for t in b]
    ratio = statistics.median(qmb) / statistics.median(bmb)
    results.append(_case(f"memory transport bulk {mem_total >> 20 or mem_total >> 10}"
                         f"{'MB' if mem_total >= 1 << 20 else 'KB'} (same link for both)", "MB/s", _stats(qmb),
                         _stats(bmb), ratio, ">= 0.95x", ratio >= 0.95))

    traced = 2000 if not quick else 200
    q, b = _ab(rounds + 2, lambda: cases.traced_sends(traced, True), lambda: cases.traced_sends(traced, False))
    ratio = statistics.median(q) / statistics.median(b)
    results.append(_case(f"tracing a {traced}-send run (memory; traced vs untraced quicsim)", "s", _stats(q),
                         _stats(b), ratio, "<= 1.3x time", ratio <= 1.3))

    fuzz_runs = 200 if not quick else 10
    q, b = _ab(rounds, lambda: cases.fuzz_run_seconds(fuzz_runs), lambda: cases.bare_lifecycle_seconds(fuzz_runs))
    qr = [1 / t for t in q]
    br = [1 / t for t in b]
    ratio = statistics.median(qr) / statistics.median(br)
    results.append(_case("fuzz runs/s vs bare connection lifecycles/s (memory link, same seeds' networks)", "1/s",
                         _stats(qr), _stats(br), ratio, ">= 0.6x", ratio >= 0.6))
    return results


def _fmt(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['median']:.3g} [{stats['min']:.3g}..{stats['max']:.3g}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.quick)
    machine = {"python": platform.python_version(), "platform": platform.platform(),
               "cpus": os.cpu_count(), "aioquic": _version("aioquic"), "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps({"machine": machine, "quick": args.quick, "cases": results}))
        return 0
    print_report(Console(width=200 if not sys.stdout.isatty() else None), results, machine, args.quick)
    return 0


#: what the "met" column says on a --quick run: its sizes are too small to mean anything
NOT_JUDGED = "not judged"


def print_report(console: Console, results: list[dict], machine: dict, quick: bool) -> None:
    """The table, and the machine it ran on; a --quick run's targets are not judged."""
    table = Table(header_style="bold")
    for col in ("case", "unit", "quicsim median [min..max]", "baseline median [min..max]", "ratio", "target", "met"):
        table.add_column(col)
    for r in results:
        extra = f" ({r['pending_send_bytes']} B per pending send)" if "pending_send_bytes" in r else ""
        met = NOT_JUDGED if quick else "yes" if r["met"] else "MISSED"
        table.add_row(r["name"] + extra, r["unit"], _fmt(r["quicsim"]), _fmt(r["baseline"]), f"{r['ratio']:.2f}",
                      r["target"], met)
    console.print(table)
    if quick:
        console.print("--quick: a smoke run with tiny sizes and one round; the targets are not judged on it "
                      "(run without --quick to measure)", markup=False)
    console.print(f"{machine['platform']}, Python {machine['python']}, aioquic {machine['aioquic']}, "
                  f"{machine['cpus']} CPUs, {machine['seconds']} s")


def _version(name: str) -> str:
    from importlib.metadata import version

    try:
        return version(name)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())

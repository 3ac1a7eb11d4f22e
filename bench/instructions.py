"""``python -m bench.instructions``: the deterministic cases counted in CPU instructions
(valgrind's callgrind), quicsim against bare aioquic on the same in-memory link.

Wall-clock ratios on a shared machine move by 10-30 % between runs, and one deterministic
run can take twice as long as its twin; the number of instructions a run executes does
not move. Each figure is the difference between a large and a small run divided by the
difference in work, so start-up, handshake and teardown cancel out. Every run checks its
work as ``python -m bench`` does (bytes, FINs, completions, the ledger). Needs valgrind.

``bulk-udp`` (only when named) counts the bulk transfer over loopback UDP. It is not
deterministic: under valgrind's slowdown a run may take spurious loss timeouts, which
change its work, so each row says how many timeouts its runs took (0: a clean count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")
_TIMEOUTS = re.compile(r"loss timeouts: (\d+)")


@dataclass(frozen=True)
class Case:
    name: str
    unit: str  # what one unit of work is
    sides: tuple[str, str]  # the measured side, then its baseline
    small: int
    large: int
    scale: int  # units of work per size step (a size of 1 MB is 1 unit; 1 send is 1 unit)
    limit: float  # target: instructions ratio at most this
    target: str
    default: bool = True  # run when no case is named


CASES: dict[str, Case] = {
    "sends": Case("64 B sends, memory link", "send", ("quicsim", "bare"), 1000, 6000, 1, 1.3, "<= 1.3x"),
    "bulk": Case("bulk, 64 KiB sends, memory link", "MB", ("quicsim", "bare"), 1, 4, 1,
                 1 / 0.95, ">= 0.95x throughput"),
    "streams": Case("streams x 10 sends of 64 B, memory link", "stream", ("quicsim", "bare"), 200, 1000, 1,
                    1.1, "<= 1.1x"),
    "tracing": Case("tracing 64 B sends (traced vs untraced quicsim)", "send", ("traced", "untraced"), 1000, 3000,
                    1, 1.3, "<= 1.3x"),
    "bulk-udp": Case("bulk, 64 KiB sends, loopback UDP (timing-dependent)", "MB", ("quicsim", "bare"), 1, 4, 1,
                     1 / 0.97, ">= 0.97x throughput", default=False),
}


def _work(case: str, side: str) -> Callable[[int], float]:
    """The function that does ``n`` units of a case's work on one side."""
    from . import cases

    if case == "sends":
        return (lambda n: cases.quicsim_memory_sends(n, 64)) if side == "quicsim" else (
            lambda n: cases.bare_memory_sends(n, 64))
    if case == "bulk":
        return (lambda n: cases.quicsim_memory_bulk(n << 20, 64 * 1024)) if side == "quicsim" else (
            lambda n: cases.bare_memory_bulk(n << 20, 64 * 1024))
    if case == "streams":
        return (lambda n: cases.quicsim_memory_sends(10, 64, streams=n)) if side == "quicsim" else (
            lambda n: cases.bare_memory_sends(10, 64, streams=n))
    if case == "tracing":
        return lambda n: cases.traced_sends(n, side == "traced")
    if case == "bulk-udp":
        send = cases.quicsim_sends if side == "quicsim" else cases.bare_sends
        return lambda n: asyncio.run(send(n * 16, 64 * 1024))
    raise ValueError(f"unknown case {case!r}")


def collected(valgrind_output: str) -> int:
    """The instruction total callgrind reports at exit ("Collected : N")."""
    match = _COLLECTED.search(valgrind_output)
    if match is None:
        raise RuntimeError("valgrind reported no instruction count:\n" + valgrind_output[-2000:])
    return int(match.group(1))


def loss_timeouts(child_output: str) -> int:
    """The loss-detection timeouts a child's run took (its last line says)."""
    match = _TIMEOUTS.search(child_output)
    if match is None:
        raise RuntimeError("the run did not report its loss timeouts:\n" + child_output[-2000:])
    return int(match.group(1))


def _counting_loss_timeouts() -> list[int]:
    """Count aioquic's loss-detection timeouts from now on (in a child)."""
    from quicsim.core import aioquic_adapter as aq

    fired = [0]

    def counted() -> None:
        fired[0] += 1

    aq.watch_loss_timeouts(counted)
    return fired


def count(case: str, side: str, n: int) -> tuple[int, int]:
    """Instructions of one child process doing ``n`` units of ``case`` on ``side``, and
    the loss timeouts its run took."""
    # A fixed hash seed: set and dict layouts (and so the work of lookups) repeat run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions", "--child", case, side, str(n)],
        cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{case}/{side} n={n} failed under valgrind:\n{proc.stderr[-2000:]}")
    return collected(proc.stderr), loss_timeouts(proc.stderr)


def measure(names: list[str], jobs: int, quick: bool = False) -> list[dict]:
    """Per-unit instructions of both sides of each case, and their ratio."""
    runs = []
    for name in names:
        case = CASES[name]
        small, large = (case.small // 10 or 1, case.large // 10 or 2) if quick else (case.small, case.large)
        for side in case.sides:
            runs += [(name, side, small), (name, side, large)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        totals = dict(zip(runs, pool.map(lambda run: count(*run), runs)))
    rows = []
    for name in names:
        case = CASES[name]
        sizes = sorted({n for (c, _, n) in totals if c == name})
        small, large = sizes[0], sizes[-1]
        per = {side: (totals[(name, side, large)][0] - totals[(name, side, small)][0]) / ((large - small) * case.scale)
               for side in case.sides}
        ratio = per[case.sides[0]] / per[case.sides[1]]
        timeouts = {side: totals[(name, side, small)][1] + totals[(name, side, large)][1] for side in case.sides}
        rows.append({"case": name, "name": case.name, "unit": case.unit, case.sides[0]: round(per[case.sides[0]]),
                     case.sides[1]: round(per[case.sides[1]]), "sides": list(case.sides), "ratio": round(ratio, 3),
                     "target": case.target, "met": ratio <= case.limit, "loss_timeouts": timeouts})
    return rows


def _print(rows: list[dict], quick: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="instructions per unit of work (callgrind; large run minus small run)")
    for column in ("case", "unit", "measured", "baseline", "ratio", "target", "met", "loss timeouts"):
        table.add_column(column)
    for row in rows:
        measured, baseline = row["sides"]
        timeouts = row["loss_timeouts"]
        table.add_row(row["name"], row["unit"], f"{row[measured]:,} ({measured})", f"{row[baseline]:,} ({baseline})",
                      f"{row['ratio']:.3f}", row["target"],
                      "not judged" if quick else "yes" if row["met"] else "MISSED",
                      f"{timeouts[measured]} / {timeouts[baseline]}")
    console = Console(width=200 if not sys.stdout.isatty() else None)
    console.print(table)
    if quick:
        console.print("--quick: a tenth of every size; the targets are not judged on it", markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    defaults = [name for name, case in CASES.items() if case.default]
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to run (default: {', '.join(defaults)}; also: "
                             f"{', '.join(name for name in CASES if name not in defaults)})")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once (default 2)")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "SIDE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, side, n = args.child
        fired = _counting_loss_timeouts()
        _work(case, side)(int(n))
        print(f"loss timeouts: {fired[0]}", file=sys.stderr)
        return 0
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        print(f"python -m bench.instructions: unknown case {unknown[0]!r} (cases: {', '.join(CASES)})",
              file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("python -m bench.instructions: --jobs must be >= 1", file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print("python -m bench.instructions: valgrind is not installed (it counts the instructions)",
              file=sys.stderr)
        return 2
    rows = measure(args.cases or defaults, args.jobs, args.quick)
    if args.json:
        print(json.dumps({"machine": {"python": platform.python_version(), "platform": platform.platform()},
                          "cases": rows}, indent=2))
    else:
        _print(rows, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

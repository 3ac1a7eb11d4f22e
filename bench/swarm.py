"""``python -m bench.swarm``: what swarm runs buy the fuzzer, per fault and in probe coverage.

For each start seed S (S = 0, 100000, 200000, ...) it runs seeds S..S+RUNS-1 as full runs
(``--swarm 0``) and as swarm runs (``--swarm 1``), once clean and once with each injected
fault, and counts per 1,000 runs: the runs that expose the fault, and the probes hit. It
reports the median over the start seeds. A seed's swarm program does not depend on the
ratio (only whether the seed is a swarm run does), so the outcome of a mix is exact, not
estimated: seed s takes its swarm outcome when it is a swarm run at that ratio, else its
full one. No shrinking: only whether each run fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Iterator

from quicsim.faults import FAULTS
from quicsim.fuzz.engine import NO_HANDSHAKE
from quicsim.fuzz.swarm import is_swarm
from quicsim.fuzz.watchdog import WALL_BUDGET, Sandbox
from quicsim.probes import PROBES

#: first seeds of the starts are this far apart (more than any --runs used here)
STRIDE = 100_000
CLEAN = "clean"


def _ratios(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"must be fractions in [0, 1], got {text!r}")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1 or value > STRIDE:
        raise argparse.ArgumentTypeError(f"must be in 1..{STRIDE}, got {text}")
    return value


def run_mode(seeds: list[int], faults: frozenset[str], swarm: float, jobs: int, max_ops: int,
             ) -> Iterator[tuple[int, str | None, frozenset[str]]]:
    """(seed, failure signature or None, probes hit) for every seed, in finishing order."""
    jobs_iter = (("seed", s, max_ops, faults, False, swarm) for s in seeds)
    with Sandbox(jobs, WALL_BUDGET) as sandbox:
        for outcome in sandbox.run(jobs_iter):
            if outcome.failure is not None:  # a hang or a crash: a failure of that seed
                yield outcome.job[1], outcome.failure, frozenset()
                continue
            seed, sig, _, _, probes = outcome.value
            yield seed, (None if sig == NO_HANDSHAKE else sig), frozenset(probes)


def _per_start(outcomes: dict[int, tuple[str | None, frozenset[str]]], first: int, runs: int) -> dict:
    seeds = range(first, first + runs)
    failing = [s for s in seeds if outcomes[s][0] is not None]
    probe_runs = {name: sum(1 for s in seeds if name in outcomes[s][1]) for name in PROBES}
    return {
        "failing_runs": len(failing),
        "first_failing_run": (failing[0] - first + 1) if failing else None,
        "signatures": sorted({str(outcomes[s][0]) for s in failing}),
        "probes_hit": sum(1 for n in probe_runs.values() if n),
        "probe_runs": probe_runs,
    }


def first_finds(fault: str, starts: int, limit: int, jobs: int, max_ops: int, swarm: float = 0.0,
                only: str | None = None) -> list[tuple[int, str] | None]:
    """Per start seed S: the run (1 = seed S) of the first failure with ``fault`` injected
    (with signature ``only``, if given) and its signature, or None when none of
    S..S+limit-1 fails. Each start stops at its
    first failure (the runs below it all ran: a start's seeds are handed out in order)."""
    firsts = [i * STRIDE for i in range(starts)]
    chosen = frozenset([fault])
    issued = {f: 0 for f in firsts}
    first_failing: dict[int, tuple[int, str]] = {}

    def jobs_iter() -> Iterator[tuple[object, ...]]:
        while True:
            open_starts = [f for f in firsts if f not in first_failing and issued[f] < limit]
            if not open_starts:
                return
            for f in open_starts:
                if f in first_failing:
                    continue
                yield ("seed", f + issued[f], max_ops, chosen, False, swarm)
                issued[f] += 1

    with Sandbox(jobs, WALL_BUDGET) as sandbox:
        for outcome in sandbox.run(jobs_iter()):
            seed = outcome.job[1]
            sig = outcome.failure if outcome.failure is not None else outcome.value[1]
            if sig is None or sig == NO_HANDSHAKE or (only is not None and sig != only):
                continue
            start = seed - seed % STRIDE
            if seed - start < first_failing.get(start, (limit, ""))[0]:
                first_failing[start] = (seed - start, str(sig))
    return [(first_failing[f][0] + 1, first_failing[f][1]) if f in first_failing else None for f in firsts]


def first_find_table(results: dict[str, list[tuple[int, str] | None]], limit: int) -> str:
    """Markdown: per fault, the median and the largest run of the first failure over the
    starts (a start that found nothing within ``limit`` runs counts as more than it), and
    what those first failures were."""
    lines = ["| fault | median run of the first failure | max | starts that found it | first failures |",
             "|---|---|---|---|---|"]
    for fault, firsts in results.items():
        found = [f for f in firsts if f is not None]
        values = [f[0] if f is not None else limit + 1 for f in firsts]
        worst = f">{limit}" if len(found) < len(firsts) else str(max(values))
        median = statistics.median(values)
        median_text = f">{limit}" if median > limit else f"{median:g}"
        sigs = sorted({sig for _, sig in found})
        what = ", ".join(f"{sig} x{sum(1 for _, s in found if s == sig)}" for sig in sigs)
        lines.append(f"| `{fault}` | {median_text} | {worst} | {len(found)}/{len(firsts)} | {what} |")
    return "\n".join(lines)


def _mix(full: dict, swarm: dict, ratio: float) -> dict:
    """The outcome of every seed at ``ratio``: its swarm outcome if it is a swarm run."""
    return {s: (swarm[s] if is_swarm(s, ratio) else full[s]) for s in full}


def measure(runs: int, starts: int, jobs: int, max_ops: int, mixes: list[float], faults: list[str],
            log=print) -> dict:
    firsts = [i * STRIDE for i in range(starts)]
    seeds = [f + i for f in firsts for i in range(runs)]
    targets = [CLEAN] + faults
    report: dict = {"runs": runs, "starts": starts, "first_seeds": firsts, "max_ops": max_ops, "jobs": jobs,
                    "ratios": sorted({0.0, 1.0, *mixes}), "targets": {}}
    for target in targets:
        chosen = frozenset() if target == CLEAN else frozenset([target])
        raw: dict[float, dict] = {}
        for swarm in (0.0, 1.0):
            began = time.monotonic()
            raw[swarm] = {s: (sig, probes) for s, sig, probes in run_mode(seeds, chosen, swarm, jobs, max_ops)}
            elapsed = time.monotonic() - began
            log(f"{target:32} swarm {swarm:g}: {len(seeds)} runs in {elapsed:.0f} s "
                f"({len(seeds) / elapsed:.1f} runs/s), {sum(1 for v in raw[swarm].values() if v[0])} failing")
        per_ratio = {}
        for ratio in report["ratios"]:
            outcomes = raw[ratio] if ratio in raw else _mix(raw[0.0], raw[1.0], ratio)
            per_ratio[str(ratio)] = [_per_start(outcomes, f, runs) for f in firsts]
        report["targets"][target] = per_ratio
    return report


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(report: dict) -> str:
    """Markdown: failing runs and probes per 1,000 runs, medians over the starts."""
    scale = 1000 / report["runs"]
    ratios = report["ratios"]
    head = ["", *(f"swarm {r:g}" for r in ratios)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for target, per_ratio in report["targets"].items():
        if target == CLEAN:
            continue
        cells = []
        for r in ratios:
            starts = per_ratio[str(r)]
            rate = _median([s["failing_runs"] * scale for s in starts])
            found = sum(1 for s in starts if s["failing_runs"])
            first = _median([s["first_failing_run"] for s in starts])
            cells.append(f"{_fmt(rate, 1)} (first at {_fmt(first)}; {found}/{len(starts)})")
        lines.append(f"| `{target}`: failing runs per 1,000 | " + " | ".join(cells) + " |")
    clean = report["targets"].get(CLEAN)
    if clean:
        cells = [_fmt(_median([s["probes_hit"] for s in clean[str(r)]])) + f" of {len(PROBES)}" for r in ratios]
        lines.append(f"| probes hit in {report['runs']} clean runs | " + " | ".join(cells) + " |")
        failing = [str(sum(s["failing_runs"] for s in clean[str(r)])) for r in ratios]
        lines.append("| clean runs failing (all starts) | " + " | ".join(failing) + " |")
        for name in PROBES:
            cells = [_fmt(_median([s["probe_runs"][name] * scale for s in clean[str(r)]]), 1) for r in ratios]
            lines.append(f"| `{name}`: runs per 1,000 | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=_positive, default=1000, help="runs per start seed (default 1000)")
    parser.add_argument("--starts", type=_positive, default=10, help="start seeds (default 10)")
    parser.add_argument("--jobs", type=_positive, default=2, help="worker processes (default 2)")
    parser.add_argument("--max-ops", type=_positive, default=12, help="API operations per program (default 12)")
    parser.add_argument("--mix", type=_ratios, default=[0.25, 0.5, 0.75], metavar="R,R",
                        help="swarm ratios to report besides 0 and 1 (default 0.25,0.5,0.75)")
    parser.add_argument("--fault", action="append", choices=sorted(FAULTS), metavar="FAULT",
                        help="only this fault (repeatable; default: all four)")
    parser.add_argument("--json", metavar="FILE", help="also write the per-start numbers to FILE")
    parser.add_argument("--first-find", action="store_true",
                        help="only how many runs each start seed takes to find each fault (--runs: at most "
                             "that many per start); each start stops at its first failure")
    parser.add_argument("--signature", metavar="SIG",
                        help="with --first-find: count only failures with this signature (such as leak)")
    parser.add_argument("--swarm", type=_ratios, default=[0.0], metavar="R",
                        help="with --first-find: the swarm ratio of the runs (default 0)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.first_find:
        return _main_first_find(args, argv, began)
    report = measure(args.runs, args.starts, args.jobs, args.max_ops, args.mix, args.fault or sorted(FAULTS),
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    report["elapsed"] = round(time.monotonic() - began, 1)
    report["date"] = datetime.date.today().isoformat()
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    report["command"] = "python -m bench.swarm " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"{report['date']}, {report['machine']['cpus']} CPUs, {report['command']}, {report['elapsed']:.0f} s; "
          f"{args.starts} starts x {args.runs} runs, medians over the starts, scaled per 1,000 runs "
          f"(first at: median run of the first failure; k/n: starts that found it)")
    print(table(report))
    return 0


def _main_first_find(args: argparse.Namespace, argv: list[str] | None, began: float) -> int:
    results: dict[str, list[tuple[int, str] | None]] = {}
    for fault in args.fault or sorted(FAULTS):
        t0 = time.monotonic()
        results[fault] = first_finds(fault, args.starts, args.runs, args.jobs, args.max_ops, args.swarm[0],
                                     args.signature)
        print(f"{fault:32} first failures {results[fault]} in {time.monotonic() - t0:.0f} s",
              file=sys.stderr, flush=True)
    command = "python -m bench.swarm " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPUs, {command}, "
          f"{time.monotonic() - began:.0f} s; {args.starts} start seeds (S = 0, {STRIDE}, ...), "
          f"at most {args.runs} runs each")
    print(first_find_table(results, args.runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "runs": args.runs, "starts": args.starts, "swarm": args.swarm[0],
                       "first_failing_run": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

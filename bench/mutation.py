"""``python -m bench.mutation``: mutation testing of the send, ACK and cancel paths of the
core and of the ledger, and the killed / survived / equivalent table per file.

It mutates the functions listed in :data:`SCOPE` with mutmut (configured in
``[tool.mutmut]`` of pyproject.toml: which tests kill them) and counts a surviving mutant as
equivalent only when ``docs/mutation.md`` names it with the reason. ``--reuse`` tabulates the
last run (``mutants/``) without running again; ``--recheck`` runs again only the mutants the
last run left alive (after tests were added) and keeps the other verdicts. Needs the
``mutation`` extra.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS_DOC = ROOT / "docs" / "mutation.md"

#: file -> {class name (None: module level) -> functions mutated}
SCOPE: dict[str, dict[str | None, tuple[str, ...]]] = {
    "quicsim/core/stream.py": {"StreamCore": (
        "apply_shutdown", "_send_shutdown_graceful", "_send_shutdown_abort", "_complete", "_cancel_late",
        "on_acks", "close")},
    "quicsim/core/send_queue.py": {
        "SendQueue": ("queue", "pop_acknowledged", "take_api_requests", "pending_count")},
    "quicsim/core/state.py": {
        "StreamState": ("send_direction", "move_send"),
        None: ("status",)},
    "quicsim/ledger.py": {
        "Ledger": ("send_call", "sends_queued", "stream_data_received", "stream_event", "_stream_event",
                   "_on_send_complete", "_witness", "_peer", "_leak_check")},
    "quicsim/send_order.py": {
        None: ("context_key",),
        "SendBook": ("add", "_leave_lane", "lane_queued", "accept", "reject", "shutdown_requested", "queued",
                     "front", "complete_front", "complete", "_pick", "_overtaken", "_split", "_finish", "pending",
                     "drop_pending")},
}

_SEP = "\u01c1"  # mutmut's separator between class and method in a mutant's name
_RESULT = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def patterns() -> list[str]:
    """mutmut name patterns of every mutant in scope."""
    out = []
    for path, classes in SCOPE.items():
        for cls, functions in classes.items():
            for function in functions:
                middle = f"x_{function}" if cls is None else f"x{_SEP}{cls}{_SEP}{function}"
                out.append(f"{_module(path)}.{middle}__mutmut_*")
    return out


def equivalents() -> set[str]:
    """Mutant names listed (in backticks) under "Equivalent mutants" in docs/mutation.md."""
    text = EQUIVALENTS_DOC.read_text()
    section = text.split("## Equivalent mutants", 1)[-1].split("\n## ", 1)[0]
    return set(re.findall(r"`(quicsim\.[^`\s]+__mutmut_\d+)`", section))


def _mutmut() -> str:
    exe = Path(sys.executable).parent / "mutmut"
    found = str(exe) if exe.exists() else shutil.which("mutmut")
    if found is None:
        print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        raise SystemExit(2)
    return found


STATUSES = ROOT / "mutants" / "bench-statuses.json"


def results() -> dict[str, str]:
    """Every mutant of the last run with its status (killed, survived, timeout, ...)."""
    if STATUSES.exists():  # written by --recheck: the merged verdicts
        return json.loads(STATUSES.read_text())
    return _mutmut_results()


def _mutmut_results() -> dict[str, str]:
    proc = subprocess.run([_mutmut(), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"mutmut results failed: {proc.stderr.strip()}", file=sys.stderr)
        raise SystemExit(1)
    found = {}
    for line in proc.stdout.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _file_of(name: str) -> str | None:
    for path in SCOPE:
        if name.startswith(_module(path) + ".x"):
            return path
    return None


def table(statuses: dict[str, str], equivalent: set[str]) -> tuple[list[dict], list[str]]:
    """Rows per file (and a total) and the open survivors: neither killed nor equivalent."""
    wanted = [re.compile(re.escape(p).replace(r"\*", r"\d+") + "$") for p in patterns()]
    counts: dict[str, Counter] = {path: Counter() for path in SCOPE}
    open_survivors = []
    for name, status in sorted(statuses.items()):
        path = _file_of(name)
        if path is None or not any(p.match(name) for p in wanted):
            continue
        if status == "killed":
            kind = "killed"
        elif status == "timeout":
            kind = "timeout"  # the tests hung under it: detected, as a kill is
        elif name in equivalent:
            kind = "equivalent"
        else:
            kind = {"survived": "survived", "suspicious": "suspicious",
                    "no tests": "no tests"}.get(status, "other")
            open_survivors.append(f"{name}: {status}")
        counts[path][kind] += 1
    rows = []
    total: Counter = Counter()
    for path, count in counts.items():
        rows.append(_row(path, count))
        total.update(count)
    rows.append(_row("total", total))
    return rows, open_survivors


def _row(name: str, count: Counter) -> dict:
    mutants = sum(count.values())
    judged = mutants - count["equivalent"]
    return {"file": name, "mutants": mutants, "killed": count["killed"], "survived": count["survived"],
            "equivalent": count["equivalent"], "timeout": count["timeout"], "suspicious": count["suspicious"],
            "no_tests": count["no tests"], "other": count["other"],
            "score": round(100.0 * (count["killed"] + count["timeout"]) / judged, 1) if judged else 100.0}


def markdown(rows: list[dict]) -> str:
    lines = ["| file | mutants | killed | survived | equivalent | timeout | no tests | detected of non-equivalent |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['mutants']} | {r['killed']} | {r['survived']} | {r['equivalent']} | "
                     f"{r['timeout'] + r['suspicious']} | {r['no_tests']} | {r['score']} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="tabulate the last run in mutants/ only")
    parser.add_argument("--recheck", action="store_true",
                        help="run again only the mutants the last run did not kill")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        print("--jobs must be >= 1", file=sys.stderr)
        return 2
    elapsed = None
    if args.recheck:
        before = results()
        wanted = [re.compile(re.escape(p).replace(r"\*", r"\d+") + "$") for p in patterns()]
        again = sorted(name for name, status in before.items()
                       if status not in ("killed", "timeout") and any(p.match(name) for p in wanted))
        started = time.monotonic()
        # A changed test selection makes mutmut forget every verdict: keep ours, rerun these.
        proc = subprocess.run([_mutmut(), "run", "--max-children", str(args.jobs), *again], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            print(f"mutmut run failed with status {proc.returncode}", file=sys.stderr)
            return 1
        now = _mutmut_results()
        before.update({name: now[name] for name in again if name in now})
        STATUSES.write_text(json.dumps(before, indent=0, sort_keys=True))
    elif not args.reuse:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # a fresh run: no cached verdicts
        started = time.monotonic()
        proc = subprocess.run([_mutmut(), "run", "--max-children", str(args.jobs), *patterns()], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            print(f"mutmut run failed with status {proc.returncode}", file=sys.stderr)
            return 1
    rows, open_survivors = table(results(), equivalents())
    if args.json:
        print(json.dumps({"rows": rows, "open": open_survivors, "seconds": elapsed}, indent=2))
        return 0
    print(markdown(rows))
    if elapsed is not None:
        print(f"\n{rows[-1]['mutants']} mutants in {elapsed:.0f} s")
    if open_survivors:
        print(f"\nopen survivors ({len(open_survivors)}; `mutmut show NAME` shows each):")
        for line in open_survivors:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

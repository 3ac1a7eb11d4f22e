"""``python -m quicsim.peers.matrix PEER.jsonl [AIOQUIC.jsonl]``: the Markdown table of
docs/peers.md from ``quicsim run scenarios/ --peer P --json`` output: one row per scenario,
its verdict over its seeds (pass, skip and why, or fail and the first error, or the
peer's silence when every failure was the peer's doing), what the
peer's server reported doing and, given the same run against quicsim's own server, what
differed from it (verdict, acknowledged and canceled sends, leaks per seed)."""

from __future__ import annotations

import json
import sys
from typing import Any


def _by_name(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_name.setdefault(result["scenario"], []).append(result)
    return by_name


def _outcome(run: dict[str, Any]) -> tuple[Any, ...]:
    return run["passed"], run["acked"], run["canceled"], len(run["leaks"])


def compared(runs: list[dict[str, Any]], base: list[dict[str, Any]] | None) -> str:
    """How the peer's runs differ from quicsim's server's (seed by seed)."""
    if runs[0].get("skipped"):
        return "-"
    if not base:
        return "not run against quicsim's server"
    theirs = {r["seed"]: _outcome(r) for r in base}
    differ = [f"seed {r['seed']}: passed/acked/canceled/leaks {_outcome(r)} vs {theirs.get(r['seed'])}"
              for r in runs if _outcome(r) != theirs.get(r["seed"])]
    return "; ".join(differ) or "same verdict, same acked, canceled and leaks"


def rows(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(scenario, verdict, the peer's actions) per scenario, in the order first run."""
    by_name = _by_name(results)
    out = []
    for name, runs in by_name.items():
        if runs[0].get("skipped"):
            verdict = f"skip: {runs[0]['skipped']}"
        else:
            failed = [r for r in runs if not r["passed"]]
            silent = [r for r in failed if r.get("peer_silence")]
            verdict = (f"pass ({len(runs)} seed{'s' if len(runs) > 1 else ''})" if not failed
                       else f"FAIL {len(failed)}/{len(runs)}, the peer's doing: {silent[0]['peer_silence']['text']}"
                       if len(silent) == len(failed)
                       else f"FAIL {len(failed)}/{len(runs)}: {failed[0]['error'] or 'ledger'}")
        actions = sorted({e["event"] for r in runs for e in r.get("peer_events", [])
                          if e.get("event") not in ("connected", "stopped", "terminated")})
        out.append((name, verdict.replace("|", "\\|"), ", ".join(actions) or "-"))
    return out


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if len(paths) not in (1, 2):
        print("usage: python -m quicsim.peers.matrix PEER.jsonl [AIOQUIC.jsonl]", file=sys.stderr)
        return 2
    loaded = []
    for path in paths:
        try:
            with open(path) as lines:
                loaded.append([json.loads(line) for line in lines if line.strip()])
        except (OSError, ValueError) as exc:
            print(f"quicsim.peers.matrix: {path}: {exc}", file=sys.stderr)
            return 2
    peer = _by_name(loaded[0])
    base = _by_name(loaded[1]) if len(loaded) == 2 else None
    print("| scenario | against the peer | what the peer's server reported | against quicsim's server (aioquic) |")
    print("|---|---|---|---|")
    for name, verdict, actions in rows(loaded[0]):
        versus = compared(peer[name], base.get(name) if base is not None else None)
        print(f"| `{name}` | {verdict} | {actions} | {versus} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

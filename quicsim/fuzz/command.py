"""``quicsim fuzz``: run a campaign from the command line's options and print what it found
(or one JSON object): exit 0 clean, 1 failures, 2 bad options or a lost Dask scheduler,
130 interrupted."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import interrupt
from ..errors import UsageError
from ..outpaths import output_dir
from .campaign import CampaignResult, run_campaign

#: a campaign that lost its Dask scheduler before doing what was asked (and found nothing)
INCOMPLETE = 2


def check_msquic(args: argparse.Namespace) -> None:
    """fuzz --backend msquic: the library must load here (the workers load it too: they
    inherit $QUICSIM_MSQUIC_LIB, set from --msquic-lib)."""
    from ..backends import MSQUIC_LIB_ENV, find_msquic, msquic_version
    from ..backends.msquic.runtime import simulator_faults

    injected = simulator_faults(frozenset(args.inject))
    if injected:
        raise UsageError(f"quicsim fuzz: --inject {injected[0]} is the simulator's fault; the msquic backend runs "
                         "the library as it is")
    if args.scheduler:
        raise UsageError("quicsim fuzz: --scheduler runs the simulator's programs; use --jobs with --backend msquic")
    found = find_msquic(args.msquic_lib)
    if found is None:
        from ..backends import HOW_TO_GET_MSQUIC

        raise UsageError(f"quicsim fuzz: --backend msquic needs a libmsquic: {HOW_TO_GET_MSQUIC}")
    try:
        msquic_version(found[0])
    except OSError as exc:
        raise UsageError(f"quicsim fuzz: --backend msquic: {found[0]} (from {found[1]}) cannot be used: {exc}") from None
    os.environ[MSQUIC_LIB_ENV] = found[0]


def main(args: argparse.Namespace) -> int:
    """Run the campaign the parsed options ask for; print its summary (or --json)."""
    output_dir(args.out, "--out", create=False)  # made by the first finding written
    if args.backend == "msquic":
        check_msquic(args)
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=200)
    err = Console(stderr=True, highlight=False)
    show_progress = err.is_terminal
    faults = frozenset(args.inject)
    progress_bar = Progress(TextColumn("fuzz"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]:.0f} runs/s, {task.fields[failures]} failing"),
                            TimeElapsedColumn(), console=err, transient=True, disable=not show_progress)
    with progress_bar:
        task = progress_bar.add_task("fuzz", total=args.runs, rate=0.0, failures=0)

        def on_progress(result: CampaignResult) -> None:
            progress_bar.update(task, completed=result.runs, rate=result.runs / max(result.elapsed, 1e-9),
                                failures=sum(result.failures.values()))

        interrupt.install()
        result = run_campaign(runs=args.runs, seed=args.seed, jobs=args.jobs, max_ops=args.max_ops,
                              faults=faults, out_dir=Path(args.out), time_budget=args.time_budget,
                              progress=on_progress, wall_budget=args.run_budget,
                              determinism_every=args.check_determinism, scheduler=args.scheduler,
                              swarm=args.swarm, backend=args.backend)
    if args.json:
        print(json.dumps(campaign_json(result, faults) | {"swarm": args.swarm}))
        if result.interrupted:
            return interrupt.EXIT_STATUS
        return 1 if result.failures else INCOMPLETE if result.stopped_why else 0
    out.print(f"runs: {result.runs} (seeds {result.seeds}) in {result.elapsed:.1f} s, "
              f"{result.runs / max(result.elapsed, 1e-9):.1f} runs/s; API operations: {result.ops}"
              + (f"; swarm runs: {args.swarm:.0%}" if args.swarm else "")
              + (f"; faults: {', '.join(sorted(faults))}" if faults else "")
              + (f"; stopped early: {result.stopped_why}" if result.stopped_why and not result.interrupted
                 else ("; stopped by --time-budget" if args.time_budget is not None else "; stopped early")
                 if result.stopped_early and not result.interrupted else "")
              + (f"; stopped in flight: seeds {', '.join(map(str, result.unfinished))}" if result.unfinished else "")
              + (f"; interrupted after {result.runs} of {args.runs} runs" if result.interrupted else ""))
    status = interrupt.EXIT_STATUS if result.interrupted else 1
    if result.rerun:
        rerun = sorted(result.rerun.items())
        out.print("run again after their run process died (counted once, as the run that finished): "
                  + "; ".join(f"seed {seed} (died on {', '.join(workers)})" for seed, workers in rerun), markup=False)
    if result.no_handshake:
        shown = ", ".join(map(str, result.no_handshake[:10])) + (" ..." if len(result.no_handshake) > 10 else "")
        out.print(f"no handshake (the drawn network prevented it; not failures): {len(result.no_handshake)} "
                  f"runs, seeds {shown}")
    from ..probes import report_lines

    if args.backend == "simulator":  # (the probes are the simulator core's branches)
        for line in report_lines(result.probe_hits, result.probe_runs, result.runs):
            out.print(line, markup=False)
    if not result.failures:
        out.print("failures: none")
        # a campaign cut short by a lost scheduler did not do what was asked: not a pass
        return interrupt.EXIT_STATUS if result.interrupted else INCOMPLETE if result.stopped_why else 0
    out.print(f"failures: {sum(result.failures.values())} "
              f"({', '.join(f'{sig} x{n}' for sig, n in result.failures.most_common())})")
    for finding in result.findings:
        where = str(finding.path) if finding.path else "(did not repeat when run again)"

        out.print(f"  {finding.signature}: seed {finding.seed}, shrunk {finding.original_ops} -> "
                  f"{finding.program.api_op_count()} API operations: {where}"
                  + ("" if finding.reproduced or not finding.path else "  [WARNING: the file did not reproduce it]"),
                  markup=False)
        if finding.detail:
            out.print(f"    {finding.detail}", markup=False)
        if finding.rate is not None:
            out.print(f"    the file failed so in {finding.rate[0]} of {finding.rate[1]} runs on the library",
                      markup=False)
        if finding.path:
            # a command to copy: never wrapped, whatever the width
            how = "--transport memory" if args.backend == "simulator" else f"--backend {args.backend} --repeat 50"
            out.print(f"    reproduce: quicsim run {finding.path} {how}", markup=False, soft_wrap=True)
        seeds = sorted(result.failing_seeds.get(finding.signature, [finding.seed]))
        if len(seeds) > 1:
            more = len(seeds) - FAILING_SEEDS_SHOWN
            out.print(f"    every {finding.signature} seed ({len(seeds)}): "
                      f"{', '.join(map(str, seeds[:FAILING_SEEDS_SHOWN]))}"
                      + (f" and {more} more (--json lists them all)" if more > 0 else ""), markup=False)
            out.print(f"    rerun one: {one_seed_command(args)}", markup=False, soft_wrap=True)
    return status


def one_seed_command(args: argparse.Namespace) -> str:
    """The fuzz command that runs one seed's program again (what draws it: seed, max ops, swarm)."""
    from ..cli import build_parser  # (the parser imports this module's command lazily too)

    parser = build_parser().commands["fuzz"]
    command = ["quicsim fuzz --runs 1 --seed SEED"]
    for option, value in (("--max-ops", args.max_ops), ("--swarm", args.swarm), ("--backend", args.backend)):
        if value != parser.get_default(option.lstrip("-").replace("-", "_")):
            command.append(f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}")
    command += [f"--inject {fault}" for fault in args.inject]
    return " ".join(command)


#: failing seeds listed per kind of failure in fuzz's text output (--json has them all)
FAILING_SEEDS_SHOWN = 20


def campaign_json(result: CampaignResult, faults: frozenset[str]) -> dict[str, Any]:
    from ..probes import PROBES

    return {
        "runs": result.runs, "seeds": result.seeds, "elapsed": round(result.elapsed, 3),
        "runs_per_second": round(result.runs / max(result.elapsed, 1e-9), 2), "api_operations": result.ops,
        "faults": sorted(faults), "stopped_early": result.stopped_early, "stopped_why": result.stopped_why,
        "unfinished": result.unfinished,
        "no_handshake": result.no_handshake, "failures": dict(result.failures),
        "rerun": [{"seed": seed, "died_on": workers} for seed, workers in sorted(result.rerun.items())],
        "failing_seeds": {sig: sorted(seeds) for sig, seeds in result.failing_seeds.items()},
        "findings": [{"signature": f.signature, "seed": f.seed, "original_ops": f.original_ops,
                      "shrunk_ops": f.program.api_op_count(), "path": str(f.path) if f.path else None,
                      "reproduced": f.reproduced, "detail": f.detail,
                      "rate": None if f.rate is None else {"failed": f.rate[0], "runs": f.rate[1]},
                      "features": None if f.program.features is None else sorted(f.program.features)}
                     for f in result.findings],
        "probes": {name: {"hits": result.probe_hits.get(name, 0), "runs": result.probe_runs.get(name, 0)}
                   for name in PROBES},
        "probes_never_hit": [name for name in PROBES if not result.probe_hits.get(name)],
    }

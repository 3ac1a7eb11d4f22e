"""The ``quicsim`` command: ``run`` scenario files, ``demo``, ``certs``.

Exit status: 0 everything met its expectation, 1 something did not, 2 bad input (one
line naming what and where, never a traceback), 130 interrupted (after printing what
finished).
"""

from __future__ import annotations

import argparse
import logging
import asyncio
import difflib
import json
import os
import sys
import tempfile
from dataclasses import replace
from typing import Any, Mapping, NoReturn, Sequence, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from . import certs as _certs
from . import interrupt
from .fuzz.swarm import DEFAULT_SWARM
from .errors import UsageError
from .loader import load_scenarios
from .network import NetworkError, NetworkProfile
from .outpaths import output_dir, output_file
from .report import print_failure_rates, print_failures, print_skips, results_table
from .outcomes import MSQUIC_PREEMPT, MSQUIC_WINDOW_MS
from .run_options import (RunOptions, add_run_options, chance, fault, fraction, non_negative, number, positive_int,
                          window_ms)
from .runner import result_json, run_job, seeds_for, transport_for
from .scenario_spec import ScenarioSpec
from .settings import FAULTS

_N = TypeVar("_N", int, float)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: dict[str, argparse.Action] = {}  # option string -> its action (for suggestions)
        self.commands: Mapping[str, _Parser] = {}  # subcommand -> its parser
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.update(dict.fromkeys(action.option_strings, action))
        return action

    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


#: Options other tools spell differently: (command, what a user may type) -> quicsim's option.
_OTHER_NAMES = {
    ("run", "--html"): "--report",
    ("run", "--qlog"): "--trace",
    ("run", "--jsonl"): "--trace",
    ("run", "--fault"): "--inject",
    ("run", "--seeds"): "--repeat",
    ("explain", "--report"): "--html",
}


def _unrecognized(parser: _Parser, command: str | None, extras: list[str]) -> str:
    """One line for arguments no option takes, naming the option meant when one is near."""
    prog = f"quicsim {command}" if command else "quicsim"
    options = parser.commands[command].options if command else parser.options
    for extra in extras:
        if not extra.startswith("-"):
            continue
        name = extra.split("=", 1)[0]
        meant = _OTHER_NAMES.get((command or "", name))
        if meant is None:
            close = difflib.get_close_matches(name, [o for o in options if o.startswith("--")], n=1, cutoff=0.75)
            meant = close[0] if close else None
        if meant in options:
            action = options[meant]
            metavar = f" {action.metavar or action.dest.upper()}" if action.nargs != 0 else ""
            return f"{prog}: no option {name}; did you mean {meant}{metavar} ({action.help})?"
    return f"{prog}: unrecognized arguments: {' '.join(extras)}"


_seed = number(int, lambda v: v >= 0, ">= 0")


def build_parser() -> _Parser:
    parser = _Parser(prog="quicsim", description="MsQuic's stream API and SEND_COMPLETE contract, simulated on aioquic.")
    parser.add_argument("--version", action="version", version=f"quicsim {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = sub.choices

    run = sub.add_parser("run", help="run scenario files over a lossy loopback link")
    run.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    run.add_argument("-k", dest="keyword", help="only scenarios whose name contains this")
    run.add_argument("--json", action="store_true", help="one JSON object per run on stdout, nothing else")
    run.add_argument("--report", metavar="FILE", help="write a self-contained HTML timeline report to FILE")
    add_run_options(run)  # the options that make a run: declared once, with the reproduce line

    demo = sub.add_parser("demo", help="a live loopback demo of the send-after-shutdown race")
    demo.add_argument("--inject", type=fault, action="append", default=[], metavar="FAULT",
                      help=f"switch a fault on in the client and watch the ledger catch it ({', '.join(FAULTS)})")
    demo.add_argument("--loss", type=fraction, default=0.05, help="loss fraction of the link (default 0.05)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the link's loss decisions (default 1)")

    fuzz = sub.add_parser("fuzz", help="random API programs on the in-memory link, failures shrunk to scenario files")
    fuzz.add_argument("--runs", type=positive_int, default=200, help="programs to run (seeds SEED..SEED+RUNS-1)")
    fuzz.add_argument("--seed", type=_seed, default=0, help="first seed, >= 0 (default 0)")
    fuzz.add_argument("--jobs", type=positive_int, default=1, help="worker processes")
    fuzz.add_argument("--max-ops", type=positive_int, default=12, help="API operations per program, at most")
    fuzz.add_argument("--inject", type=fault, action="append", default=[], metavar="FAULT",
                      help=f"switch a fault on in every program's client ({', '.join(FAULTS)})")
    fuzz.add_argument("--out", default="fuzz-failures", metavar="DIR", help="where repro scenario files go")
    fuzz.add_argument("--time-budget", type=non_negative, metavar="SECONDS",
                      help="end the campaign after this (runs in flight get a few more seconds, then are stopped)")
    fuzz.add_argument("--run-budget", type=number(float, lambda v: v > 0, "> 0"), default=30.0, metavar="SECONDS",
                      help="wall-clock seconds one run may take before it is stopped and reported as a hang")
    fuzz.add_argument("--scheduler", metavar="ADDRESS",
                      help="run on the Dask cluster of this scheduler (tcp://HOST:8786) instead of --jobs local "
                           "processes; needs the dask extra: pip install '.[dask]'")
    fuzz.add_argument("--json", action="store_true", help="print one JSON object (summary, findings, probes)")
    fuzz.add_argument("--check-determinism", type=number(int, lambda v: v >= 0, ">= 0"), default=100, metavar="N",
                      help="run each seed divisible by N twice and compare trace, qlog and datagrams (0: never)")
    fuzz.add_argument("--backend", choices=("simulator", "msquic"), default="simulator",
                      help="simulator (default): programs on the in-memory link; msquic: on the real libmsquic "
                           "over loopback UDP (no fault needed: it finds what the library does)")
    fuzz.add_argument("--msquic-lib", metavar="PATH",
                      help="the libmsquic for --backend msquic (default: $QUICSIM_MSQUIC_LIB, else the system's)")
    fuzz.add_argument("--swarm", type=fraction, default=DEFAULT_SWARM, metavar="RATIO",
                      help="fraction of runs that are swarm runs, generated from a random subset of operation "
                           f"kinds, flags and network features (default {DEFAULT_SWARM:g})")

    explain = sub.add_parser("explain", help="the life of each send in a trace, leaked sends first")
    explain.add_argument("trace", metavar="TRACE", help="a JSON Lines trace (quicsim run --trace DIR)")
    explain.add_argument("--send", metavar="ID", help="only this send (send_id, or CONN:send_id)")
    explain.add_argument("--html", metavar="FILE", help="also write a self-contained HTML timeline")

    check = sub.add_parser("check", help="re-judge recorded traces offline with the ledger (exit 1: leak, violation or "
                                         "a history that ends early)")
    check.add_argument("trace", nargs="*", metavar="TRACE", help="JSON Lines histories (quicsim run --trace DIR)")
    check.add_argument("--msquic-log", metavar="FILE", help="judge a real MsQuic application's stdout log instead "
                                                            "(plain or .gz; - reads stdin)")
    check.add_argument("--to-trace", metavar="OUT", help="with --msquic-log: also write the log's history as a "
                                                         "JSON Lines trace, for quicsim explain")
    check.add_argument("--json", action="store_true", help="with --msquic-log: print the verdict as one JSON object "
                                                           "(per-stream counts, lost sends, the report's lines)")

    backends = sub.add_parser("backends", help="what can run the MsQuic-style API here: the simulator, the real "
                                               "libmsquic (and its version)")
    backends.add_argument("--msquic-lib", metavar="PATH", help="the libmsquic to load (default: $QUICSIM_MSQUIC_LIB, "
                                                               "else the system's)")
    backends.add_argument("--json", action="store_true", help="print one JSON object")

    outcomes = sub.add_parser("outcomes", help="run one scenario over many seeds (with preemption that lets "
                                               "the network in) and count its distinct outcomes")
    outcomes.add_argument("path", metavar="SCENARIO", help="a scenario file")
    outcomes.add_argument("-k", dest="keyword", help="the scenario whose name contains this (for a file with several)")
    outcomes.add_argument("--seeds", type=positive_int, default=200, help="seeds to run (default 200)")
    outcomes.add_argument("--seed", type=int, help="first seed (default: the scenario's own)")
    outcomes.add_argument("--preempt", type=chance, metavar="P",
                          help=f"chance of a preemption point after each API call (default {MSQUIC_PREEMPT:g}, "
                               "the model calibrated on the library; 0: program order)")
    outcomes.add_argument("--preempt-window", type=window_ms, metavar="MS",
                          help=f"longest network window at a preemption point (default {MSQUIC_WINDOW_MS:g})")
    outcomes.add_argument("--send-buffering", choices=("on", "off"),
                          help="force SendBufferingEnabled on or off on both sides")
    outcomes.add_argument("--inject", "--fault", dest="inject", type=fault, action="append", default=[],
                          metavar="FAULT", help="switch a fault on in the client (repeatable)")
    outcomes.add_argument("--transport", choices=("udp", "memory"),
                          help="default memory: deterministic, so each outcome's seed replays it")
    outcomes.add_argument("--json", action="store_true", help="print one JSON object")

    diff = sub.add_parser("diff", help="run one scenario on the simulator and on the real libmsquic and show the "
                                       "outcomes each reached, side by side (exit 1: the sets differ)")
    diff.add_argument("path", metavar="SCENARIO", help="a scenario file")
    diff.add_argument("-k", dest="keyword", help="the scenario whose name contains this (for a file with several)")
    diff.add_argument("--runs", type=positive_int, default=20, help="runs on each backend (default 20)")
    diff.add_argument("--seed", type=int, help="first seed (default: the scenario's own)")
    diff.add_argument("--inject", "--fault", dest="inject", type=fault, action="append", default=[],
                      metavar="FAULT", help="switch a fault on on the simulator's side only")
    diff.add_argument("--msquic-lib", metavar="PATH",
                      help="the libmsquic (default: $QUICSIM_MSQUIC_LIB, else the system's)")
    diff.add_argument("--json", action="store_true", help="print one JSON object")

    certs = sub.add_parser("certs", help="make a new test CA and localhost certificate")
    certs.add_argument("dir", nargs="?", default="certs", metavar="DIR",
                       help="folder for ca.pem, server.pem and server.key (default: certs); "
                            "point QUICSIM_CERTS at it to use them")
    certs.add_argument("--force", action="store_true", help="replace certificate files already in DIR")
    return parser


def _run(args: argparse.Namespace) -> int:
    # An observer that stops (a trace on a full disk) is said once, at the end.
    logging.getLogger("quicsim.observers").setLevel(logging.ERROR)
    options = RunOptions.from_args(args)
    specs = load_scenarios(args.paths, args.keyword)
    for spec in specs:
        try:
            NetworkProfile.from_dict({**spec.network, **options.network})
        except NetworkError as exc:
            raise UsageError(f"{spec.file}:{spec.line}: {exc}") from None
    if args.trace:
        output_dir(args.trace, "--trace")
    if args.report:
        output_file(args.report, "--report")
    trace_dir = args.trace
    scratch = None
    if args.report and not trace_dir:
        scratch = tempfile.TemporaryDirectory(prefix="quicsim-trace-")
        trace_dir = scratch.name
    if options.peer is not None or options.peer_client is not None:
        _check_peer_options(options)
    if options.backend == "msquic":
        _check_msquic_options(args)
    options = replace(options, trace_dir=trace_dir)
    jobs = [(spec, seed) for spec in specs for seed in seeds_for(spec, options)]
    if args.check_determinism:
        for spec in specs:
            if transport_for(spec, options) != "memory":
                raise UsageError(f"{spec.file}:{spec.line}: --check-determinism needs the memory transport "
                                 f"({spec.name} runs over udp); add --transport memory")
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    err = Console(stderr=True, highlight=False)
    results: list[dict[str, Any]] = []
    show_progress = not args.json and out.is_terminal

    def run_one(spec: ScenarioSpec, seed: int) -> dict[str, Any]:
        if not args.check_determinism:
            return run_job(spec, seed, options)
        from .determinism import check_run

        result, check = check_run(spec, seed, options)
        result["determinism"] = check.as_dict()
        if not check.identical:
            result["passed"] = False
            result["error"] = f"not deterministic: {check.difference}"
        return result

    def run_all() -> None:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True, disable=not show_progress) as progress:
            task = progress.add_task("scenarios", total=len(jobs))
            for spec, seed in jobs:
                if interrupt.requested():
                    return
                progress.update(task, description=f"{spec.name} (seed {seed})")
                result = run_one(spec, seed)
                results.append(result)
                progress.advance(task)
                if args.json:
                    print(result_json(result), flush=True)

    interrupted = False
    interrupt.install()
    try:
        run_all()
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C: the running scenario was torn down
        interrupted = True
    finally:  # a Ctrl-C after the last run finished interrupted nothing
        interrupted = interrupted or (interrupt.requested() and len(results) < len(jobs))
    if not args.json:
        if results:
            out.print(results_table(results, out.width))
        print_skips(out, results)
        print_failures(out, results, options.command_args())
        if options.backend == "msquic":
            print_failure_rates(out, results)
        skipped = sum(bool(r.get("skipped")) for r in results)
        passed = sum(r["passed"] for r in results) - skipped
        if args.probes and results:
            from collections import Counter

            from .probes import report_lines

            hits: Counter[str] = Counter()
            runs_hit: Counter[str] = Counter()
            for r in results:
                hits.update(r.get("probes", {}))
                runs_hit.update(r.get("probes", {}).keys())
            for line in report_lines(hits, runs_hit, len(results)):
                out.print(line, markup=False)
        if args.check_determinism:
            same = sum(r["determinism"]["identical"] for r in results)
            out.print(f"determinism: {same} of {len(results)} runs identical when repeated "
                      f"(trace, qlog, datagrams, verdict)")
        out.print(f"{passed} passed, {len(results) - passed - skipped} failed"
                  + (f", {skipped} skipped" if skipped else "")
                  + (f" (interrupted after {len(results)} of {len(jobs)} runs)" if interrupted else ""))
    if args.report and results:
        from .explain import analyze, load_trace
        from .report_html import write_report

        analyses = [analyze(load_trace(r["trace"]), f"{r['scenario']} (seed {r['seed']})")
                    for r in results if r.get("trace")]
        write_report(args.report, analyses, title=f"quicsim run {' '.join(args.paths)}")
        if not args.json:
            out.print(f"report: {args.report}")
    if scratch is not None:
        scratch.cleanup()
    if interrupted:
        return 130
    unwritten = list(dict.fromkeys(text for r in results for text in r.get("output_errors", ())))
    if unwritten:
        # Each run was judged all the same (above); what was asked for could not be written.
        print(f"quicsim run: could not write {unwritten[0]}"
              + (f" (and {len(unwritten) - 1} more)" if len(unwritten) > 1 else "")
              + "; every run was judged all the same (above)", file=sys.stderr)
        return 2
    return 0 if all(r["passed"] for r in results) else 1


def _check_peer_options(options: RunOptions) -> None:
    """--peer, --peer-client: what a foreign server or client cannot be combined with (one
    line, exit 2, before any run)."""
    flag = "--peer" if options.peer is not None else "--peer-client"
    if options.peer is not None and options.peer_client is not None:
        raise UsageError("quicsim run: --peer and --peer-client cannot be used together (one end of a run is "
                         "quicsim's)")
    if options.backend == "msquic":
        side = "client" if flag == "--peer" else "server"
        raise UsageError(f"quicsim run: {flag} puts quicsim's {side} against the peer; it cannot be used with "
                         "--backend msquic")
    if options.transport == "memory" or options.check_determinism:
        raise UsageError(f"quicsim run: {flag} runs over loopback UDP (the peer is a real process); it cannot be "
                         "used with " + ("--transport memory" if options.transport == "memory"
                                         else "--check-determinism"))


def _check_msquic_options(args: argparse.Namespace) -> None:
    """--backend msquic: the library must load, and no option may ask for what only the
    simulator has (one line, exit 2, before any run)."""
    from .errors import BackendError
    from .backends.msquic.runtime import Runtime, simulator_faults

    for option, value in (("--transport memory", args.transport == "memory"),
                          ("--preempt", args.preempt is not None),
                          ("--preempt-window", args.preempt_window is not None),
                          ("--check-determinism", args.check_determinism),
                          ("--probes", args.probes)):
        if value:
            raise UsageError(f"quicsim run: {option} needs the simulator; it cannot be used with --backend msquic")
    injected = simulator_faults(frozenset(args.inject))
    if injected:
        raise UsageError(f"quicsim run: --inject {injected[0]} is the simulator's fault; the msquic backend runs "
                         "the library as it is")
    try:
        Runtime.get(args.msquic_lib)
    except BackendError as exc:
        raise UsageError(f"quicsim run: --backend msquic: {exc}") from None


def _table_console() -> Console:
    """Where a wide table goes: the terminal, or 200 columns when piped (no folding)."""
    out = Console(highlight=False)
    return out if out.is_terminal else Console(highlight=False, width=200)


def _one_scenario(args: argparse.Namespace, command: str) -> ScenarioSpec:
    """The one scenario ``-k`` names in ``args.path``: the one whose name is the keyword,
    else the only one whose name contains it."""
    specs = load_scenarios([args.path], args.keyword)
    exact = [s for s in specs if s.name == args.keyword]
    if len(exact) == 1:
        return exact[0]
    if len(specs) > 1:
        raise UsageError(f"quicsim {command}: {args.path} holds {len(specs)} scenarios"
                         f"{' matching -k ' + args.keyword if args.keyword else ''}; choose one with -k")
    return specs[0]


def _diff(args: argparse.Namespace) -> int:
    """quicsim diff: exit 0 when both backends reached the same outcome set, 1 when not."""
    from .errors import BackendError
    from .backends.msquic.runtime import Runtime
    from .diff import diff_scenario, print_diff

    spec = _one_scenario(args, "diff")
    try:
        Runtime.get(args.msquic_lib)
    except BackendError as exc:
        raise UsageError(f"quicsim diff: {exc}") from None
    interrupt.install()
    try:
        result = diff_scenario(spec, args.runs, frozenset(args.inject), args.msquic_lib, args.seed)
    except ValueError as exc:
        raise UsageError(f"quicsim diff: {exc}") from None
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print_diff(_table_console(), result)
    return 0 if result.same else 1


def _outcomes(args: argparse.Namespace) -> int:
    """quicsim outcomes: exit 1 when a run reached an outcome the scenario does not allow."""
    from .outcomes import outcome_set, print_outcome_set

    spec = _one_scenario(args, "outcomes")
    first = spec.seed if args.seed is None else args.seed
    options = RunOptions(faults=frozenset(args.inject), transport=args.transport or "memory",
                         send_buffering=None if args.send_buffering is None else args.send_buffering == "on",
                         preempt=MSQUIC_PREEMPT if args.preempt is None else args.preempt,
                         preempt_window_ms=MSQUIC_WINDOW_MS if args.preempt_window is None else args.preempt_window)
    interrupt.install()
    result = outcome_set(spec, list(range(first, first + args.seeds)), options)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print_outcome_set(_table_console(), result)
    if result.interrupted:
        return interrupt.EXIT_STATUS
    return 1 if result.unexpected else 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .ledger import Ledger

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    ledger = Ledger()
    interrupt.install()
    try:
        asyncio.run(interrupt.cancellable(run_demo(console, faults=tuple(args.inject), loss=args.loss,
                                                   seed=args.seed, ledger=ledger)))
    except ConnectionError as exc:  # e.g. no handshake through a very lossy link
        console.print(f"demo: {exc}", markup=False)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print()
        console.print("interrupted; the ledger so far:", markup=False)
        console.print(ledger.summary(), markup=False)
        return interrupt.EXIT_STATUS
    console.print()
    console.print(ledger.summary(), style="green" if ledger.ok else "bold red", markup=False)
    if args.inject:
        return 0 if not ledger.ok else 1  # a demo with a fault succeeds when the ledger caught it
    return 0 if ledger.ok else 1


def _explain(args: argparse.Namespace) -> int:
    from .explain import analyze, explain_text, load_trace

    if args.html:
        output_file(args.html, "--html")
    analysis = analyze(load_trace(args.trace), args.trace)
    print(explain_text(analysis, args.send))
    if args.html:
        from .report_html import write_report

        write_report(args.html, [analysis])
        print(f"wrote {args.html}")
    return 1 if analysis.leaks or analysis.violations else 0


def _make_certs(args: argparse.Namespace) -> int:
    folder = output_dir(args.dir, "certs")
    if not args.force:
        planned = _certs.paths_in(folder)
        existing = [p for p in (planned.ca, planned.cert, planned.key) if p.exists()]
        if existing:
            raise UsageError(f"certs {args.dir}: {existing[0]} exists; --force replaces it")
    paths = _certs.generate(folder)
    print(f"wrote {paths.ca}, {paths.cert}, {paths.key}")
    return 0


def _backends(args: argparse.Namespace) -> int:
    """quicsim backends: one line per backend (exit 2 when a library named with --msquic-lib
    or $QUICSIM_MSQUIC_LIB cannot be used)."""
    from .backends import MSQUIC_LIB_ENV, describe

    infos = describe(args.msquic_lib)
    if args.json:
        print(json.dumps({"backends": [info.as_dict() for info in infos]}))
    else:
        for info in infos:
            state = f"available  {info.version}" if info.available else "unavailable"
            print(f"{info.name:<10} {state:<22} {info.detail}")
    named = args.msquic_lib or os.environ.get(MSQUIC_LIB_ENV)
    return 2 if named and not infos[-1].available else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:
            raise UsageError(_unrecognized(parser, args.command, extras))
        if args.command is None:  # bare `quicsim`: what it can do
            parser.print_help()
            return 0
        if args.command in ("run", "demo", "fuzz", "outcomes", "diff"):
            _certs.default_paths()  # a $QUICSIM_CERTS without the files: one line now, not per run
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "fuzz":
            from .fuzz.command import main as fuzz_main

            return fuzz_main(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "check":
            if args.msquic_log is not None or args.to_trace is not None or args.json:
                from .msquic_log.command import from_args
                return from_args(args.msquic_log, args.to_trace, args.trace, args.json)
            if not args.trace:
                raise UsageError("quicsim check: give a TRACE, or --msquic-log FILE")
            from .check import main as check_main
            return check_main(args.trace)
        if args.command == "backends":
            return _backends(args)
        if args.command == "diff":
            return _diff(args)
        if args.command == "outcomes":
            return _outcomes(args)
        return _make_certs(args)
    except UsageError as exc:
        print(f"quicsim: error: {exc}" if not str(exc).startswith("quicsim") else f"{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head & co.
        return 0
    finally:
        interrupt.uninstall()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

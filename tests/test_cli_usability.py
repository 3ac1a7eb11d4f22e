"""The command line as a new user meets it: usage, version, help for every option, bad
output paths and seeds as one line with exit 2, commands to copy never wrapped."""

from __future__ import annotations

import argparse
import io

import pytest
from rich.console import Console

from quicsim.cli import build_parser
from quicsim.report import print_failures, results_table

from .test_cli import GOOD, _write, quicsim


def _one_line_exit_2(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version_and_bare_command_prints_usage():
    version = quicsim("--version")
    assert version.returncode == 0 and version.stdout.strip() == "quicsim 0.1.0"
    bare = quicsim()
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.startswith("usage: quicsim") and "run" in bare.stdout and "fuzz" in bare.stdout


def test_every_option_of_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, subparser in [("quicsim", parser), *sub.choices.items()]:
        for action in subparser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert missing == []


def test_negative_fuzz_seed_is_one_line():
    _one_line_exit_2(quicsim("fuzz", "--seed", "-5", "--runs", "1"), "--seed", "-5")


@pytest.mark.parametrize("make,args,needle", [
    ("file", ["run", "GOOD", "--trace", "TARGET"], "is a file, expected a folder"),
    ("dir", ["run", "GOOD", "--report", "TARGET"], "is a folder, expected a file"),
    ("file", ["run", "GOOD", "--report", "TARGET/r.html"], "is a file, not a folder"),
    ("file", ["fuzz", "--runs", "1", "--out", "TARGET"], "is a file, expected a folder"),
    ("file", ["certs", "TARGET"], "is a file, expected a folder"),
    ("file", ["explain", "GOOD", "--html", "TARGET/x.html"], "is a file, not a folder"),
    (None, ["run", "GOOD", "--trace", "/proc/quicsim-no-such/dir"], "cannot create"),
])
def test_bad_output_paths_are_one_line_before_any_work(tmp_path, make, args, needle):
    good = _write(tmp_path, "good.py", GOOD)
    target = tmp_path / "target"
    if make == "file":
        target.write_text("keep me")
    elif make == "dir":
        target.mkdir()
    args = [str(good) if a == "GOOD" else a.replace("TARGET", str(target)) for a in args]
    proc = quicsim(*args)
    _one_line_exit_2(proc, needle)
    assert "passed" not in proc.stdout and "runs:" not in proc.stdout  # nothing ran
    if make == "file":
        assert target.read_text() == "keep me"


def test_certs_refuses_to_overwrite_without_force(tmp_path):
    assert quicsim("certs", str(tmp_path)).returncode == 0
    ca = (tmp_path / "ca.pem").read_bytes()
    _one_line_exit_2(quicsim("certs", str(tmp_path)), "ca.pem", "--force")
    assert (tmp_path / "ca.pem").read_bytes() == ca
    forced = quicsim("certs", str(tmp_path), "--force")
    assert forced.returncode == 0 and (tmp_path / "ca.pem").read_bytes() != ca


def _result(name: str, **kw) -> dict:
    return {"scenario": name, "file": "/tmp/" + "a-long-folder-name/" * 8 + "x.py", "seed": 1, "expect": "ok",
            "passed": True, "error": None, "sends": 3, "completions": 3, "acked": 2, "canceled": 1,
            "rejected": 0, "leaks": [], "violations": [], "wall_time": 0.5, **kw}


@pytest.mark.parametrize("width", [80, 160])
def test_reproduce_command_is_never_wrapped(width):
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    print_failures(console, [_result("late", passed=False)], ["--inject", "drop-send-after-shutdown"])
    line = next(line for line in out.getvalue().splitlines() if "reproduce:" in line)
    assert line.strip().startswith("reproduce: quicsim run /tmp/")
    assert line.rstrip().endswith("--inject drop-send-after-shutdown")


def test_scenario_names_stay_whole_on_80_columns():
    names = ["unstarted_stream_then_connection_shutdown", "stop_sending_races_graceful_shutdown", "fine"]
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    console.print(results_table([_result(n) for n in names], console.width))
    text = out.getvalue()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    first_column = "".join(line[:line.index(" ", 2)].strip() if line.strip() else "\n"
                           for line in text.splitlines()[3:])
    for name in names:
        assert name in first_column

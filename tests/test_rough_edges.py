"""Small things a user meets at the command line: each says what is wrong in one line
(exit 2) or leaves nothing behind that it did not need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quicsim.cli import main

REPO = Path(__file__).resolve().parent.parent


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("args, typed, meant", [
    (["run", "scenarios", "--html", "r.html"], "--html", "--report FILE"),
    (["run", "--qlog", "out", "scenarios"], "--qlog", "--trace DIR"),
    (["run", "scenarios", "--repot", "r.html"], "--repot", "--report FILE"),
    (["explain", "t.jsonl", "--report", "r.html"], "--report", "--html FILE"),
])
def test_an_option_by_another_name_points_at_quicsims_own(capsys, args, typed, meant):
    assert main(args) == 2
    line = _one_line(capsys)
    assert line.startswith(f"quicsim {args[0]}: no option {typed}; did you mean {meant} ("), line


def test_an_option_near_no_other_is_named_as_it_was(capsys):
    assert main(["run", "scenarios", "--zzzz"]) == 2
    assert _one_line(capsys) == "quicsim run: unrecognized arguments: --zzzz"


def test_a_clean_fuzz_run_leaves_no_folder_and_a_failing_one_makes_it(tmp_path, capsys):
    out = tmp_path / "nested" / "fuzz-failures"
    assert main(["fuzz", "--runs", "3", "--out", str(out)]) == 0
    assert "failures: none" in capsys.readouterr().out
    assert not out.parent.exists()
    assert main(["fuzz", "--runs", "30", "--inject", "drop-send-after-shutdown", "--out", str(out)]) == 1
    assert sorted(p.suffix for p in out.iterdir()) == [".py"]


def test_fuzz_reports_every_failing_seed_of_each_kind(tmp_path, capsys):
    args = ["fuzz", "--runs", "40", "--inject", "drop-send-after-shutdown", "--out", str(tmp_path)]
    assert main([*args, "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    by_kind = summary["failing_seeds"]
    assert by_kind and {kind: len(seeds) for kind, seeds in by_kind.items()} == summary["failures"]
    assert max(map(len, by_kind.values())) > 1, "needs a kind that failed on more than one seed"
    assert main(args) == 1
    text = capsys.readouterr().out
    for kind, seeds in by_kind.items():
        if len(seeds) > 1:
            assert f"every {kind} seed ({len(seeds)}): {', '.join(map(str, seeds))}" in text, text
    # each seed listed fails again on its own, with the command the output gives
    command = next(line for line in text.splitlines() if "rerun one:" in line).split("rerun one: quicsim ")[1]
    kind, seeds = next((k, s) for k, s in by_kind.items() if len(s) > 1)
    again = command.replace("SEED", str(seeds[-1])).split() + ["--json", "--out", str(tmp_path / "again")]
    assert main(again) == 1
    assert json.loads(capsys.readouterr().out)["failing_seeds"] == {kind: [seeds[-1]]}


@pytest.mark.parametrize("present", [[], ["ca.pem"], None])
def test_a_quicsim_certs_folder_without_the_files_is_one_line(tmp_path, present):
    folder = tmp_path / "certs"
    if present is not None:
        folder.mkdir()
        for name in present:
            (folder / name).write_text("")
    proc = subprocess.run([sys.executable, "-m", "quicsim", "demo"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QUICSIM_CERTS": str(folder)})
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"QUICSIM_CERTS={folder}" in lines[0]
    if present is None:
        assert "no such folder" in lines[0]
    else:
        missing = [n for n in ("ca.pem", "server.pem", "server.key") if n not in present]
        assert f"no {', '.join(missing)} in it" in lines[0]


def test_a_quick_bench_run_does_not_judge_the_targets():
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick"], capture_output=True, text=True, timeout=600,
                          cwd=REPO, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 7, proc.stdout
    assert all("not judged" in row for row in rows) and "MISSED" not in proc.stdout, proc.stdout
    assert "the targets are not judged" in proc.stdout


def test_the_demo_explains_its_columns_above_them():
    proc = subprocess.run([sys.executable, "-m", "quicsim", "demo"], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:5] == ["time", "side", "stream", "what", "fields"])
    legend = " ".join(lines[:header])
    for term in ("time:", "side:", "stream:", "what:", "call NAME", "conn NAME", "FAULT", "SEND_COMPLETE in green"):
        assert term in legend, legend
    rows = [line for line in lines[header + 1:] if line[:8].strip().replace(".", "").isdigit()]
    assert len(rows) > 10
    what, fields = lines[header].index("what"), lines[header].index("fields")
    for row in rows:  # each row's "what" and fields start under their headings
        assert row[what - 1] == " " and row[what] != " ", row
        assert row[fields - 1] == " ", row
    assert any(row[what:].startswith("call send") for row in rows)

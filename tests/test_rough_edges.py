"""Small things a user meets at the command line: each says what is wrong in one line
(exit 2) or leaves nothing behind that it did not need."""

from __future__ import annotations

import pytest

from quicsim.cli import main


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

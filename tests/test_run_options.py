"""quicsim run's options are declared once (quicsim.run_options.RUN_OPTIONS): every one
reaches the parser, RunOptions and both sides' settings, and every one that changes what
a run does survives the "reproduce:" line: parse -> options -> reproduce line -> parse
gives the same options and the same settings."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from quicsim import Settings
from quicsim.cli import build_parser
from quicsim.run_options import RUN_OPTIONS, RunOption, RunOptions

#: what the reproduce line leaves out on purpose: the run's own seed and --repeat 1 go on
#: it from the row; the rest write or count, they do not change what a run does
NOT_REPRODUCED = {"--seed", "--repeat", "--trace", "--probes"}
#: quicsim run's arguments that are not run options: what to run and what to print
NOT_RUN_OPTIONS = {"-h", "-k", "--json", "--report"}

SIDES = (Settings(send_buffering=True, faults=frozenset({"reentrant-close"})), Settings(initial_rtt_ms=50))


def _parse(*args: str) -> RunOptions:
    return RunOptions.from_args(build_parser().parse_args(["run", "scenario.py", *args]))


def _typed(option: RunOption) -> list[str]:
    return [option.flag] if option.action == "store_true" else [option.flag, option.example]


def _reproduced(options: RunOptions) -> RunOptions:
    """``options`` with what the reproduce line leaves out set back to the defaults."""
    return replace(options, seed=None, repeat=None, trace_dir=None, probes=False)


def _round_trip(args: list[str]) -> tuple[RunOptions, RunOptions]:
    first = _parse(*args)
    return first, _parse(*first.command_args())


def test_the_table_is_every_option_of_quicsim_run():
    run = build_parser().commands["run"]
    declared = {option.flag for option in RUN_OPTIONS}
    assert set(run.options) - NOT_RUN_OPTIONS - {"--help"} == declared
    assert {o.flag for o in RUN_OPTIONS if not o.reproduce} == NOT_REPRODUCED
    names = {f.name for f in fields(RunOptions)}
    assert all(o.attr in names for o in RUN_OPTIONS)


@pytest.mark.parametrize("option", RUN_OPTIONS, ids=lambda o: o.flag)
def test_each_option_round_trips_through_the_reproduce_line(option):
    first, again = _round_trip(_typed(option))
    assert first != RunOptions(), f"{option.flag} {option.example} changed nothing"
    if option.reproduce:
        assert option.flag in first.command_args()
        assert again == first
        assert again.settings_for(*SIDES) == first.settings_for(*SIDES)
    else:
        assert option.flag not in first.command_args()
        assert again == _reproduced(first)


def test_all_options_at_once_round_trip_and_reach_both_sides_settings():
    args = [arg for option in RUN_OPTIONS for arg in _typed(option)]
    first, again = _round_trip(args)
    assert again == _reproduced(first)
    client, server = first.settings_for(*SIDES)
    for option in RUN_OPTIONS:
        if option.settings is not None:
            value = option.value_in(first)
            assert getattr(client, option.settings) == getattr(server, option.settings) == value, option.flag
    assert client.faults == SIDES[0].faults | first.faults and server.faults == SIDES[1].faults
    assert client.initial_rtt_ms == SIDES[0].initial_rtt_ms and server.initial_rtt_ms == SIDES[1].initial_rtt_ms


def test_defaults_add_nothing_to_the_reproduce_line():
    assert _parse().command_args() == []
    assert _parse("--backend", "simulator").command_args() == []
    assert _parse("--send-buffering", "off").command_args() == ["--send-buffering", "off"]


def test_a_float_is_written_back_exactly():
    assert _round_trip(["--loss", "0.1234567891"])[1].network == {"loss": 0.1234567891}

"""The README's code runs: every fenced block and every command in it is checked here.

Executed, in a temporary folder with this interpreter's quicsim (``.venv/bin/quicsim`` and
``.venv/bin/python`` of the README stand for it): the pytest quick start (with the
``pyproject.toml`` block beside it, and again with the fault the text says makes it fail),
the scenario block and both commands that run it, ``pytest`` on it, and the three commands
of the fuzz loop, whose output must contain the excerpt the README shows.

Checked for what they name, not executed: the two set-up commands (each makes a fresh
virtualenv and installs quicsim; the suite's own run is the second one, and the scenario
library is run by tests/test_scenario_library.py), ``bash .ci/run`` (CI itself) and
``mkdocs serve`` (a server that does not end). A block or command of a kind not known here
fails the first test, so a new one cannot go unchecked.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cli_run import REPO, output, quicsim_shim, run

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```$", README, re.S | re.M)
INLINE_COMMANDS = [c for c in re.findall(r"`([^`\n]+)`", README)
                   if c.startswith((".venv/bin/", "bash ", "pytest ", "python"))]
SETUP_PREFIX = "python3 -m venv .venv && .venv/bin/pip install -q "


def _blocks(lang: str, needle: str = "") -> list[str]:
    return [text for kind, text in BLOCKS if kind == lang and needle in text]


def _one(lang: str, needle: str) -> str:
    found = _blocks(lang, needle)
    assert len(found) == 1, f"one {lang} block with {needle!r} in the README, found {len(found)}"
    return found[0]


def _shell_lines(needle: str) -> list[str]:
    return [line for line in _one("sh", needle).splitlines() if line.strip()]


def _as_run_here(command: str, bin_dir: Path) -> list[str]:
    """A README command line as argv, ``.venv/bin/quicsim`` being this interpreter's quicsim."""
    argv = command.split()
    if argv[0] == ".venv/bin/quicsim":
        return [str(bin_dir / "quicsim"), *argv[1:]]
    if argv[0] == ".venv/bin/python":
        return [sys.executable, *argv[1:]]
    if argv[0] == "pytest":
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[1:]]
    raise AssertionError(f"not a command this test runs: {command}")


def test_every_block_and_command_is_one_this_module_checks():
    known_sh = {"python3 -m venv", ".venv/bin/quicsim run late_send.py", ".venv/bin/quicsim fuzz",
                ".venv/bin/quicsim run findings/", ".venv/bin/quicsim explain traces/",
                ".venv/bin/quicsim check --msquic-log "}
    for lang, text in BLOCKS:
        if lang == "sh":
            for line in text.splitlines():
                assert any(line.startswith(k) for k in known_sh), f"README command not checked: {line}"
        elif lang == "python":
            assert "async def test_" in text or "@scenario(" in text, f"README Python block not checked:\n{text}"
        elif lang == "toml":
            assert text.startswith("[tool.pytest.ini_options]"), text
        elif lang == "":
            assert text.startswith("LEAK send"), f"README text block not checked:\n{text}"
        else:
            raise AssertionError(f"README block of an unchecked kind: {lang}")
    assert len(BLOCKS) == 9
    known_inline = {"bash .ci/run", '.venv/bin/pip install -q ".[docs]" && .venv/bin/mkdocs serve',
                    "pytest late_send.py"}
    assert set(INLINE_COMMANDS) == known_inline, INLINE_COMMANDS


def test_the_setup_commands_name_what_exists():
    """Structural only: the extras, the console script, the folder and the pytest options
    they name exist, and the test command is the one CI runs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    run_scenarios, run_tests = (_one("sh", "quicsim run scenarios/").strip(), _one("sh", "pytest").strip())
    assert run_scenarios == SETUP_PREFIX + ". && .venv/bin/quicsim run scenarios/"
    assert project["scripts"]["quicsim"] == "quicsim.__main__:main"
    assert len(list((REPO / "scenarios").glob("*.py"))) >= 10
    assert (REPO / "tests" / "test_scenario_library.py").is_file()
    assert run_tests == SETUP_PREFIX + '".[test,dask]" && .venv/bin/python -m pytest -q -n 2'
    extras = project["optional-dependencies"]
    assert any(d.startswith("pytest-xdist") for d in extras["test"]) and "dask" in extras and "docs" in extras
    ci = (REPO / ".ci" / "run").read_text()
    assert '.venv/bin/pip install -q ".[test,dask,docs]"' in ci and ".venv/bin/python -m pytest -q -n 2" in ci
    assert "mkdocs build --strict" in ci and (REPO / "mkdocs.yml").is_file()
    # the versions the README states are the ones the package declares
    assert project["requires-python"] == ">=3.11"
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in project["classifiers"]
        assert version in README


def _quick_start_project(folder: Path, test_source: str) -> None:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(_one("toml", "asyncio_default_fixture_loop_scope"))
    (folder / "test_quick_start.py").write_text(test_source)


def test_the_pytest_quick_start_passes_with_its_pyproject_settings(tmp_path):
    _quick_start_project(tmp_path / "p", _one("python", "async def test_"))
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"], cwd=tmp_path / "p")
    assert proc.returncode == 0, output(proc)
    assert "1 passed" in proc.stdout, output(proc)


def test_the_pytest_quick_start_fails_naming_the_send_a_fault_loses(tmp_path):
    source = _one("python", "async def test_")
    marker = "@pytest.mark.quicsim(loss=0.05, delay_ms=5, seed=3)"
    assert marker in source and 'faults=["drop-send-after-shutdown"]' in README
    faulty = source.replace(marker, marker[:-1] + ', faults=["drop-send-after-shutdown"])')
    _quick_start_project(tmp_path / "p", faulty)
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path / "p")
    assert proc.returncode == 1, output(proc)
    assert "LEAK" in proc.stdout and "'buf-late'" in proc.stdout, output(proc)


def test_the_scenario_block_runs_as_the_readme_says(tmp_path):
    bin_dir = quicsim_shim(tmp_path)
    (tmp_path / "late_send.py").write_text(_one("python", "@scenario("))
    plain, faulty = _shell_lines("quicsim run late_send.py")
    proc = run(_as_run_here(plain, bin_dir), cwd=tmp_path)
    assert proc.returncode == 0, output(proc)
    assert "3 passed, 0 failed" in proc.stdout, output(proc)
    proc = run(_as_run_here(faulty, bin_dir), cwd=tmp_path)
    assert proc.returncode == 1, output(proc)
    assert "LEAK" in proc.stdout and "'req-late'" in proc.stdout, output(proc)
    # `pytest late_send.py` collects the same scenarios as tests (one per seed)
    (tmp_path / "pyproject.toml").write_text(_one("toml", "asyncio_default_fixture_loop_scope"))
    proc = run(_as_run_here("pytest late_send.py", bin_dir) + ["-q"], cwd=tmp_path)
    assert proc.returncode == 0, output(proc)
    assert "3 passed" in proc.stdout, output(proc)


def test_the_fuzz_loop_runs_and_prints_what_the_readme_shows(tmp_path):
    bin_dir = quicsim_shim(tmp_path)
    fuzz, replay, explain = _shell_lines("quicsim fuzz")
    for command in (fuzz, replay):
        proc = run(_as_run_here(command, bin_dir), cwd=tmp_path)
        assert proc.returncode == 1, command + "\n" + output(proc)  # "Each exits 1 because it finds ... the leak"
    proc = run(_as_run_here(explain, bin_dir), cwd=tmp_path)
    assert proc.returncode == 1, output(proc)
    shown = _one("", "LEAK send").splitlines()
    printed = proc.stdout.splitlines()
    for line in shown:
        assert line in printed, f"the README shows {line!r}; quicsim explain printed:\n{proc.stdout}"


def test_the_msquic_log_command_prints_what_the_readme_says(tmp_path):
    (command,) = _shell_lines("--msquic-log")
    proc = run(_as_run_here(command, quicsim_shim(tmp_path)), cwd=REPO)
    assert proc.returncode == 1, output(proc)  # "It exits 1"
    quoted = re.search(r"the count the original bug report gave: `([^`]+)`", " ".join(README.split()))
    assert quoted is not None
    assert proc.stdout.splitlines()[-1].endswith(quoted.group(1)), output(proc)


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\(([^)#:]+)\)", README))))
def test_every_link_of_the_readme_leads_to_a_file(target):
    assert (REPO / target).is_file(), target


def test_every_anchor_of_the_readme_is_a_heading():
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", README, re.M)}
    anchors = re.findall(r"\]\(#([^)]+)\)", README)
    assert anchors and set(anchors) <= headings, (anchors, headings)

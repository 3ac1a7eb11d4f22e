"""quicsim backends: what can run the API here, its version, and one clear failure line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quicsim.backends import MSQUIC_LIB_ENV, describe, find_msquic

REPO = Path(__file__).resolve().parent.parent


def quicsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)


def _env_without_lib() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != MSQUIC_LIB_ENV}


def test_simulator_is_always_listed_as_available():
    out = quicsim("backends", "--json", env=_env_without_lib())
    # exit 0 whatever the system holds: nothing was named, so nothing named failed
    assert out.returncode == 0, out.stderr
    backends = {b["name"]: b for b in json.loads(out.stdout)["backends"]}
    assert set(backends) == {"simulator", "msquic"}
    assert backends["simulator"]["available"] is True
    assert backends["simulator"]["version"]


@pytest.mark.parametrize("make", ["missing", "not_a_library"])
def test_a_named_library_that_cannot_load_is_one_line_and_exit_2(tmp_path, make):
    path = tmp_path / "libmsquic.so"
    if make == "not_a_library":
        path.write_text("not an ELF file\n")
    out = quicsim("backends", "--msquic-lib", str(path), env=_env_without_lib())
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("msquic")]
    assert len(line) == 1 and "unavailable" in line[0] and str(path) in line[0]
    assert "--msquic-lib" in line[0]


def test_the_environment_variable_names_the_library(tmp_path):
    path = tmp_path / "nothing.so"
    env = _env_without_lib() | {MSQUIC_LIB_ENV: str(path)}
    out = quicsim("backends", "--json", env=env)
    assert out.returncode == 2
    msquic = json.loads(out.stdout)["backends"][1]
    assert msquic["available"] is False and msquic["library"] == str(path)
    assert f"${MSQUIC_LIB_ENV}" in msquic["detail"]


def test_the_option_outranks_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(MSQUIC_LIB_ENV, "/from/env.so")
    assert find_msquic("/from/option.so") == ("/from/option.so", "--msquic-lib")
    assert find_msquic(None) == ("/from/env.so", f"${MSQUIC_LIB_ENV}")


@pytest.mark.skipif(not os.environ.get(MSQUIC_LIB_ENV), reason=f"real MsQuic: set {MSQUIC_LIB_ENV}")
def test_the_real_library_reports_its_version():
    msquic = describe()[1]
    assert msquic.available, msquic.detail
    major, minor, patch = (int(x) for x in (msquic.version or "").split("."))
    assert (major, minor) >= (2, 0)
    assert "git " in msquic.detail

"""Running what a user runs, in a child process: ``quicsim`` and ``python`` from this
interpreter, bounded in time, with nothing of the parent pytest's configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 300  # seconds for one command; every command here is a few seconds on an idle machine


def quicsim_shim(folder: Path) -> Path:
    """A ``bin/`` folder whose ``quicsim`` is this interpreter's quicsim (as ``.venv/bin/quicsim``
    is after the README's set-up), so the commands run whatever installed the tests."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "quicsim"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m quicsim "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def child_env(bin_dir: Path | None = None) -> dict[str, str]:
    """The environment of a user's shell: no pytest or xdist variables of this run, no
    bytecode written into the examples, ``bin_dir`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], cwd: Path, bin_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``cwd``; the output of both streams, and the exit status."""
    return subprocess.run(args, cwd=cwd, env=child_env(bin_dir), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr

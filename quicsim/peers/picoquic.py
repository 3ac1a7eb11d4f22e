"""The picoquic peer: aiopquic (picoquic's Python binding, Python >= 3.12) in a virtualenv
of its own, running :mod:`quicsim.peers.picoquic_server` as a child process."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from .. import certs
from .process import ChildLauncher

#: the aiopquic releases the server script is written against (0.6: peer_address,
#: stop_stream and reset_stream as one call each, ip_family)
AIOPQUIC = "aiopquic>=0.6.1,<0.7"
SERVER = Path(__file__).resolve().parent / "picoquic_server.py"
REPO = Path(__file__).resolve().parent.parent.parent


def peers_dir() -> Path:
    """Where peers are installed: ``$QUICSIM_PEERS_DIR``, else ``.peers/`` in a checkout,
    else the user's cache."""
    env = os.environ.get("QUICSIM_PEERS_DIR")
    if env:
        return Path(env)
    if (REPO / "pyproject.toml").exists():
        return REPO / ".peers"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quicsim" / "peers"


def find_python312() -> str | None:
    """A Python >= 3.12 that runs, for aiopquic: ``$QUICSIM_PEER_PYTHON``, else
    python3.12..3.14 on PATH, else pyenv's (a pyenv shim of a version not selected fails)."""
    env = os.environ.get("QUICSIM_PEER_PYTHON")
    if env:
        return env
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [found for name in ("python3.12", "python3.13", "python3.14") if (found := shutil.which(name))]
    candidates += sorted(glob.glob(f"{root}/versions/3.1[234].*/bin/python3"))
    return next((c for c in candidates if _runs_312(c)), None)


@lru_cache(maxsize=None)
def _runs_312(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class PicoquicLauncher(ChildLauncher):
    """Starts picoquic's server (through aiopquic) on 127.0.0.1 and stops it by pid."""

    name = "picoquic"

    def __init__(self) -> None:
        super().__init__()
        self.venv = peers_dir() / "picoquic-venv"
        self.python = self.venv / "bin" / "python"

    def install_command(self) -> str:
        python = find_python312() or "python3.12"
        venv = shlex.quote(str(self.venv))
        return (f"{shlex.quote(python)} -m venv {venv} && "
                f"{venv}/bin/pip install {shlex.quote(AIOPQUIC)}")

    def missing(self) -> str | None:
        return _missing(str(self.python), self.install_command())

    def install(self) -> str | None:
        """Run :meth:`install_command`; None when the peer runs afterwards, else why not."""
        if find_python312() is None:
            return "no Python >= 3.12 found (aiopquic needs one; set QUICSIM_PEER_PYTHON to one)"
        return self.run_install()

    def forget_found(self) -> None:
        _missing.cache_clear()

    def argv(self, behaviours: tuple[str, ...]) -> list[str]:
        paths = certs.default_paths()
        return [str(self.python), str(SERVER), "--cert", str(paths.cert), "--key", str(paths.key),
                "--behaviour", ",".join(behaviours)]

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)  # the child's own interpreter and site-packages only
        return env


@lru_cache(maxsize=None)
def _missing(python: str, install: str) -> str | None:
    """Why ``python`` cannot import aiopquic (checked once per process)."""
    if not os.path.exists(python):
        return f"picoquic peer not installed (no {python}); install it with: {install}"
    try:
        done = subprocess.run([python, "-c", "import aiopquic.asyncio"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"picoquic peer cannot run ({exc}); install it with: {install}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"picoquic peer not usable ({last}); install it with: {install}"
    return None

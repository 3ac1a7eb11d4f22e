"""The quiche peer: @matrixai/quic (quiche's binding for Node, prebuilt) in a folder of its
own, running :file:`quiche_server.mjs` under Node >= 20 as a child process."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from .. import certs
from .picoquic import peers_dir
from .process import ChildLauncher

#: the releases the server script is written against (2.0: QUICServer with crypto ops,
#: web streams whose cancel/abort carry the code through reasonToCode)
MATRIXAI_QUIC = "@matrixai/quic@>=2.0.9 <3"
SERVER = Path(__file__).resolve().parent / "quiche_server.mjs"
NODE_MAJOR = 20


class QuicheLauncher(ChildLauncher):
    """Starts quiche's server (through @matrixai/quic) on 127.0.0.1 and stops it by pid."""

    name = "quiche"

    def __init__(self) -> None:
        super().__init__()
        self.folder = peers_dir() / "quiche"

    def install_command(self) -> str:
        folder = shlex.quote(str(self.folder))
        return (f"mkdir -p {folder} && npm install --prefix {folder} --no-audit --no-fund "
                f"{shlex.quote(MATRIXAI_QUIC)}")

    def missing(self) -> str | None:
        return _missing(shutil.which("node") or "", str(self.folder), self.install_command())

    def install(self) -> str | None:
        if shutil.which("npm") is None:
            return "no npm found (the quiche peer needs Node >= 20 and npm)"
        return self.run_install()

    def forget_found(self) -> None:
        _missing.cache_clear()

    def argv(self, behaviours: tuple[str, ...]) -> list[str]:
        paths = certs.default_paths()
        return [shutil.which("node") or "node", str(SERVER), "--cert", str(paths.cert), "--key", str(paths.key),
                "--modules", str(self.folder), "--behaviour", ",".join(behaviours)]


@lru_cache(maxsize=None)
def _missing(node: str, folder: str, install: str) -> str | None:
    """Why the quiche peer cannot run (checked once per process)."""
    if not node:
        return f"quiche peer needs Node >= {NODE_MAJOR} (no node on PATH); then install it with: {install}"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"quiche peer cannot run node ({exc})"
    if not version.startswith("v") or int(version[1:].split(".")[0]) < NODE_MAJOR:
        return f"quiche peer needs Node >= {NODE_MAJOR}, found {version or '?'}"
    if not os.path.isfile(os.path.join(folder, "node_modules", "@matrixai", "quic", "dist", "index.js")):
        return f"quiche peer not installed (no @matrixai/quic in {folder}); install it with: {install}"
    return None

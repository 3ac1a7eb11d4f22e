"""Backends: what runs the MsQuic-style API: the simulator (aioquic) or the real library.

The simulator is always there. The real MsQuic is a ``libmsquic`` found at run time:
``--msquic-lib PATH``, else ``$QUICSIM_MSQUIC_LIB``, else the system's
(``ctypes.util.find_library("msquic")``: Microsoft's Linux packages install it, and .NET
ships one). quicsim never carries MsQuic itself.
"""

from __future__ import annotations

import ctypes.util
import os
from dataclasses import dataclass
from importlib import metadata
from ..errors import BackendError

#: the environment variable naming the libmsquic to load
MSQUIC_LIB_ENV = "QUICSIM_MSQUIC_LIB"

HOW_TO_GET_MSQUIC = (f"set {MSQUIC_LIB_ENV}=/path/to/libmsquic.so or pass --msquic-lib PATH "
                     "(Microsoft's Linux packages install libmsquic; .NET ships one)")


def find_msquic(path: str | None = None) -> tuple[str, str] | None:
    """The libmsquic to load and where that choice came from, or None when there is none."""
    if path:
        return path, "--msquic-lib"
    env = os.environ.get(MSQUIC_LIB_ENV)
    if env:
        return env, f"${MSQUIC_LIB_ENV}"
    found = ctypes.util.find_library("msquic")
    return (found, "the system's libraries") if found else None


@dataclass(frozen=True)
class BackendInfo:
    """What ``quicsim backends`` says of one backend."""

    name: str
    available: bool
    detail: str
    version: str | None = None
    library: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "available": self.available, "detail": self.detail,
                "version": self.version, "library": self.library}


def describe(msquic_lib: str | None = None) -> list[BackendInfo]:
    """Every backend, whether it can run here, and its version."""
    try:
        aioquic = metadata.version("aioquic")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        aioquic = "?"
    infos = [BackendInfo("simulator", True, f"aioquic {aioquic}, loopback UDP or the in-memory link", aioquic)]
    found = find_msquic(msquic_lib)
    if found is None:
        infos.append(BackendInfo("msquic", False, f"no libmsquic found: {HOW_TO_GET_MSQUIC}"))
        return infos
    path, origin = found
    try:
        version, git = msquic_version(path)
    except OSError as exc:
        infos.append(BackendInfo("msquic", False, f"{path} (from {origin}) cannot be used: {exc}", library=path))
        return infos
    infos.append(BackendInfo("msquic", True, f"{path} (from {origin}), git {git or '?'}", version, path))
    return infos


def msquic_version(path: str) -> tuple[str, str]:
    """(``major.minor.patch``, git hash) of the libmsquic at ``path`` (OSError if it is not one)."""
    from .msquic.bindings import Library

    with Library(path) as library:
        major, minor, patch, _build = library.version()
        return f"{major}.{minor}.{patch}", library.git_hash()

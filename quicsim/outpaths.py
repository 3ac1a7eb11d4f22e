"""Output paths checked before any work starts: a folder or file the command will write,
tested up front so a bad path is one line (exit 2), not a traceback after a campaign."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def _probe(folder: Path, option: str, shown: str) -> None:
    """Create and remove a scratch file in ``folder``: the one check that also holds for root."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".quicsim-write-check-")
    except OSError as exc:
        raise UsageError(f"{option} {shown}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def output_dir(path: str | Path, option: str, create: bool = True) -> Path:
    """A folder the command writes into: must be a folder and writable; made if missing,
    or with ``create=False`` left to be made when there is something to write (then the
    nearest folder that exists must be writable)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {path}: is a file, expected a folder")
    if not create and not folder.exists():
        ancestor = folder.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(f"{option} {path}: {ancestor} is a file, not a folder")
        _probe(ancestor, option, str(path))
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    _probe(folder, option, str(path))
    return folder


def output_file(path: str | Path, option: str) -> Path:
    """A file the command (over)writes: must not be a folder; its folder is made if missing."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a folder, expected a file")
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create {parent} ({exc.strerror or exc})") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path}: the file is not writable")
    _probe(parent, option, str(path))
    return target

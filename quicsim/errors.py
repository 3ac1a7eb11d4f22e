"""quicsim's exceptions, under one base: ``except QuicsimError`` catches whatever quicsim
raises on purpose (a bad input, a backend that cannot be used, a stuck run). Each keeps
the builtin base it had, so ``except ValueError`` and the like still catch it.

This module imports nothing of quicsim's: every layer may raise from it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BadHistory",
    "BadTraceLine",
    "LibraryLoadError",
    "MsQuicError",
    "NetworkError",
    "QuicsimError",
    "SchedulerError",
    "UsageError",
    "VirtualClockStopped",
    "VirtualTimeExceeded",
]


class QuicsimError(Exception):
    """The base of every exception quicsim raises on purpose."""


class UsageError(QuicsimError):
    """Bad input from the user: printed as one line, exit status 2."""


class SchedulerError(UsageError):
    """The cluster cannot be used (no extra, no scheduler, no worker, another quicsim)."""


class NetworkError(QuicsimError, ValueError):
    """A network profile with a bad value; the message names the key and the value."""


class BadTraceLine(QuicsimError, ValueError):
    """A JSON Lines trace line that is not a JSON object: its number, and the JSON error
    (None when the line is JSON but not an object)."""

    def __init__(self, number: int, json_error: str | None) -> None:
        super().__init__(f"line {number}: {json_error or 'not a JSON object'}")
        self.number = number
        self.json_error = json_error


class BadHistory(QuicsimError, ValueError):
    """A trace line the offline checker cannot read; the message says what is wrong."""


class VirtualTimeExceeded(QuicsimError):
    """The run's virtual clock passed its budget: the run is stuck (a hang)."""


class VirtualClockStopped(VirtualTimeExceeded):
    """The run's virtual clock stopped moving (a timer that fires and re-arms without any
    progress): the run is stuck (a hang); the message names the timer."""


class BackendError(QuicsimError):
    """A backend that was asked for cannot be used (its library is missing or broken)."""


class MsQuicError(QuicsimError, RuntimeError):
    """An MsQuic call returned a failure status (``status``: signed QUIC_STATUS, ``name``: its name)."""

    def __init__(self, call: str, status: int, name: str) -> None:
        self.call = call
        self.status = status
        super().__init__(f"{call} failed: {name} ({status})")


class LibraryLoadError(QuicsimError, OSError):
    """The path is not a loadable MsQuic library."""

    def __init__(self, path: str, reason: str) -> None:
        self.message = f"cannot load an MsQuic library from {path!r}: {reason}"
        super().__init__(self.message)
        self.filename = path

    def __str__(self) -> str:  # OSError's own would show "[Errno None] None: path" once filename is set
        return self.message

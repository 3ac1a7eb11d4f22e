"""MsQuic's call-time checks, in one place, as small tables (see msquic ``src/core/api.c``).

Each function answers "what does MsQuic return right away for this call?" given the
state an API call can see; ``None`` means the call is accepted (queued or applied).
"""

from __future__ import annotations

from enum import IntFlag
from typing import Any, Callable

from ..enums import MAX_VARINT, Status, StreamShutdownFlags

_ABORT = StreamShutdownFlags.ABORT_SEND | StreamShutdownFlags.ABORT_RECEIVE
_IMMEDIATE_EXACTLY = int(StreamShutdownFlags.IMMEDIATE | _ABORT)

#: MsQuicStreamShutdown's parameter checks, in the order api.c applies them. Other
#: unknown bits pass, as they do in MsQuic (StreamSend and StreamStart check none).
SHUTDOWN_PARAMETER_RULES: tuple[tuple[str, Callable[[int], Any]], ...] = (
    ("flags are 0", lambda f: f == 0),
    ("GRACEFUL combined with ABORT or IMMEDIATE",
     lambda f: f & StreamShutdownFlags.GRACEFUL and f & (_ABORT | StreamShutdownFlags.IMMEDIATE)),
    ("IMMEDIATE is only valid as exactly IMMEDIATE|ABORT_SEND|ABORT_RECEIVE",
     lambda f: f & StreamShutdownFlags.IMMEDIATE and f != _IMMEDIATE_EXACTLY),
)


def flag_value(flags: Any, flag_type: type[IntFlag]) -> int:
    """``flags`` as an int; a TypeError names the expected type for anything that is not
    ``flag_type`` or a plain int (another flag enum, a bool, a string): a programming
    error, not a protocol misuse, so it raises instead of returning a status."""
    if type(flags) is int or type(flags) is flag_type:
        return int(flags)
    raise TypeError(f"flags must be {flag_type.__name__} (or an int), got {type(flags).__name__} {flags!r}")


def shutdown_parameter_error(flags: int, error_code: int) -> str | None:
    """Why StreamShutdown(flags, error_code) is INVALID_PARAMETER, or None if it is not."""
    if not isinstance(error_code, int) or isinstance(error_code, bool) or not 0 <= error_code <= MAX_VARINT:
        return "error_code must be an int in [0, 2^62-1]"
    for reason, rule in SHUTDOWN_PARAMETER_RULES:
        if rule(flags):
            return reason
    return None


def send_state_status(*, closed_remotely: bool, send_enabled: bool, received_stop_sending: bool) -> Status | None:
    """MsQuicStreamSend's state checks once the buffers are valid.

    A closed-by-peer connection is ABORTED first; then a send side already shut down
    by the worker rejects the send: ABORTED after a peer STOP_SENDING, else INVALID_STATE.
    """
    if closed_remotely:
        return Status.ABORTED
    if not send_enabled:
        return Status.ABORTED if received_stop_sending else Status.INVALID_STATE
    return None


def start_status(*, started: bool, closed_remotely: bool) -> Status | None:
    """MsQuicStreamStart: INVALID_STATE once started, ABORTED after a peer close."""
    if started:
        return Status.INVALID_STATE
    if closed_remotely:
        return Status.ABORTED
    return None


def open_status(*, closed_locally: bool, closed_remotely: bool) -> Status | None:
    """MsQuicStreamOpen on a closing or closed connection: ``ClosedLocally ?
    INVALID_STATE : ABORTED``."""
    if closed_locally:
        return Status.INVALID_STATE
    if closed_remotely:
        return Status.ABORTED
    return None


def flags_ok(flags: int, all_flags: int) -> bool:
    return 0 <= flags and not (flags & ~all_flags)

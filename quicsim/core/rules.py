"""MsQuic's call-time checks, in one place, as small tables (see msquic ``src/core/api.c``).

Each function answers "what does MsQuic return right away for this call?" given the
state an API call can see; ``None`` means the call is accepted (queued or applied).
"""

from __future__ import annotations

from ..enums import MAX_VARINT, SendFlags, Status, StreamShutdownFlags, StreamStartFlags

_ABORT = StreamShutdownFlags.ABORT_SEND | StreamShutdownFlags.ABORT_RECEIVE
_IMMEDIATE_ONLY = StreamShutdownFlags.IMMEDIATE | _ABORT
_ALL_SHUTDOWN = int(
    StreamShutdownFlags.GRACEFUL | _ABORT | StreamShutdownFlags.IMMEDIATE | StreamShutdownFlags.INLINE
)
_ALL_START = int(sum(StreamStartFlags))
#: bits no SendFlags member has: a send with any of them is INVALID_PARAMETER
BAD_SEND_BITS = ~int(sum(SendFlags))

#: MsQuicStreamShutdown's parameter checks, in the order api.c applies them.
SHUTDOWN_PARAMETER_RULES: tuple[tuple[str, object], ...] = (
    ("flags are 0", lambda f: f == 0),
    ("unknown flag bits", lambda f: f & ~_ALL_SHUTDOWN),
    ("GRACEFUL combined with ABORT or IMMEDIATE",
     lambda f: f & StreamShutdownFlags.GRACEFUL and f & (_ABORT | StreamShutdownFlags.IMMEDIATE)),
    ("IMMEDIATE without both ABORT_SEND and ABORT_RECEIVE",
     lambda f: f & StreamShutdownFlags.IMMEDIATE and (f & ~StreamShutdownFlags.INLINE) != _IMMEDIATE_ONLY),
)


def shutdown_parameter_error(flags: int, error_code: int) -> str | None:
    """Why StreamShutdown(flags, error_code) is INVALID_PARAMETER, or None if it is not."""
    if not isinstance(error_code, int) or error_code < 0 or error_code > MAX_VARINT:
        return "error_code must be an int in [0, 2^62-1]"
    if not isinstance(flags, int):
        return "flags must be StreamShutdownFlags"
    for reason, rule in SHUTDOWN_PARAMETER_RULES:
        if rule(int(flags)):
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
    """MsQuicStreamOpen on a connection that is shutting down or closed."""
    if closed_remotely:
        return Status.ABORTED
    if closed_locally:
        return Status.INVALID_STATE
    return None


def flags_ok(flags: int, all_flags: int) -> bool:
    return isinstance(flags, int) and 0 <= flags and not (flags & ~all_flags)


def start_flags_ok(flags: int) -> bool:
    return flags_ok(flags, _ALL_START)

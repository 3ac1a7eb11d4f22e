"""MsQuic's parameter checks (``src/core/api.c``): flags and error codes, before any state.

What a call returns for the state it finds is in :mod:`quicsim.core.state`.
"""

from __future__ import annotations

from enum import IntFlag
from functools import cache, lru_cache
from typing import Any, Callable, TypeVar

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


_F = TypeVar("_F", bound=IntFlag)


@lru_cache(maxsize=256)  # (bounded: StreamStart takes any bits and ignores the unknown ones)
def flag_member(flag_type: type[_F], value: int) -> _F:
    """``flag_type(value)``, made once per value: building an IntFlag costs far more than
    the dictionary lookup, and streams are opened and started on the per-stream path."""
    return flag_type(value)


@cache
def all_flags(flag_type: type[IntFlag]) -> int:
    """Every bit ``flag_type`` defines, as an int (MsQuic's parameter checks reject others)."""
    return int(sum(flag_type))


def flags_ok(flags: int, all_flags: int) -> bool:
    return 0 <= flags and not (flags & ~all_flags)


#: QUIC_ERROR_INTERNAL_ERROR: the error code of a close made with a QUIC_STATUS
QUIC_ERROR_INTERNAL_ERROR = 1

#: QuicErrorCodeToStatus (src/core/connection.c); anything else is INTERNAL_ERROR
_ERROR_STATUS = {
    0x0: Status.SUCCESS,
    0x2: Status.CONNECTION_REFUSED,
    0xA: Status.PROTOCOL_ERROR,
    0x15A: Status.USER_CANCELED,  # CRYPTO_USER_CANCELED
    0x128: Status.HANDSHAKE_FAILURE,  # CRYPTO_HANDSHAKE_FAILURE
    0x178: Status.ALPN_NEG_FAILURE,  # CRYPTO_NO_APPLICATION_PROTOCOL
}


def error_code_to_status(error_code: int) -> Status:
    """QuicErrorCodeToStatus: the QUIC_STATUS a close with ``error_code`` reports."""
    return _ERROR_STATUS.get(error_code, Status.INTERNAL_ERROR)

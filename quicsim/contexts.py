"""How a send's ``client_context`` is written: as text (its repr) in messages and JSON Lines
traces, where ``quicsim check`` compares it; as its value in JSON meant to be read by
programs (``quicsim run --json``, qlog), a value JSON cannot hold as ``{"repr": ...}``."""

from __future__ import annotations

from typing import Any

_SCALARS = (str, int, float, bool, type(None))


class ContextText(str):
    """A client context's repr that remembers the value it was made from."""

    __slots__ = ("value",)
    value: Any

    def __new__(cls, text: str, value: Any) -> "ContextText":
        self = super().__new__(cls, text)
        self.value = value
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # across processes (the fuzzer's workers) the value travels as JSON would hold it
        return ContextText, (str(self), context_value(self))


def context_text(value: Any) -> ContextText:
    """The context as the ledger's findings hold it: its repr, carrying the value."""
    return ContextText(repr(value), value)


def _json_able(value: Any, depth: int = 0) -> bool:
    if type(value) in _SCALARS:
        return not (type(value) is float and value != value)  # NaN is not JSON
    if depth > 8:
        return False
    if type(value) in (list, tuple):
        return all(_json_able(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_able(v, depth + 1) for k, v in value.items())
    return False


def context_value(context: Any) -> Any:
    """What a program reading JSON gets for a context: the value when JSON holds it as it is
    (strings, numbers, booleans, None, and lists or string-keyed dicts of them), else
    ``{"repr": "<its repr>"}``. A ``ContextText`` gives its value."""
    value = context.value if isinstance(context, ContextText) else context
    if _json_able(value):
        return list(value) if type(value) is tuple else value
    return {"repr": repr(value)}


def with_context_values(finding: dict[str, Any]) -> dict[str, Any]:
    """A copy of a finding (leak, stalled send, pending send) with its context as a value."""
    if "client_context" not in finding:
        return finding
    return {**finding, "client_context": context_value(finding["client_context"])}

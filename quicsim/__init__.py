"""quicsim: MsQuic's stream API and SEND_COMPLETE contract, simulated on aioquic.

Every accepted ``stream.send`` gets exactly one ``SEND_COMPLETE``; the :class:`Ledger`
checks that for the application, and ``Settings(faults=...)`` injects the bugs that lose
one, so the check can be seen to catch them.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below resolve to, for type checkers
    from . import events
    from .api import (Connection, ConnectionHandler, Listener, SendBuffers, Stream, StreamHandler, connect,
                      listen)
    from .core import StatusError
    from .errors import (
        BackendError,
        BadHistory,
        BadTraceLine,
        LibraryLoadError,
        MsQuicError,
        NetworkError,
        QuicsimError,
        SchedulerError,
        UsageError,
        VirtualClockStopped,
        VirtualTimeExceeded,
    )
    from .enums import (
        ConnectionEventType,
        ConnectionShutdownFlags,
        DatagramSendState,
        ReceiveFlags,
        SendFlags,
        Status,
        StreamEventType,
        StreamOpenFlags,
        StreamShutdownFlags,
        StreamStartFlags,
    )
    from .events import AnyConnectionEvent, AnyStreamEvent
    from .ledger import Ledger
    from .network import Network, NetworkProfile
    from .observer import Observer
    from .pair import Pair, open_pair
    from .scenario_spec import Backend, ScenarioContext, ScenarioFunction, Transport, scenario
    from .settings import FAULTS, Settings
    from .trace import Tracer

#: Where each public name lives. They are imported on first use, so that ``import
#: quicsim`` (and the ``quicsim`` command's start, when Ctrl-C must already be handled)
#: does not pay for aioquic and cryptography until they are needed.
_HOMES = {
    "Connection": "api", "Listener": "api", "Stream": "api", "connect": "api", "listen": "api",
    "StreamHandler": "api", "ConnectionHandler": "api", "SendBuffers": "api",
    "AnyStreamEvent": "events", "AnyConnectionEvent": "events",
    "StatusError": "core",
    **dict.fromkeys(("BackendError", "BadHistory", "BadTraceLine", "LibraryLoadError", "MsQuicError", "NetworkError",
                     "QuicsimError", "SchedulerError", "UsageError", "VirtualClockStopped", "VirtualTimeExceeded"),
                    "errors"),
    "ConnectionEventType": "enums", "ConnectionShutdownFlags": "enums", "DatagramSendState": "enums",
    "ReceiveFlags": "enums", "SendFlags": "enums", "Status": "enums", "StreamEventType": "enums",
    "StreamOpenFlags": "enums", "StreamShutdownFlags": "enums", "StreamStartFlags": "enums",
    "Ledger": "ledger", "Network": "network", "NetworkProfile": "network", "Observer": "observer",
    "Pair": "pair", "open_pair": "pair", "ScenarioContext": "scenario_spec", "scenario": "scenario_spec",
    "ScenarioFunction": "scenario_spec", "Transport": "scenario_spec", "Backend": "scenario_spec",
    "FAULTS": "settings", "Settings": "settings", "Tracer": "trace",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "events":
        return importlib.import_module(".events", __name__)
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'quicsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def trace(path: Any) -> "Tracer":
    """A JSON Lines tracer to pass as an observer (``connect(..., observers=(t,))``,
    ``open_pair(observers=(t,))``); use it as a context manager to close the file."""
    from .trace import Tracer

    return Tracer(path)


__version__ = "0.1.0"

__all__ = [
    "AnyConnectionEvent",
    "AnyStreamEvent",
    "Backend",
    "BackendError",
    "BadHistory",
    "BadTraceLine",
    "Connection",
    "ConnectionHandler",
    "ConnectionEventType",
    "ConnectionShutdownFlags",
    "DatagramSendState",
    "FAULTS",
    "Ledger",
    "LibraryLoadError",
    "Listener",
    "MsQuicError",
    "Network",
    "NetworkError",
    "NetworkProfile",
    "Observer",
    "Pair",
    "QuicsimError",
    "ReceiveFlags",
    "ScenarioContext",
    "ScenarioFunction",
    "SendBuffers",
    "SchedulerError",
    "SendFlags",
    "Settings",
    "Status",
    "StatusError",
    "Stream",
    "StreamEventType",
    "StreamHandler",
    "StreamOpenFlags",
    "StreamShutdownFlags",
    "StreamStartFlags",
    "Tracer",
    "Transport",
    "UsageError",
    "VirtualClockStopped",
    "VirtualTimeExceeded",
    "connect",
    "events",
    "listen",
    "open_pair",
    "scenario",
    "trace",
]

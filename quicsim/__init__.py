"""quicsim: MsQuic's stream API and SEND_COMPLETE contract, simulated on aioquic.

Every accepted ``stream.send`` gets exactly one ``SEND_COMPLETE``; the :class:`Ledger`
checks that for the application, and ``Settings(faults=...)`` injects the bugs that lose
one, so the check can be seen to catch them.
"""

from . import events
from .api import Connection, Listener, Stream, connect, listen
from .core import StatusError
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
from .ledger import Ledger
from .network import Network, NetworkProfile
from .scenario_spec import ScenarioContext, scenario
from .observer import Observer
from .pair import Pair, open_pair
from .settings import FAULTS, Settings
from .trace import Tracer


def trace(path) -> Tracer:
    """A JSON Lines tracer to pass as an observer (``connect(..., observers=(t,))``,
    ``open_pair(observers=(t,))``); use it as a context manager to close the file."""
    return Tracer(path)


__version__ = "0.1.0"

__all__ = [
    "Connection",
    "ConnectionEventType",
    "ConnectionShutdownFlags",
    "DatagramSendState",
    "FAULTS",
    "Ledger",
    "Listener",
    "Network",
    "NetworkProfile",
    "Observer",
    "Pair",
    "ReceiveFlags",
    "ScenarioContext",
    "SendFlags",
    "Settings",
    "Status",
    "StatusError",
    "Stream",
    "StreamEventType",
    "StreamOpenFlags",
    "StreamShutdownFlags",
    "StreamStartFlags",
    "Tracer",
    "connect",
    "events",
    "listen",
    "open_pair",
    "scenario",
    "trace",
]

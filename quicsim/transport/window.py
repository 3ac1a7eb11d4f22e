"""The network window of a preemption point: MsQuic's worker does more between two of the
application's statements than apply queued calls. It processes the packets that arrived
and fires its timers (``msquic-observed`` §2: three sends acknowledged before the next
statement in 8 of 8 runs). On the virtual-time loop a window moves the clock forward by
a drawn amount, inside the application's call, and runs what the link and the connection
drivers have due in that time: datagrams in both directions (so the peer can answer with
ACKs that arrive in the same window), both sides' handlers, loss-detection, idle and
closing timers. The application's own tasks and timeouts wait, as a thread that was not
scheduled meanwhile.

Over UDP there is no window: a call cannot wait for the sockets inside the loop, so a
preemption point applies queued operations only; packets arrive between statements only
where the application awaits.
"""

from __future__ import annotations

import asyncio
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer

from .delivery import DeliveryQueue

#: what a window runs: the connection drivers (worker passes, transmits, aioquic's timer),
#: the link's delivery queues, and the server's demultiplexer
_NETWORK = (QuicConnectionProtocol, DeliveryQueue, QuicServer)
_TIMER = "_handle_timer"


def _is_network(handle: asyncio.Handle) -> bool:
    return isinstance(getattr(getattr(handle, "_callback", None), "__self__", None), _NETWORK)


def has_window(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` can run a network window (its clock is virtual)."""
    return hasattr(loop, "run_window")


def let_network_in(loop: asyncio.AbstractEventLoop, seconds: float) -> dict[str, int]:
    """Run a network window of ``seconds`` on ``loop`` (one that :func:`has_window`); what
    it let through: datagrams delivered per direction, timers fired."""
    delivered = loop.delivered  # type: ignore[attr-defined]
    before = delivered.copy()
    ran = loop.run_window(seconds, _is_network)  # type: ignore[attr-defined]
    return {
        "to_server": delivered["to_server"] - before["to_server"],
        "to_client": delivered["to_client"] - before["to_client"],
        "timers": sum(1 for callback in ran if getattr(callback, "__name__", "") == _TIMER),
    }

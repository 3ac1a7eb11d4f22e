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
import functools
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer

from .delivery import DeliveryQueue

_TIMER = "handle_timer"  # ConnectionDriver.handle_timer, aioquic's timer


def _owner(callback: Any) -> Any:
    """The object a callback belongs to: a bound method's, or a partial's bound method's."""
    owner = getattr(callback, "__self__", None)
    if owner is None and isinstance(callback, functools.partial):
        owner = getattr(callback.func, "__self__", None)
    return owner


def _is_network(handle: asyncio.Handle) -> bool:
    """What a window runs: the connection drivers (worker passes, transmits, aioquic's
    timer), the link's delivery queues and arrivals, and the server's demultiplexer."""
    from .memory import MemoryLink  # (memory imports the driver, which imports this)

    return isinstance(_owner(getattr(handle, "_callback", None)),
                      (QuicConnectionProtocol, DeliveryQueue, QuicServer, MemoryLink))


def has_window(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` can run a network window (its clock is virtual)."""
    return hasattr(loop, "run_window")


def let_network_in(loop: asyncio.AbstractEventLoop, seconds: float) -> dict[str, int]:
    """Run a network window of ``seconds`` on ``loop`` (one that :func:`has_window`); what
    it let through: datagrams delivered per direction, timers fired. Counted per handle
    run, so the link's per-datagram path pays nothing for it."""
    counts = {"to_server": 0, "to_client": 0, "timers": 0}

    def tally(handle: asyncio.Handle) -> None:
        callback = getattr(handle, "_callback", None)
        owner = _owner(callback)
        if isinstance(owner, DeliveryQueue):  # its flush delivers every datagram due now
            now = loop.time()
            counts[owner.name] += sum(1 for due, _, _ in owner.heap if due <= now)
        elif isinstance(callback, functools.partial) and callback.args[:1] in (("to_server",), ("to_client",)):
            counts[callback.args[0]] += 1  # one arrival at once (the link drew no delay)
        elif getattr(callback, "__name__", "") == _TIMER:
            counts["timers"] += 1

    loop.run_window(seconds, _is_network, tally)  # type: ignore[attr-defined]
    return counts

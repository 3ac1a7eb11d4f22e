"""The liveness phase: after a scenario body, heal the network and give every send that
can still complete a deadline; what is still pending then, on a live connection, is
reported by the ledger as **stalled** (a finding of its own, separate from leaks)."""

from __future__ import annotations

import asyncio
from typing import Any

from .enums import StreamEventType
from .ledger import Ledger
from .network import Network
from .network.impairment import DIRECTIONS, LinkParams

#: how long healed links get: enough for PTO backoff after a long blackhole, and well
#: inside the default 30 s idle timeout (a stalled send must not be canceled by it first)
VIRTUAL_LIVENESS_SECONDS = 10.0
LIVENESS_SECONDS = 10.0


def heal(network: Network) -> None:
    """Remove every impairment (loss, delay, blackholes, drop lists) in both directions."""
    for direction in DIRECTIONS:
        model = network.models[direction]
        model.params = LinkParams()
        model._extra_blackholes.clear()
    network._record("heal", {})


async def liveness_phase(ledger: Ledger, network: Network, seconds: float) -> list[dict[str, Any]]:
    """Heal, wait (event-driven, at most ``seconds``) until no send that should complete
    is pending, then mark the rest stalled. Returns the stalled findings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    candidates = ledger.stall_candidates()
    if candidates:
        heal(network)
    while candidates and loop.time() < deadline:
        # The ledger names cores (observers see the core); their API handles wait.
        tasks = [asyncio.ensure_future(stream.owner.wait_event(StreamEventType.SEND_COMPLETE))
                 for _, stream in candidates]
        tasks += [asyncio.ensure_future(conn.owner.wait_shutdown_complete())
                  for conn in dict.fromkeys(c for c, _ in candidates)]
        # (dict, not set: tasks made in an order that does not depend on object addresses)
        try:
            await asyncio.wait(tasks, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        candidates = ledger.stall_candidates()
    return ledger.mark_stalled()

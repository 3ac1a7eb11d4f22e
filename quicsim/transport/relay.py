"""A UDP relay on 127.0.0.1 between one client and one server, applying a ``Network``.

The client talks to the relay's front socket; the relay talks to the server from its
back socket. It forwards only between those two loopback endpoints: the server's,
given up front, and the client's, learned from the first datagram that looks like a
QUIC client Initial (long header, at least 1200 bytes). Anything else is counted and
ignored, so garbage cannot redirect it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from ..network import Network
from .delivery import DeliveryQueue
from .udp import check_loopback, enlarge_buffers

_MIN_INITIAL = 1200


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay", side: str) -> None:
        self.relay = relay
        self.side = side
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        enlarge_buffers(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.datagram_from(self.side, data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after a peer went away: nothing to do on a lossy link.
        self.relay.errors += 1


class Relay:
    """The lossy link of ``quicsim run``: start it, point the client at ``relay.port``."""

    def __init__(self, server_addr: tuple[str, int], network: Network) -> None:
        check_loopback(server_addr[0])
        self.server_addr = (server_addr[0], server_addr[1])
        self.network = network
        self.client_addr: tuple[str, int] | None = None
        self.ignored = 0
        self.errors = 0
        self.port = 0
        self._front: _Socket | None = None
        self._back: _Socket | None = None
        self._directions: dict[str, DeliveryQueue] = {}

    async def start(self) -> "Relay":
        self.loop = asyncio.get_running_loop()
        self._directions = {d: DeliveryQueue(self.loop, functools.partial(self._deliver, d))
                            for d in ("to_server", "to_client")}
        _, self._front = await self.loop.create_datagram_endpoint(
            lambda: _Socket(self, "front"), local_addr=("127.0.0.1", 0))
        _, self._back = await self.loop.create_datagram_endpoint(
            lambda: _Socket(self, "back"), local_addr=("127.0.0.1", 0))
        assert self._front.transport is not None
        self.port = self._front.transport.get_extra_info("sockname")[1]
        return self

    def datagram_from(self, side: str, data: bytes, addr: Any) -> None:
        addr = (addr[0], addr[1])
        if side == "front":
            if self.client_addr is None and addr[0].startswith("127.") and len(data) >= _MIN_INITIAL \
                    and data[0] & 0xC0 == 0xC0:
                self.client_addr = addr
            if addr != self.client_addr:
                self.ignored += 1
                return
            direction = "to_server"
        else:
            if addr != self.server_addr:
                self.ignored += 1
                return
            direction = "to_client"
        decision = self.network.decide(direction, len(data))
        for delay in decision.delays:
            if delay <= 0 and not self._directions[direction].heap:
                self._deliver(direction, data)
            else:
                self._directions[direction].schedule(data, delay)

    def _deliver(self, direction: str, data: bytes) -> None:
        sock, addr = (self._back, self.server_addr) if direction == "to_server" else (self._front, self.client_addr)
        if sock is not None and sock.transport is not None and not sock.transport.is_closing() and addr:
            sock.transport.sendto(data, addr)

    def close(self) -> None:
        for d in self._directions.values():
            d.close()
        for sock in (self._front, self._back):
            if sock is not None and sock.transport is not None:
                sock.transport.close()
        self._front = self._back = None

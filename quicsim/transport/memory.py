"""The in-memory link: client and server drivers exchange datagrams through the same
seeded impairment model as the UDP relay, on whatever clock the loop has (virtual under
:class:`~quicsim.transport.virtual_loop.VirtualTimeEventLoop`). No sockets at all.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Any, Callable

from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from ..network import Network
from .delivery import DeliveryQueue
from .udp import ConnectionDriver

CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 4433)


class _Endpoint(asyncio.DatagramTransport):
    """One side's end of the link, shaped like an asyncio datagram transport."""

    def __init__(self, link: "MemoryLink", side: str, addr: tuple[str, int]) -> None:
        super().__init__()
        self.link = link
        self.side = side
        self.addr = addr
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing:
            self.link._send(self.side, bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.addr if name == "sockname" else default

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def is_closing(self) -> bool:
        return self._closing


class MemoryLink:
    """A client endpoint and a server endpoint joined through ``network``."""

    def __init__(self, network: Network, wire_log: list[str] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.network = network
        #: when a list: one line per datagram sent (direction, size, SHA-256 prefix), so two
        #: runs can be compared on the wire
        self.wire_log = wire_log
        self.client_end = _Endpoint(self, "client", CLIENT_ADDR)
        self.server_end = _Endpoint(self, "server", SERVER_ADDR)
        self.client_protocol: asyncio.DatagramProtocol | None = None
        self.server_protocol: asyncio.DatagramProtocol | None = None
        self._queues = {
            "to_server": DeliveryQueue(loop, functools.partial(self._arrive, "to_server"), "to_server"),
            "to_client": DeliveryQueue(loop, functools.partial(self._arrive, "to_client"), "to_client"),
        }

    def _send(self, side: str, data: bytes) -> None:
        direction = "to_server" if side == "client" else "to_client"
        if self.wire_log is not None:
            self.wire_log.append(f"{direction} {len(data)} {hashlib.sha256(data).hexdigest()[:32]}")
        for delay in self.network.decide(direction, len(data)).delays:
            # Always through the queue, never inline: a send must not re-enter the peer.
            self._queues[direction].schedule(data, delay)

    def _arrive(self, direction: str, data: bytes) -> None:
        if direction == "to_server":
            protocol, end, source = self.server_protocol, self.server_end, CLIENT_ADDR
        else:
            protocol, end, source = self.client_protocol, self.client_end, SERVER_ADDR
        if protocol is not None and not end.is_closing():
            protocol.datagram_received(data, source)

    def close(self) -> None:
        for queue in self._queues.values():
            queue.close()
        self.client_end.close()
        self.server_end.close()


async def open_server(link: MemoryLink, configuration: QuicConfiguration,
                      attach: Callable[[ConnectionDriver], None]) -> QuicServer:
    """aioquic's own QuicServer demultiplexer, on the link's server end."""

    def create_protocol(quic: QuicConnection, stream_handler: Any = None) -> ConnectionDriver:
        driver = ConnectionDriver(quic)
        attach(driver)
        return driver

    server = QuicServer(configuration=configuration, create_protocol=create_protocol)
    server.connection_made(link.server_end)
    link.server_protocol = server
    return server


async def open_client(link: MemoryLink, configuration: QuicConfiguration,
                      attach: Callable[[ConnectionDriver], None]) -> ConnectionDriver:
    quic = QuicConnection(configuration=configuration)
    driver = ConnectionDriver(quic)
    driver.connection_made(link.client_end)
    driver.owns_transport = True
    link.client_protocol = driver
    attach(driver)
    driver.connect(SERVER_ADDR)
    return driver

"""Two sans-I/O connection cores on aioquic, moved by hand: no asyncio, no sockets, time
passed in explicitly. For tests that need exact control over which frames share a datagram."""

from __future__ import annotations

from typing import Any

from aioquic.quic.connection import QuicConnection

from quicsim import certs
from quicsim.api import _quic_configuration
from quicsim.core import ConnectionCore
from quicsim.settings import Settings

CLIENT = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 4433)


class CorePair:
    def __init__(self, client_settings: Settings | None = None, server_settings: Settings | None = None,
                 *, client_quic_logger: Any = None, observers: tuple = ()) -> None:
        paths = certs.default_paths()
        self.client_settings = client_settings or Settings()
        self.server_settings = server_settings or Settings()
        client_config = _quic_configuration(self.client_settings, is_client=True, alpn="quicsim")
        client_config.server_name = "localhost"
        client_config.quic_logger = client_quic_logger
        client_config.load_verify_locations(cafile=str(paths.ca))
        server_config = _quic_configuration(self.server_settings, is_client=False, alpn="quicsim")
        server_config.load_cert_chain(str(paths.cert), str(paths.key))
        self.now = 0.0
        client_quic = QuicConnection(configuration=client_config)
        self.observers = observers
        self.client = ConnectionCore(client_quic, settings=self.client_settings, label="client",
                                     observers=observers)
        self.server: ConnectionCore | None = None
        self._server_config = server_config
        client_quic.connect(SERVER, now=self.now)

    def settle(self, core: ConnectionCore) -> None:
        """Let ``core`` take in what its aioquic connection has for it (after an API call)."""
        self._events(core)

    def _events(self, core: ConnectionCore) -> None:
        event = core.quic.next_event()
        while event is not None:
            core.handle_quic_event(event)
            event = core.quic.next_event()
        core.process_operations()
        core.poll()

    def deliver(self, sender: ConnectionCore, now: float | None = None) -> int:
        """Send what ``sender`` has and hand it to the other side; time moves on 5 ms first
        (or to ``now``) so pacing lets datagrams out. Returns how many datagrams moved."""
        self.now = now if now is not None else self.now + 0.005
        datagrams = sender.quic.datagrams_to_send(now=self.now)
        for data, _ in datagrams:
            if sender is self.client:
                if self.server is None:
                    quic = QuicConnection(configuration=self._server_config,
                                          original_destination_connection_id=self.client.quic.original_destination_connection_id)
                    self.server = ConnectionCore(quic, settings=self.server_settings, label="server",
                                                 observers=self.observers)
                self.server.receive_datagram(data, CLIENT, self.now)  # as the driver does
                self._events(self.server)
            else:
                self.client.receive_datagram(data, SERVER, self.now)
                self._events(self.client)
        return len(datagrams)

    def drop(self, sender: ConnectionCore) -> int:
        """Send what ``sender`` has into the void (a lost flight); time moves on 5 ms."""
        self.now += 0.005
        return len(sender.quic.datagrams_to_send(now=self.now))

    def hold(self, sender: ConnectionCore) -> list[bytes]:
        """Take what ``sender`` has without delivering it yet (reordering); 5 ms pass."""
        self.now += 0.005
        return [data for data, _ in sender.quic.datagrams_to_send(now=self.now)]

    def release(self, receiver: ConnectionCore, datagrams: list[bytes]) -> None:
        """Hand datagrams taken with :meth:`hold` to ``receiver`` now."""
        addr = CLIENT if receiver is self.server else SERVER
        for data in datagrams:
            receiver.receive_datagram(data, addr, self.now)
            self._events(receiver)

    def fire_timer(self, core: ConnectionCore) -> float | None:
        """Move time to ``core``'s next aioquic timer and run it; returns that time."""
        when = core.quic.get_timer()
        if when is not None:
            self.now = max(self.now, when)
            core.quic.handle_timer(now=self.now)
            self._events(core)
        return when

    def handshake(self) -> None:
        for _ in range(10):
            self.deliver(self.client)
            if self.server is not None:
                self.deliver(self.server)
            if self.client.connected and self.server is not None and self.server.connected:
                self.now += 0.001
                self.deliver(self.client)
                self.deliver(self.server)
                return
            self.now += 0.001
        raise AssertionError("handshake did not complete")

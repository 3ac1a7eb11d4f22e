"""A foreign client against quicsim's server: quicsim's listener on 127.0.0.1, the seeded
relay in front of it, the peer's client (:mod:`quicsim.peers.clients`) connecting through
the relay. The shape of :class:`quicsim.pair.Pair` where the runner reads it (``client``
is None: the ledger judges the server's sends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import api
from ..enums import ConnectionEventType, SendFlags, StreamEventType, StreamShutdownFlags
from ..ledger import Ledger
from ..network import Network
from ..pair import close_with_leftovers, shutdown_and_wait, watch_network
from ..settings import Settings
from ..transport.relay import Relay
from .clients import PeerClientLauncher, client_launcher, normalize_actions
from .h3 import is_unidirectional
from .handle import PeerHandle, PeerNotInstalled

#: seconds the foreign client has to exit once quicsim's server is shut down (then by pid)
CLIENT_EXIT_SECONDS = 5.0
#: the bytes the foreign client sends on each of its streams
REQUEST_BYTES = 1000


def echo_server(conn: api.Connection, event: Any) -> None:
    """The server's handler when a scenario brings none: each peer stream answered with
    what it carried, FIN after the peer's FIN, and the server's own direction aborted when
    the peer resets its one (as MsQuic's samples do)."""
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(_echo_stream)


def _echo_stream(stream: api.Stream, event: Any) -> None:
    kind = event.type
    if kind is StreamEventType.RECEIVE:
        data = b"".join(bytes(b) for b in event.buffers)
        if data:
            stream.send(data, client_context=("echo", stream.id))
    elif kind is StreamEventType.PEER_SEND_SHUTDOWN:
        stream.send(b"", SendFlags.FIN, client_context=("fin", stream.id))
    elif kind is StreamEventType.PEER_SEND_ABORTED:
        stream.shutdown(StreamShutdownFlags.ABORT_SEND, event.error_code)


@dataclass
class PeerClientPair:
    server: api.Connection
    listener: api.Listener
    peer: PeerHandle
    network: Network
    ledger: Ledger
    seed: int
    launcher: PeerClientLauncher = field(repr=False)
    _link: Any = field(default=None, repr=False)
    client: None = None
    transport: str = "udp"
    #: the client's exit status once it exited (None: stopped by pid, or not yet)
    exit_status: int | None = None
    _judged: bool = field(default=False, repr=False)

    async def shutdown(self, timeout: float) -> bool:
        """Shut the server's connection down as an application would, wait boundedly for
        its SHUTDOWN_COMPLETE, close it, the listener and the relay, then wait (bounded)
        for the peer's client to exit, else stop it by pid. False when the server's
        SHUTDOWN_COMPLETE did not come."""
        try:
            return await shutdown_and_wait(self.server, timeout)
        finally:
            self.close()
            try:
                self.exit_status = await self.launcher.wait_client(self.peer, timeout=CLIENT_EXIT_SECONDS)
                self.peer.record({"event": "exit", "status": self.exit_status})
            except (TimeoutError, KeyError):
                pass
            await self.launcher.stop(self.peer)

    def is_plumbing(self, stream_id: int | None) -> bool:
        """A stream an HTTP/3 client's connection keeps open for its life (control and
        QPACK streams, unidirectional either way): no application's doing."""
        return self.launcher.alpn == "h3" and is_unidirectional(stream_id)

    def is_plumbing_stream(self, stream: Any) -> bool:
        """:meth:`is_plumbing` of a stream object (anything with an ``id``)."""
        return self.is_plumbing(getattr(stream, "id", None))

    def judge_left(self) -> None:
        """The server's teardown for the observers (once): the ledger judges what it left."""
        if not self._judged:
            self._judged = True
            self.server.core.observe_teardown()

    def close(self) -> None:
        """Close at once (silently where still open) the server's connection, the listener and
        the relay, after judging what the application left (:meth:`judge_left`)."""
        self.judge_left()
        close_with_leftovers(self.server)
        self.listener.close()
        if self._link is not None:
            self._link.close()


async def open_peer_client_pair(peer: str, actions: Iterable[str], *, network: Network, seed: int,
                                server_settings: Settings, ledger: Ledger, server_handler: Any = None,
                                observers: tuple[Any, ...] = (), qlog: Any = None,
                                accept_timeout: float = 10.0) -> PeerClientPair:
    """Listen (``server_handler``, else :func:`echo_server`), put the relay in front of
    the listener, start ``peer``'s client with ``actions`` towards the relay and accept its
    connection. PeerNotInstalled when the peer is not installed; ConnectionError (or
    TimeoutError) when it did not connect."""
    clients = client_launcher(peer)
    reason = clients.missing()
    if reason is not None:
        raise PeerNotInstalled(reason)
    observers = watch_network(network, observers, qlog)
    chosen = normalize_actions(tuple(actions))
    reason = clients.unsupported(chosen)
    if reason is not None:
        raise PeerNotInstalled(reason)
    listener = await api.listen(handler=clients.server_handler(server_handler or echo_server, chosen),
                                settings=server_settings, ledger=ledger, observers=observers, quic_logger=qlog,
                                seed=seed, alpn=clients.alpn)
    link: Any = None
    handle: PeerHandle | None = None
    try:
        link = await Relay(("127.0.0.1", listener.port), network).start()
        handle = await clients.start_client(link.port, chosen, size=REQUEST_BYTES)
        server = await listener.accept(timeout=accept_timeout)
    except BaseException:
        listener.close()
        if link is not None:
            link.close()
        if handle is not None:
            await clients.stop(handle)
        raise
    return PeerClientPair(server, listener, handle, network, ledger, seed, clients, link)

"""quicsim's client against a foreign server: the peer started on 127.0.0.1, the seeded
relay in front of it, the client connected through the relay. The shape of
:class:`quicsim.pair.Pair` where the runner reads it (``server`` and ``listener`` are None)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import api
from ..ledger import Ledger
from ..network import Network
from ..pair import close_with_leftovers, shutdown_and_wait, watch_network
from ..settings import Settings
from ..transport.relay import Relay
from . import PeerLauncher, launcher
from .h3 import Http3Client, frame_as_http3
from .handle import PeerHandle

#: the ALPN every peer's server speaks to quicsim's client (raw streams)
PEER_ALPN = "quicsim"
#: the peers whose server speaks HTTP/3 only: the client frames its streams (quicsim.peers.h3)
HTTP3_PEERS = {"ngtcp2": "h3"}


@dataclass
class PeerPair:
    client: api.Connection
    peer: PeerHandle
    network: Network
    ledger: Ledger
    seed: int
    launcher: PeerLauncher = field(repr=False)
    _link: Any = field(default=None, repr=False)
    server: None = None
    listener: None = None
    transport: str = "udp"
    _judged: bool = field(default=False, repr=False)
    #: the HTTP/3 framing of the client's streams, for a peer that speaks HTTP/3 only
    framing: Http3Client | None = field(default=None, repr=False)

    def is_plumbing(self, stream_id: int | None) -> bool:
        """A stream HTTP/3 keeps open for the connection's life (no scenario's doing)."""
        return self.framing is not None and self.framing.is_plumbing(stream_id)

    def half_open(self) -> list[int]:
        """The client's streams the peer left half-open: quicsim reset its own direction
        (RESET_STREAM) and did not stop the peer's, and the peer never ended it (no FIN,
        no RESET_STREAM). MsQuic's stream waits for that end, so it is the peer's doing."""
        return [s.id for s in self.client.core.streams.values()
                if s.id is not None and not self.is_plumbing(s.id) and s.state.local_close_reset
                and not s.state.remote_closed and not s.state.sent_stop_sending]

    def half_open_text(self) -> str:
        """The :meth:`half_open` streams as one clause ("" when there are none)."""
        ids = self.half_open()
        if not ids:
            return ""
        return (f"the {self.peer.name} peer left client stream{'s' if len(ids) > 1 else ''} "
                f"{', '.join(map(str, ids))} half-open: after quicsim's RESET_STREAM it never ended its "
                f"direction (no FIN, no RESET_STREAM)")

    async def shutdown(self, timeout: float) -> bool:
        """Shut the client down as an application would, wait boundedly for its
        SHUTDOWN_COMPLETE, then close it, the relay and the peer's process. False when the
        client's SHUTDOWN_COMPLETE did not come."""
        try:
            return await shutdown_and_wait(self.client, timeout)
        finally:
            self.close()
            await self.launcher.stop(self.peer)

    def judge_left(self) -> None:
        """The client's teardown for the observers (once): the ledger judges what it left."""
        if not self._judged:
            self._judged = True
            self.client.core.observe_teardown()

    def close(self) -> None:
        """Close at once (silently where still open) the client and the relay, after judging
        what the application left (:meth:`judge_left`); the peer's process is :meth:`shutdown`'s."""
        self.judge_left()
        close_with_leftovers(self.client)
        if self._link is not None:
            self._link.close()


async def open_peer_pair(peer: str, behaviours: Iterable[str], *, network: Network, seed: int,
                         client_settings: Settings, ledger: Ledger, observers: tuple[Any, ...] = (),
                         qlog: Any = None) -> PeerPair:
    """Start ``peer``'s server with ``behaviours``, put the relay in front of it and
    connect quicsim's client through the relay (ALPN ``quicsim``, the test CA; ``h3``
    and HTTP/3 framing of the client's streams for a peer of :data:`HTTP3_PEERS`).
    PeerNotInstalled when the peer is not installed; ConnectionError when it did not come up."""
    chosen = launcher(peer)
    handle = await chosen.start(behaviours)
    link: Any = None
    try:
        observers = watch_network(network, observers, qlog)
        link = await Relay((handle.host, handle.port), network).start()
        client = await api.connect("127.0.0.1", link.port, settings=client_settings, ledger=ledger,
                                   observers=observers, quic_logger=qlog, seed=seed,
                                   alpn=HTTP3_PEERS.get(peer, PEER_ALPN))
    except BaseException:
        if link is not None:
            link.close()
        await chosen.stop(handle)
        raise
    framing = frame_as_http3(client, handle.behaviours) if peer in HTTP3_PEERS else None
    return PeerPair(client, handle, network, ledger, seed, chosen, link, framing=framing)

"""Foreign QUIC stacks as the server of a scenario: quicsim's client against a server
quicsim did not write, started by one launcher module per peer.

Each peer is a :class:`PeerLauncher`: ``start(behaviours)`` runs its server on 127.0.0.1
and returns a :class:`PeerHandle` once the port is bound, ``stop()`` ends it by process
id. What the server does with each client stream is picked from :data:`BEHAVIOURS`.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from .handle import BEHAVIOURS, PeerHandle, PeerNotInstalled, normalize_behaviours

__all__ = ["BEHAVIOURS", "PEERS", "PeerHandle", "PeerLauncher", "PeerNotInstalled", "launcher",
           "normalize_behaviours"]

#: the peers quicsim can run, by name (``quicsim run --peer NAME``, ``@scenario(peer=NAME)``)
PEERS = ("picoquic", "quiche", "ngtcp2")


class PeerLauncher(Protocol):
    """Starts and stops one foreign stack's server (one module per peer)."""

    name: str

    def missing(self) -> str | None:
        """Why the peer cannot run here, with the command that installs it; None when it can."""

    def install_command(self) -> str:
        """The shell command that installs the peer where :meth:`missing` looks."""

    def install(self) -> str | None:
        """Run the install command; None when the peer runs afterwards, else why not."""

    def unsupported(self, behaviours: tuple[str, ...]) -> str | None:
        """Why this peer's server cannot play ``behaviours`` in one run; None when it can."""

    async def start(self, behaviours: Iterable[str]) -> PeerHandle:
        """Run the server on 127.0.0.1, the n-th client stream getting the n-th behaviour
        (the last repeating); returns once the port is bound. PeerNotInstalled if it is
        not installed, ConnectionError if it did not come up."""

    async def stop(self, handle: PeerHandle) -> None:
        """End the server by its process id (bounded: SIGTERM, then SIGKILL)."""


def launcher(name: str) -> PeerLauncher:
    """The launcher of peer ``name`` (one of :data:`PEERS`)."""
    if name == "picoquic":
        from .picoquic import PicoquicLauncher

        return PicoquicLauncher()
    if name == "quiche":
        from .quiche import QuicheLauncher

        return QuicheLauncher()
    if name == "ngtcp2":
        from .ngtcp2 import Ngtcp2Launcher

        return Ngtcp2Launcher()
    raise ValueError(f"unknown peer {name!r} (one of {', '.join(PEERS)})")

"""A running foreign server as a scenario sees it (``ctx.peer``), the menu of behaviours it
can be given, and the error for a peer that is not installed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import QuicsimError

#: What the server does with a client stream, by name: read and answer (echo every
#: chunk, FIN after the client's FIN); STOP_SENDING on the client's direction at the first
#: bytes (and FIN on its own); RESET_STREAM of its own direction at the first bytes (the
#: client's is read to the end); close the connection at the first bytes; read all and
#: answer only after the client's FIN.
BEHAVIOURS = ("echo", "stop-sending", "reset", "close-connection", "answer-after-fin")
#: the application error codes the abortive behaviours send (the client sees them)
CODES = {"stop-sending": 0x42, "reset": 0x43, "close-connection": 0x44}


class PeerNotInstalled(QuicsimError):
    """The peer cannot run here; the message says why and the command that installs it."""


def normalize_menu(items: str | Iterable[str], menu: tuple[str, ...], option: str, item: str) -> tuple[str, ...]:
    """``"reset"`` or ``("stop-sending", "reset")`` as a checked tuple of ``menu``'s entries
    (ValueError naming ``option`` when empty, or the ``item`` not on the menu)."""
    chosen = (items,) if isinstance(items, str) else tuple(items)
    if not chosen:
        raise ValueError(f"{option} must name one or more of {', '.join(menu)}")
    for name in chosen:
        if name not in menu:
            raise ValueError(f"unknown {item} {name!r} (one of {', '.join(menu)})")
    return chosen


def normalize_behaviours(behaviours: str | Iterable[str]) -> tuple[str, ...]:
    """What a peer's server does with each client stream, checked against :data:`BEHAVIOURS`."""
    return normalize_menu(behaviours, BEHAVIOURS, "peer_behaviour", "peer behaviour")


@dataclass
class PeerHandle:
    """One running foreign server: its name, behaviours, address and process, and what it
    reported doing (one dict per action: ``{"event": "stop-sending", "stream": 0, ...}``)."""

    name: str
    behaviours: tuple[str, ...]
    host: str
    port: int
    pid: int
    #: what the server's socket is bound to, as it checked it (address, family, device)
    bound: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def behaviour(self) -> str:
        """The behaviours as one text (``"stop-sending,reset"``)."""
        return ",".join(self.behaviours)

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    def saw(self, event: str) -> list[dict[str, Any]]:
        """The reports of ``event`` so far (``"stop-sending"``, ``"reset"``, ...)."""
        return [e for e in self.events if e.get("event") == event]

    async def wait_event(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the server reported ``event`` ``count`` times (TimeoutError after
        ``timeout`` s); returns those reports."""
        async with asyncio.timeout(timeout):
            while len(self.saw(event)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.saw(event)

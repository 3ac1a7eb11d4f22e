"""Scenario files: ``@quicsim.scenario(...)`` on an async function ``fn(ctx)``.

The decorator only records and checks the options (bad ones fail when the file is
imported, naming the option); :mod:`quicsim.runner` runs them.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Literal, Mapping, TypeVar, overload

from .network import NetworkProfile
from .peers import PEERS, normalize_behaviours
from .peers.clients import CLIENT_PEERS, normalize_actions
from .settings import Settings

if TYPE_CHECKING:  # the context's real classes, for type checkers (imported lazily at run time)
    from .api import Connection, ConnectionHandler, Listener, Stream
    from .ledger import Ledger
    from .network import Network
    from .peers import PeerHandle

EXPECTATIONS = ("ok", "leak", "violation")
BACKENDS: tuple[Literal["simulator", "msquic"], ...] = ("simulator", "msquic")
ATTRIBUTE = "__quicsim_scenario__"

#: ``@scenario(transport=...)``: loopback UDP through the relay, or the in-memory link
Transport = Literal["udp", "memory"]
#: ``@scenario(backends=...)``: where a scenario can run
Backend = Literal["simulator", "msquic"]
#: ``@scenario(peer=...)``: a foreign stack as the server (quicsim.peers.PEERS)
Peer = Literal["picoquic", "quiche", "ngtcp2"]
#: ``@scenario(peer_behaviour=...)``: what the peer's server does with a client stream
PeerBehaviour = Literal["echo", "stop-sending", "reset", "close-connection", "answer-after-fin"]
#: ``@scenario(peer_client=...)``: a foreign stack as the client (quicsim.peers.clients.CLIENT_PEERS)
PeerClient = Literal["picoquic", "quiche", "ngtcp2"]
#: ``@scenario(peer_client_behaviour=...)``: what the peer's client does on its n-th stream
PeerClientBehaviour = Literal["echo", "stop-sending", "reset", "close-connection"]
#: ``@scenario(expect=...)``
Expectation = Literal["ok", "leak", "violation"]
#: What ``@scenario`` decorates: ``async def name(ctx: ScenarioContext) -> None``
ScenarioFunction = Callable[["ScenarioContext"], Awaitable[None]]
_F = TypeVar("_F", bound=ScenarioFunction)


@dataclass(frozen=True)
class ScenarioSpec:
    """One decorated scenario function and its options."""

    fn: ScenarioFunction
    name: str
    network: dict[str, Any] = field(default_factory=dict)
    timeout: float = 20.0
    seed: int = 1
    client_settings: Settings = field(default_factory=Settings)
    server_settings: Settings = field(default_factory=Settings)
    repeat: int = 1
    expect: str = "ok"
    server: ConnectionHandler | None = None
    transport: str = "udp"
    #: the backends the scenario can run on (quicsim run --backend)
    backends: tuple[str, ...] = BACKENDS
    #: the outcomes (quicsim.outcomes notation) a run may reach; None: any
    expect_outcomes: frozenset[str] | None = None
    #: a foreign stack as the server (quicsim run --peer overrides it); None: quicsim's
    peer: str | None = None
    #: what the peer's server does with the n-th client stream (the last repeating)
    peer_behaviour: tuple[str, ...] = ("echo",)
    #: a foreign stack as the client, quicsim's server its peer (quicsim run --peer-client
    #: overrides it); None: quicsim's client
    peer_client: str | None = None
    #: what the peer's client does on its n-th stream, one stream per entry
    peer_client_behaviour: tuple[str, ...] = ("echo",)
    #: written for its own peer (its codes, its quirks): a run naming another skips it
    peer_only: bool = False
    file: str = ""
    line: int = 0

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""


def _settings_pair(settings: object) -> tuple[Settings, Settings]:
    if settings is None:
        return Settings(), Settings()
    if isinstance(settings, Settings):
        return settings, settings
    if isinstance(settings, dict) and set(settings) <= {"client", "server"}:
        client = settings.get("client", Settings())
        server = settings.get("server", Settings())
        if isinstance(client, dict):
            client = Settings(**client)
        if isinstance(server, dict):
            server = Settings(**server)
        return client, server
    raise ValueError("settings must be a Settings or {'client': Settings, 'server': Settings}")


#: ``@scenario(settings=...)``: one Settings for both sides, or ``{"client": .., "server": ..}``
#: (each a Settings or the keyword arguments of one)
ScenarioSettings = Settings | Mapping[str, "Settings | Mapping[str, Any]"]


@overload
def scenario(fn: _F, /) -> _F: ...


@overload
def scenario(
    *,
    network: dict[str, Any] | None = None,
    timeout: float = 20.0,
    seed: int = 1,
    settings: ScenarioSettings | None = None,
    repeat: int = 1,
    expect: Expectation = "ok",
    server: ConnectionHandler | None = None,
    transport: Transport = "udp",
    backends: Backend | Iterable[Backend] = BACKENDS,
    expect_outcomes: str | Iterable[str] | None = None,
    peer: Peer | None = None,
    peer_behaviour: PeerBehaviour | Iterable[PeerBehaviour] = "echo",
    peer_client: PeerClient | None = None,
    peer_client_behaviour: PeerClientBehaviour | Iterable[PeerClientBehaviour] = "echo",
    peer_only: bool = False,
) -> Callable[[_F], _F]: ...


def scenario(
    fn: ScenarioFunction | None = None,
    *,
    network: dict[str, Any] | None = None,
    timeout: float = 20.0,
    seed: int = 1,
    settings: ScenarioSettings | None = None,
    repeat: int = 1,
    expect: Expectation = "ok",
    server: ConnectionHandler | None = None,
    transport: Transport = "udp",
    backends: Backend | Iterable[Backend] = BACKENDS,
    expect_outcomes: str | Iterable[str] | None = None,
    peer: Peer | None = None,
    peer_behaviour: PeerBehaviour | Iterable[PeerBehaviour] = "echo",
    peer_client: PeerClient | None = None,
    peer_client_behaviour: PeerClientBehaviour | Iterable[PeerClientBehaviour] = "echo",
    peer_only: bool = False,
) -> ScenarioFunction | Callable[[ScenarioFunction], ScenarioFunction]:
    """Mark ``async def fn(ctx)`` as a scenario.

    ``network``: impairments (see ``quicsim.network``); ``timeout``: seconds for the
    body and the settling after it; ``seed``: the first seed (runs ``repeat`` seeds
    from it); ``settings``: a ``Settings`` for both sides or ``{"client": ..,
    "server": ..}`` (faults included); ``expect``: ``"ok"``, or ``"leak"`` /
    ``"violation"`` for a scenario that passes only when the ledger catches one;
    ``server``: the server connection's handler (default: peer streams are read to
    the end and closed gracefully); ``transport``: ``"udp"`` (loopback sockets through
    the relay) or ``"memory"`` (in-memory link on a virtual clock: deterministic);
    ``backends``: where it can run, ``("simulator",)`` for a scenario that needs the
    simulator for a reason quicsim cannot see (it skips those that inject faults the
    library does not have, or run on the memory transport, by itself);
    ``expect_outcomes``: the outcomes a run may reach, in the notation of
    ``quicsim outcomes`` (a run that reaches another fails, naming it); ``peer``: a
    foreign stack as the server (``"picoquic"``; ``ctx.peer`` then stands for it and
    there is no ``ctx.server``); ``peer_behaviour``: what that server does with the n-th
    client stream, the last repeating (``"echo"``, ``"stop-sending"``, ``"reset"``,
    ``"close-connection"``, ``"answer-after-fin"``; see docs/peers.md);
    ``peer_client``: a foreign stack as the client of quicsim's server (``ctx.server``;
    ``ctx.peer`` stands for the client and there is no ``ctx.client``; the ledger judges
    the server's sends); ``peer_client_behaviour``: what that client does, one stream per
    entry in order (``"echo"``, ``"stop-sending"``, ``"reset"``, ``"close-connection"``);
    ``peer_only``: the scenario is written for its own ``peer`` or ``peer_client`` (it
    checks that stack's error codes, say), so a run whose ``--peer``/``--peer-client``
    names another stack skips it instead of running it there.
    """

    def decorate(func: ScenarioFunction) -> ScenarioFunction:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"@scenario needs an async function, got {func!r}")
        if expect not in EXPECTATIONS:
            raise ValueError(f"expect must be one of {', '.join(EXPECTATIONS)}, got {expect!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an int >= 1, got {repeat!r}")
        if transport not in ("udp", "memory"):
            raise ValueError(f"transport must be 'udp' or 'memory', got {transport!r}")
        chosen = (backends,) if isinstance(backends, str) else tuple(backends)
        if not chosen or any(b not in BACKENDS for b in chosen):
            raise ValueError(f"backends must name some of {', '.join(BACKENDS)}, got {backends!r}")
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        allowed = None
        if expect_outcomes is not None:
            allowed = frozenset([expect_outcomes] if isinstance(expect_outcomes, str) else expect_outcomes)
            if not allowed or not all(isinstance(o, str) and o for o in allowed):
                raise ValueError(f"expect_outcomes must be outcome strings (see quicsim outcomes), "
                                 f"got {expect_outcomes!r}")
        if peer is not None and peer not in PEERS:
            raise ValueError(f"peer must be one of {', '.join(PEERS)}, got {peer!r}")
        behaviours = normalize_behaviours(peer_behaviour)
        if peer_client is not None and peer_client not in CLIENT_PEERS:
            raise ValueError(f"peer_client must be one of {', '.join(CLIENT_PEERS)}, got {peer_client!r}")
        if peer is not None and peer_client is not None:
            raise ValueError("peer= and peer_client= exclude each other: one end of a run is quicsim's")
        if peer_only and peer is None and peer_client is None:
            raise ValueError("peer_only=True needs the peer it is written for: peer= or peer_client=")
        try:
            client_actions = normalize_actions(peer_client_behaviour)
        except ValueError as exc:
            raise ValueError(f"peer_client_behaviour: {exc}") from None
        NetworkProfile.from_dict(network)  # raises NetworkError naming the bad key
        client_settings, server_settings = _settings_pair(settings)
        code = func.__code__
        spec = ScenarioSpec(
            fn=func, name=func.__name__, network=dict(network or {}), timeout=float(timeout),
            seed=seed, client_settings=client_settings, server_settings=server_settings,
            repeat=repeat, expect=expect, server=server, transport=transport, backends=chosen,
            expect_outcomes=allowed, peer=peer, peer_behaviour=behaviours,
            peer_client=peer_client, peer_client_behaviour=client_actions, peer_only=bool(peer_only),
            file=code.co_filename,
            line=code.co_firstlineno,
        )
        setattr(func, ATTRIBUTE, spec)
        return func

    if fn is not None:
        return decorate(fn)
    return decorate


class NotQuicsims(AttributeError):
    """``ctx.client`` (``ctx.server``, ``ctx.listener``) in a run where a foreign peer is
    that end: the runner skips the run, saying so."""

    def __init__(self, what: str, side: str, peer: str) -> None:
        super().__init__(f"ctx.{what}: this run's {side} is the {peer} peer, not quicsim's (use ctx.peer)")
        self.what, self.side = what, side


class ScenarioContext:
    """What a scenario function gets: the connected pair, the live network, the ledger."""

    def __init__(self, *, client: Connection | None, server: Connection | None, listener: Listener | None, seed: int,
                 network: Network, ledger: Ledger, spec: ScenarioSpec, backend: str = "simulator",
                 peer: PeerHandle | None = None) -> None:
        #: "simulator", or "msquic" when both ends are the real library
        self.backend = backend
        self._client = client
        self._server = server
        self._listener = listener
        #: the foreign server when the run has one (``--peer``, ``@scenario(peer=...)``),
        #: or the foreign client (``--peer-client``, ``@scenario(peer_client=...)``): its
        #: name, behaviours, host, port, pid and the actions it reported; else None
        self.peer = peer
        self.seed = seed
        self.network = network
        self.ledger = ledger
        self.spec = spec
        #: a random.Random seeded with the scenario's seed, for scenario-side choices
        self.random = random.Random(seed)
        self.notes: list[str] = []

    @property
    def client(self) -> Connection:
        """quicsim's client connection; a run against a foreign client has none (ctx.peer)."""
        if self._client is None:
            raise NotQuicsims("client", "client", self.peer.name if self.peer is not None else "a foreign stack")
        return self._client

    @property
    def server(self) -> Connection:
        """quicsim's server connection; a run against a foreign peer has none (ctx.peer)."""
        if self._server is None:
            raise self._no_server("server")
        return self._server

    @property
    def listener(self) -> Listener:
        """quicsim's listener; a run against a foreign peer has none (ctx.peer)."""
        if self._listener is None:
            raise self._no_server("listener")
        return self._listener

    def _no_server(self, what: str) -> NotQuicsims:
        return NotQuicsims(what, "server", self.peer.name if self.peer is not None else "a foreign stack")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0,
                         what: str = "condition") -> None:
        """Poll ``predicate`` until it is true (every 5 ms), or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise asyncio.TimeoutError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.005)

    async def wait_all_shutdown_complete(self, streams: list[Stream], timeout: float = 10.0) -> None:
        """Wait until every stream in ``streams`` delivered SHUTDOWN_COMPLETE."""
        # (asyncio.timeout, not wait_for: on 3.11 wait_for leaves a cancelled gather's
        # CancelledError unretrieved, and the loop prints it as a traceback at Ctrl-C)
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(s.wait_shutdown_complete() for s in streams))

    async def until_raced(self, attempt: Callable[[], Awaitable[bool]], attempts: int = 20) -> int:
        """Run ``attempt`` until it returns True (the race it sets up happened), at most
        ``attempts`` times; returns how many it took. Under preemption (``--preempt``) the
        worker may run between any two calls, so a race needs tries, as on MsQuic."""
        for n in range(1, attempts + 1):
            if await attempt():
                return n
        raise AssertionError(f"the race did not happen in {attempts} attempts (the worker ran between the calls)")

    def note(self, text: str) -> None:
        """Add a line to this run's result (shown with failures)."""
        self.notes.append(text)

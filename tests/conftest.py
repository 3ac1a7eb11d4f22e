"""Shared fixtures: a real client and server over loopback UDP with the test CA."""

from __future__ import annotations

import asyncio
import os
import textwrap
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

import quicsim
from quicsim import Settings
from quicsim.core import ConnectionCore
from quicsim.loader import load_scenarios
from quicsim.pair import open_pair

pytest_plugins = ["pytester"]

# The core checks its exactly-once bookkeeping after every operation (core/stream.py).
os.environ.setdefault("QUICSIM_CHECK_INVARIANTS", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "core_broken_on_purpose: the test breaks the core's exactly-once "
                                       "bookkeeping on purpose (its own check is expected to fire)")


@pytest.fixture(autouse=True)
def _core_keeps_exactly_once(monkeypatch, request):
    """Every test fails if the core's own exactly-once check fired in it (a quicsim bug),
    whatever the test itself looked at."""
    broken: list[str] = []
    check = ConnectionCore.check_exactly_once

    def checked(self):
        before = len(self.state_errors)
        check(self)
        broken.extend(self.state_errors[before:])

    monkeypatch.setattr(ConnectionCore, "check_exactly_once", checked)
    yield
    if not request.node.get_closest_marker("core_broken_on_purpose"):
        assert not broken, f"the core's exactly-once check fired: {broken}"


async def eventually(predicate, what: str = "the condition", timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds, re-checking as the loop runs: a wait on what the
    test needs, bounded by ``timeout``, instead of a pause that guesses how long it takes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.001)


def skip_unless_installed(peer_launcher) -> None:
    """Skip the test, with the command that installs it, where the peer this launcher (a
    server's or a client's) starts is not installed."""
    missing = peer_launcher.missing()
    if missing is not None:
        pytest.skip(missing)


def installed_peers(names, launcher_of, name: str = "peer"):
    """A fixture called ``name`` that gives each of the peers ``names`` in turn, skipping
    where one is not installed (``launcher_of``: :func:`quicsim.peers.launcher` or
    :func:`quicsim.peers.clients.client_launcher`). A module binds it to that name."""

    @pytest.fixture(params=names, name=name)
    def peer(request):
        skip_unless_installed(launcher_of(request.param))
        return request.param

    return peer


def load_scenario_text(tmp_path, body: str):
    """The scenarios of ``body`` (a scenario file's text, indented as in the test), written
    to a file under ``tmp_path`` and loaded as ``quicsim run`` loads it."""
    path = tmp_path / "scn.py"
    path.write_text(textwrap.dedent(body))
    return load_scenarios([str(path)])


def send_garbage_initials(port: int, count: int) -> None:
    """``count`` real Initials to 127.0.0.1:``port``, each from a client that never answers."""
    import socket

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            quic = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["quicsim"]))
            quic.connect(("127.0.0.1", port), now=0.0)
            for data, _addr in quic.datagrams_to_send(now=0.0):
                sock.sendto(data, ("127.0.0.1", port))


async def round_trip(conn) -> "quicsim.Stream":
    """A fresh stream started and shut down, waited for to the end: a whole exchange with
    the peer. Before checking that something did *not* happen, this proves the loop, the
    link and the peer all had their turn (no data: a peer that collects data sees none).
    Returns that stream (the peer may still hold its side, until its FIN is acknowledged)."""
    stream = conn.open_stream()
    stream.start()
    stream.shutdown(quicsim.StreamShutdownFlags.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=20)
    return stream


class Recorder:
    """A stream or connection handler that keeps every event it is given, in order."""

    def __init__(self, on_event=None) -> None:
        self.events: list = []
        self.on_event = on_event

    def __call__(self, target, event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(target, event)

    def types(self) -> list[str]:
        return [e.type.name for e in self.events]

    def completions(self) -> list[tuple]:
        return [(e.client_context, e.canceled) for e in self.events
                if e.type is quicsim.StreamEventType.SEND_COMPLETE]


@dataclass
class Pair:
    listener: quicsim.Listener
    client: quicsim.Connection
    server: quicsim.Connection
    server_events: Recorder = field(default_factory=Recorder)


async def make_pair(client_settings: Settings | None = None, server_settings: Settings | None = None,
                    server_handler=None) -> Pair:
    server_events = Recorder(server_handler)
    listener = await quicsim.listen(handler=server_events, settings=server_settings)
    client = await quicsim.connect("127.0.0.1", listener.port, settings=client_settings)
    server = await listener.accept(timeout=5)
    return Pair(listener, client, server, server_events)


async def close_pair(pair: Pair) -> None:
    pair.client.close()
    pair.listener.close()
    await asyncio.sleep(0)


def judge(*ledgers) -> None:
    """Fail unless every ledger saw the contract kept (no leak, violation or stall)."""
    for ledger in ledgers:
        ledger.assert_ok()


@pytest_asyncio.fixture
async def pair():
    """Client and server over loopback UDP, each side with its own ledger; both are
    judged at teardown, after the client closed."""
    p = await make_pair()
    yield p
    await close_pair(p)
    judge(p.client.ledger, p.listener.ledger)


@pytest_asyncio.fixture
async def mem():
    """Client and server on the in-memory link sharing one ledger (so the wire witness
    applies); judged at teardown, after both sides shut down."""
    p = await open_pair(transport="memory")
    yield p
    await p.shutdown()
    judge(p.ledger)

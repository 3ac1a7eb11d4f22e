"""Foreign QUIC stacks as the client of a ``quicsim.listen()``: a launcher runs the peer's
client as a child process that connects to 127.0.0.1, opens one stream per action of
:data:`CLIENT_ACTIONS` and exits once every stream (or the connection) is over; quicsim's
listener, with its handler and ledger, is the server."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any, Callable, Iterable, Protocol

from .. import certs
from .handle import PeerHandle, PeerNotInstalled, normalize_menu
from .process import START_SECONDS, ChildLauncher, PeerProcess, _parse

__all__ = ["CLIENT_ACTIONS", "CLIENT_CODES", "CLIENT_PEERS", "ClientProcess", "PeerClientLauncher",
           "client_launcher", "normalize_actions"]

#: the peers that can run as a client of quicsim's listener
CLIENT_PEERS = ("picoquic", "quiche", "ngtcp2")
#: What the client does on its n-th stream: send the request with FIN and read the answer
#: to its FIN; or send the request without FIN and, at the first bytes of the answer,
#: STOP_SENDING the server's direction, RESET_STREAM its own (the stream is over when the
#: server ends its side) or close the connection.
CLIENT_ACTIONS = ("echo", "stop-sending", "reset", "close-connection")
#: the application error codes of the abortive actions (quicsim's server sees them) for
#: picoquic's and quiche's clients; ngtcp2's HTTP/3 client has nghttp3's (quicsim.peers.ngtcp2_client.CODES)
CLIENT_CODES = {"stop-sending": 0x52, "reset": 0x53, "close-connection": 0x54}
#: seconds a client has to finish before it gives up by itself (and the launcher after it)
CLIENT_SECONDS = 30.0


def normalize_actions(actions: str | Iterable[str]) -> tuple[str, ...]:
    """What a peer's client does on each stream, checked against :data:`CLIENT_ACTIONS`."""
    return normalize_menu(actions, CLIENT_ACTIONS, "client actions", "client action")


class PeerClientLauncher(Protocol):
    """Runs one foreign stack's client against a quicsim listener."""

    name: str
    #: the ALPN the peer's client offers (quicsim's listener must speak it)
    alpn: str

    def missing(self) -> str | None:
        """Why the peer cannot run here, with the command that installs it; None when it can."""

    def unsupported(self, actions: tuple[str, ...]) -> str | None:
        """Why this peer's client cannot play ``actions`` in one run; None when it can."""

    def server_handler(self, handler: Callable[..., Any], actions: tuple[str, ...]) -> Callable[..., Any]:
        """The listener's handler around the application's ``handler`` for this client
        (the same one, unless the client needs an application protocol's framing)."""

    async def start_client(self, port: int, actions: Iterable[str], size: int = 1000) -> PeerHandle:
        """Start the client towards 127.0.0.1:``port``, one stream of ``size`` bytes per
        action; returns once it runs, its reports arriving in the handle's events."""

    async def wait_client(self, handle: PeerHandle, timeout: float = CLIENT_SECONDS) -> int:
        """Wait until the client exited (bounded; stopped by pid past ``timeout``); its status."""

    async def stop(self, handle: PeerHandle) -> None:
        """End the client by its process id (bounded: SIGTERM, then SIGKILL)."""


class ClientProcess(PeerProcess):
    """A client child: started once it says so (its signal and stdin handlers are in
    place, so a stop by pid is heard), its reports read as it runs."""

    async def start_client(self, port: int) -> PeerHandle:
        self.proc = await asyncio.create_subprocess_exec(
            # stdin held open: the client ends when it reads its end (this process is gone)
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stderr = asyncio.ensure_future(self.proc.stderr.read())
        handle = PeerHandle(self.name, self.behaviours, "127.0.0.1", port, self.proc.pid)
        try:
            await asyncio.wait_for(self._started_line(handle), START_SECONDS)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, asyncio.TimeoutError):
                raise ConnectionError(f"the {self.name} client did not start within {START_SECONDS:g} s") from None
            raise
        self.reader = asyncio.ensure_future(self._read_reports(handle))
        return handle

    async def _started_line(self, handle: PeerHandle) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:  # it exited before starting: say what it said
                err = (await self.stderr).decode(errors="replace").strip() if self.stderr else ""
                last = err.splitlines()[-1] if err else f"exit status {await self.proc.wait()}"
                raise ConnectionError(f"the {self.name} client exited before starting: {last}")
            record = _parse(line)
            if "error" in record:
                raise ConnectionError(f"the {self.name} client refused to run: {record['error']}")
            if record:
                handle.record(record)
            if record.get("event") == "started":
                return

    async def wait(self, timeout: float) -> int:
        """The exit status, once every report is read; SIGTERM/SIGKILL past ``timeout``."""
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise TimeoutError(f"the {self.name} client did not finish within {timeout:g} s") from None
        await self._drain()
        assert self.proc.returncode is not None
        return self.proc.returncode


class ClientLauncher:
    """What the peers' client launchers share: the peer's server launcher says where it is
    installed; :meth:`argv` how its client script is run."""

    name = ""
    alpn = "quicsim"

    def __init__(self, server: ChildLauncher) -> None:
        self.server = server
        self._processes: dict[int, ClientProcess] = {}

    def missing(self) -> str | None:
        return self.server.missing()

    def unsupported(self, actions: tuple[str, ...]) -> str | None:
        return None

    def server_handler(self, handler: Callable[..., Any], actions: tuple[str, ...]) -> Callable[..., Any]:
        return handler

    def argv(self, port: int, actions: tuple[str, ...], size: int) -> list[str]:  # pragma: no cover - each peer says
        raise NotImplementedError

    def common_args(self, port: int, actions: tuple[str, ...], size: int) -> list[str]:
        return ["--port", str(port), "--ca", str(certs.default_paths().ca), "--action", ",".join(actions),
                "--size", str(size), "--timeout", str(CLIENT_SECONDS)]

    async def start_client(self, port: int, actions: Iterable[str], size: int = 1000) -> PeerHandle:
        chosen = normalize_actions(tuple(actions))
        reason = self.missing()
        if reason is not None:
            raise PeerNotInstalled(reason)
        process = ClientProcess(self.name, chosen, self.argv(port, chosen, size), self.server.env())
        handle = await process.start_client(port)
        self._processes[handle.pid] = process
        return handle

    async def wait_client(self, handle: PeerHandle, timeout: float = CLIENT_SECONDS + 5) -> int:
        process = self._processes.pop(handle.pid)
        return await process.wait(timeout)

    async def stop(self, handle: PeerHandle) -> None:
        """End the client by its process id (bounded: SIGTERM, then SIGKILL)."""
        process = self._processes.pop(handle.pid, None)
        if process is not None:
            await process.stop()


class PicoquicClientLauncher(ClientLauncher):
    """picoquic's client (through aiopquic, in the picoquic peer's virtualenv)."""

    name = "picoquic"

    def __init__(self) -> None:
        from .picoquic import PicoquicLauncher

        super().__init__(PicoquicLauncher())

    def argv(self, port: int, actions: tuple[str, ...], size: int) -> list[str]:
        from .picoquic import SERVER, PicoquicLauncher

        assert isinstance(self.server, PicoquicLauncher)
        return [str(self.server.python), str(SERVER.with_name("picoquic_client.py")),
                *self.common_args(port, actions, size)]


class QuicheClientLauncher(ClientLauncher):
    """quiche's client (through @matrixai/quic under Node, in the quiche peer's folder)."""

    name = "quiche"

    def __init__(self) -> None:
        from .quiche import QuicheLauncher

        super().__init__(QuicheLauncher())

    def argv(self, port: int, actions: tuple[str, ...], size: int) -> list[str]:
        from .quiche import SERVER, QuicheLauncher

        assert isinstance(self.server, QuicheLauncher)
        return [shutil.which("node") or "node", str(SERVER.with_name("quiche_client.mjs")),
                "--modules", str(self.server.folder), *self.common_args(port, actions, size)]


def client_launcher(name: str) -> PeerClientLauncher:
    """The client launcher of peer ``name`` (one of :data:`CLIENT_PEERS`)."""
    if name == "picoquic":
        return PicoquicClientLauncher()
    if name == "quiche":
        return QuicheClientLauncher()
    if name == "ngtcp2":
        from .ngtcp2_client import Ngtcp2ClientLauncher

        return Ngtcp2ClientLauncher()
    raise ValueError(f"no client for peer {name!r} (one of {', '.join(CLIENT_PEERS)})")

"""ngtcp2's client against quicsim's server: Debian's ``gtlsclient`` (ngtcp2's example
HTTP/3 client on GnuTLS, package ``ngtcp2-client``) as a child process that POSTs one
request per action to a ``quicsim.listen()`` on 127.0.0.1 and exits once every stream is
closed. It speaks HTTP/3 only (ALPN ``h3``), so quicsim's server answers with HTTP/3
framing (:class:`quicsim.peers.h3.Http3Server`); what the client did is read from its
frame log on its standard error, as for ngtcp2's server.

The client has no switch of its own for an abort: nghttp3 stops a stream (STOP_SENDING,
H3_MESSAGE_ERROR) when the answer is malformed and closes the connection
(H3_FRAME_UNEXPECTED) when a frame does not belong on a request stream, so the server's
framing provokes each action at the first bytes of its answer (:data:`quicsim.peers.h3.RESPONSES`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from .clients import CLIENT_SECONDS, ClientLauncher, ClientProcess, normalize_actions
from .h3 import H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR, H3_NO_ERROR, Http3Server
from .handle import PeerHandle, PeerNotInstalled
from .ngtcp2 import Ngtcp2Launcher, parse_frame_line, record_frame_log

CLIENT = "/usr/bin/gtlsclient"
INSTALL = "apt-get install ngtcp2-client"
#: the application error codes nghttp3 sends for each abortive action (quicsim's server sees them)
CODES = {"stop-sending": H3_MESSAGE_ERROR, "close-connection": H3_FRAME_UNEXPECTED}
#: the log lines that say the handshake is over and which ALPN it chose
_CONNECTED = b"QUIC handshake has completed"
_ALPN = b"Negotiated ALPN is "


def unsupported(actions: tuple[str, ...]) -> str | None:
    """Why ngtcp2's client cannot play this menu, None when it can."""
    if "reset" in actions:
        return ("ngtcp2's client resets its own direction only beside a STOP_SENDING, and only while its "
                "request is not all acknowledged (it sends the request with FIN at once): not an action it "
                "can be made to take")
    return None


def client_event(line: bytes) -> dict[str, Any] | None:
    """What one line of the client's log reports (None for the other lines). Its
    CONNECTION_CLOSE with H3_NO_ERROR is its goodbye once every stream closed ("closed"),
    any other code the close-connection action."""
    if _CONNECTED in line:
        return {"event": "connected"}
    if line.startswith(_ALPN):
        return {"event": "alpn", "alpn": line[len(_ALPN):].strip().decode(errors="replace")}
    event = parse_frame_line(line)
    if event is not None and event["event"] == "close-connection" and event.get("code") == H3_NO_ERROR:
        event["event"] = "closed"
    return event


class Ngtcp2ClientProcess(ClientProcess):
    """gtlsclient as a child: started once spawned, its reports read from its log; at its
    exit the body each stream downloaded (``body`` events), then ``done`` (status 0) and
    ``stopped``."""

    def __init__(self, actions: tuple[str, ...], argv: list[str], folder: tempfile.TemporaryDirectory[str]) -> None:
        super().__init__("ngtcp2", actions, argv)
        self.folder = folder

    async def start_client(self, port: int) -> PeerHandle:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        handle = PeerHandle(self.name, self.behaviours, "127.0.0.1", port, self.proc.pid)
        handle.record({"event": "started"})
        self.reader = asyncio.ensure_future(self._read_log(handle))
        return handle

    async def _read_log(self, handle: PeerHandle) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            await record_frame_log(self.proc.stderr, client_event, handle)
            status = await self.proc.wait()
            for index in range(len(self.behaviours)):
                body = Path(self.folder.name, "download", str(index))
                if body.exists():
                    handle.record({"event": "body", "stream": 4 * index, "bytes": body.stat().st_size})
            if status == 0:
                handle.record({"event": "done"})
            handle.record({"event": "stopped", "status": status})
        finally:
            self.folder.cleanup()


class Ngtcp2ClientLauncher(ClientLauncher):
    """Runs ngtcp2's example client (Debian's gtlsclient) against a quicsim listener."""

    name = "ngtcp2"
    alpn = "h3"

    def __init__(self) -> None:
        super().__init__(Ngtcp2Launcher())

    def missing(self) -> str | None:
        if not os.access(CLIENT, os.X_OK):
            return f"ngtcp2 client not installed (no {CLIENT}); install it with: {INSTALL}"
        return None

    def unsupported(self, actions: tuple[str, ...]) -> str | None:
        return unsupported(actions)

    def server_handler(self, handler: Callable[..., Any], actions: tuple[str, ...]) -> Callable[..., Any]:
        return Http3Server(handler, actions)

    def client_argv(self, port: int, actions: tuple[str, ...], folder: Path) -> list[str]:
        # the client reads no input, so it cannot stop at the end of the launcher's pipe:
        # util-linux's setpriv (same pid, by exec) has the kernel SIGTERM it when the
        # launcher's process is gone
        setpriv = shutil.which("setpriv")
        orphan_guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        # one URI per action, so each stream's body lands in a file of its own (/0, /1, ...)
        uris = [f"https://localhost/{index}" for index in range(len(actions))]
        return [*orphan_guard, CLIENT, "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
                "--http-method", "POST", "--data", str(folder / "request"), "--download", str(folder / "download"),
                "--timeout", f"{CLIENT_SECONDS:g}s", "127.0.0.1", str(port), *uris]

    async def start_client(self, port: int, actions: Iterable[str], size: int = 1000) -> PeerHandle:
        chosen = normalize_actions(tuple(actions))
        reason = self.missing() or unsupported(chosen)
        if reason is not None:
            raise PeerNotInstalled(reason)
        folder = tempfile.TemporaryDirectory(prefix="quicsim-ngtcp2-")
        Path(folder.name, "request").write_bytes(bytes(size))
        Path(folder.name, "download").mkdir()
        process = Ngtcp2ClientProcess(chosen, self.client_argv(port, chosen, Path(folder.name)), folder)
        handle = await process.start_client(port)
        self._processes[handle.pid] = process
        return handle

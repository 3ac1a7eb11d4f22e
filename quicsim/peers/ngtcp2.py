"""The ngtcp2 peer: Debian's ``gtlsserver`` (ngtcp2's example HTTP/3 server on GnuTLS,
package ``ngtcp2-server``) as a child process on 127.0.0.1. It speaks HTTP/3 only, so the
client frames its streams (:mod:`quicsim.peers.h3`); what it did is read from its own
frame log (``frm tx``/``frm rx`` lines on its standard error)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import certs
from .handle import PeerHandle, PeerNotInstalled, normalize_behaviours
from .picoquic import peers_dir
from .process import START_SECONDS, ChildLauncher, PeerProcess, udp_sockets

SERVER = "/usr/sbin/gtlsserver"
INSTALL = "apt-get install ngtcp2-server ngtcp2-client"
INSTALL_QUIETLY = "apt-get install -y -qq ngtcp2-server ngtcp2-client"
#: how often the launcher looks for the server's bound socket while it starts (bounded by
#: START_SECONDS): the server prints nothing when it binds
PROBE_SECONDS = 0.02

#: one frame of the server's log: direction, frame name, the rest of the line
_FRAME = re.compile(rb" frm (tx|rx) \d+ \S+ (STOP_SENDING|RESET_STREAM|CONNECTION_CLOSE|STREAM)\(0x[0-9a-f]+\) (.*)")
_FIELD = re.compile(rb"(\w+)=(?:\S*\()?(0x[0-9a-f]+|\d+)")
#: what each logged frame means, as the other peers' servers report it
_EVENTS = {(b"tx", b"STOP_SENDING"): "stop-sending", (b"tx", b"RESET_STREAM"): "reset",
           (b"tx", b"CONNECTION_CLOSE"): "close-connection", (b"rx", b"STOP_SENDING"): "stop-sending-received",
           (b"rx", b"RESET_STREAM"): "reset-received", (b"rx", b"STREAM"): "fin-received",
           (b"tx", b"STREAM"): "fin-sent",
           (b"rx", b"CONNECTION_CLOSE"): "close-received"}


def parse_frame_line(line: bytes) -> dict[str, Any] | None:
    """The event one line of the server's log reports (None for the other lines):
    ``{"event": "stop-sending", "stream": 0, "code": 256}`` and so on."""
    match = _FRAME.search(line)
    if match is None:
        return None
    direction, name, rest = match.groups()
    if (direction, name) not in _EVENTS:
        return None
    fields = {k.decode(): int(v, 0) for k, v in _FIELD.findall(rest)}
    if name == b"STREAM" and (not fields.get("fin") or fields.get("id", 1) & 3 != 0):
        return None  # only the FINs of a client's request stream
    event: dict[str, Any] = {"event": _EVENTS[(direction, name)]}
    if "id" in fields:
        event["stream"] = fields["id"]
    code = fields.get("app_error_code", fields.get("error_code"))
    if code is not None and name != b"STREAM":
        event["code"] = code
    return event


def unsupported(behaviours: tuple[str, ...]) -> str | None:
    """Why ngtcp2's server cannot play this menu, None when it can. Early responses (its
    only way to send STOP_SENDING of its own) are one switch for the whole server."""
    answering = sorted(set(behaviours) & {"echo", "answer-after-fin"})
    if "stop-sending" in behaviours and answering:
        return (f"ngtcp2's server sends STOP_SENDING only with --early-response, which then answers every "
                f"request at its headers: it cannot also {' or '.join(answering)} in one run")
    return None


def _free_udp_port() -> int:
    """A UDP port on 127.0.0.1 free a moment ago: the server is told its port, as it prints
    none once bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Ngtcp2Process(PeerProcess):
    """gtlsserver as a child: bound once its socket shows in /proc, reports from its log."""

    def __init__(self, behaviours: tuple[str, ...], argv: list[str], port: int) -> None:
        super().__init__("ngtcp2", behaviours, argv)
        self.port = port

    async def start(self) -> PeerHandle:
        """Spawn, then wait (bounded, polling /proc) until it has bound 127.0.0.1:port alone."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        wanted = f"0100007F:{self.port:04X}"
        handle = PeerHandle("ngtcp2", self.behaviours, "127.0.0.1", self.port, self.proc.pid)
        self.reader = asyncio.ensure_future(self._read_log(handle))
        loop = asyncio.get_running_loop()
        until = loop.time() + START_SECONDS
        while (sockets := udp_sockets(self.proc.pid)) != [wanted]:
            if self.proc.returncode is not None or self.reader.done() or loop.time() > until:
                status = self.proc.returncode
                await self.stop()
                if sockets:  # bound, but not to 127.0.0.1:port alone
                    raise ConnectionError(f"the ngtcp2 peer bound {', '.join(sockets)}, not {wanted} alone")
                raise ConnectionError("the ngtcp2 peer " + (f"exited before listening (status {status})"
                                                            if status is not None else
                                                            f"did not listen within {START_SECONDS:g} s"))
            await asyncio.sleep(PROBE_SECONDS)
        handle.bound = [{"address": "127.0.0.1", "family": "ipv4", "port": self.port}]
        return handle

    async def _read_log(self, handle: PeerHandle) -> None:
        """Record each action the frame log shows, then ``stopped`` with the exit status."""
        assert self.proc is not None and self.proc.stderr is not None
        await record_frame_log(self.proc.stderr, parse_frame_line, handle)
        handle.record({"event": "stopped", "status": await self.proc.wait()})


async def record_frame_log(log: asyncio.StreamReader, parse: Callable[[bytes], dict[str, Any] | None],
                           handle: PeerHandle) -> None:
    """Record on ``handle`` each event ``parse`` finds in an ngtcp2 frame log (server's or
    client's), until it ends: once per event and stream, a retransmitted frame being one action."""
    seen: set[tuple[Any, ...]] = set()
    while line := await log.readline():
        event = parse(line)
        if event is None:
            continue
        key = (event["event"], event.get("stream"))
        if key not in seen:
            seen.add(key)
            handle.record(event)


class Ngtcp2Launcher(ChildLauncher):
    """Starts ngtcp2's example server (Debian's gtlsserver) on 127.0.0.1 and stops it by pid."""

    name = "ngtcp2"

    def install_command(self) -> str:
        return INSTALL

    def missing(self) -> str | None:
        if not os.access(SERVER, os.X_OK):
            return f"ngtcp2 peer not installed (no {SERVER}); install it with: {INSTALL}"
        return None

    def install(self) -> str | None:
        """Debian's packages, as root only (CI runs as root); else why not, in one line."""
        if shutil.which("apt-get") is None:
            return f"no apt-get here; install ngtcp2's example server as {SERVER} some other way"
        if os.geteuid() != 0:
            return f"installing Debian's packages needs root: {INSTALL}"
        try:
            done = subprocess.run(f"{INSTALL_QUIETLY} || (apt-get update -qq && {INSTALL_QUIETLY})", shell=True,
                                  capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except subprocess.TimeoutExpired:
            return f"{INSTALL} took longer than 600 s"
        if done.returncode != 0:
            return f"{INSTALL} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
        return self.missing()

    def unsupported(self, behaviours: tuple[str, ...]) -> str | None:
        return unsupported(behaviours)

    def argv(self, behaviours: tuple[str, ...], port: int = 0) -> list[str]:
        """The server's command line: early responses for ``stop-sending``, the test
        certificate, answers generated from the request's path."""
        key, cert = server_credentials()
        htdocs = peers_dir() / "ngtcp2-htdocs"  # empty: every answer is generated (/N)
        htdocs.mkdir(parents=True, exist_ok=True)
        early = ["--early-response"] if "stop-sending" in behaviours else []
        # The server reads no input, so it cannot stop at the end of the launcher's pipe as
        # the other peers' do: util-linux's setpriv (same pid, by exec) has the kernel send
        # it SIGTERM when the launcher's process is gone.
        setpriv = shutil.which("setpriv")
        orphan_guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        return [*orphan_guard, SERVER, *early, "--no-quic-dump", "--no-http-dump", "--htdocs", str(htdocs),
                "127.0.0.1", str(port), str(key), str(cert)]

    async def start(self, behaviours: Iterable[str]) -> PeerHandle:
        chosen = normalize_behaviours(tuple(behaviours))
        reason = self.missing() or unsupported(chosen)
        if reason is not None:
            raise PeerNotInstalled(reason)
        port = _free_udp_port()
        process = Ngtcp2Process(chosen, self.argv(chosen, port), port)
        handle = await process.start()
        self._processes[handle.pid] = process
        return handle


def server_credentials() -> tuple[Path, Path]:
    """The key and certificate the server is started with: the project's test ones."""
    paths = certs.default_paths()
    return paths.key, paths.cert

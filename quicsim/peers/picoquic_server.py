"""The picoquic peer's server, run by :mod:`quicsim.peers.picoquic` under Python >= 3.12 in
its own virtualenv (aiopquic's): raw streams under ALPN ``quicsim`` with quicsim's test
certificate, each client stream answered by the behaviour its index picks from the menu.

Standalone on purpose: it imports aiopquic and the standard library only (quicsim runs on
another interpreter). It prints one JSON line ``{"listening": ...}`` once its socket is
bound and pinned to the loopback interface, then one JSON line per action it took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from typing import Any

from aiopquic.asyncio import serve
from aiopquic.asyncio.protocol import QuicConnectionProtocol
from aiopquic.quic.configuration import QuicConfiguration
from aiopquic.quic.events import (ConnectionTerminated, HandshakeCompleted, StopSendingReceived, StreamDataReceived,
                                  StreamReset)

#: the application error codes of the abortive behaviours (the client sees them)
STOP_SENDING_CODE = 0x42
RESET_CODE = 0x43
CLOSE_CODE = 0x44
BEHAVIOURS = ("echo", "stop-sending", "reset", "close-connection", "answer-after-fin")
#: bounded wait for picoquic's network thread to bind its socket
BIND_TRIES = 500
BIND_STEP = 0.01


def say(**record: Any) -> None:
    """One JSON line on stdout (the launcher reads them)."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class PeerServer(QuicConnectionProtocol):  # type: ignore[misc]
    """One connection: the n-th client-initiated bidirectional stream (id // 4 == n) gets
    the n-th behaviour of the menu, the last one repeating."""

    behaviours: tuple[str, ...] = ("echo",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acted: set[int] = set()
        self.received: dict[int, bytearray] = {}
        self.finished: set[int] = set()

    def behaviour_of(self, stream_id: int) -> str:
        index = stream_id // 4
        return self.behaviours[min(index, len(self.behaviours) - 1)]

    def quic_event_received(self, event: Any) -> None:
        quic = self._quic
        if isinstance(event, HandshakeCompleted):
            peer = quic.peer_address()
            say(event="connected", peer=list(peer) if peer else None, alpn=event.alpn_protocol)
            if peer is None or peer[0] != "127.0.0.1":  # only loopback clients are answered
                say(event="refused", peer=list(peer) if peer else None)
                quic.close(CLOSE_CODE)
        elif isinstance(event, StreamDataReceived):
            self.on_data(event.stream_id, bytes(event.data), event.end_stream)
        elif isinstance(event, StopSendingReceived):
            # RFC 9000 3.5: the endpoint MUST answer with RESET_STREAM; picoquic leaves it to
            # the application (aioquic does it by itself)
            say(event="stop-sending-received", stream=event.stream_id, code=event.error_code)
            quic.reset_stream(event.stream_id, event.error_code)
        elif isinstance(event, StreamReset):
            say(event="reset-received", stream=event.stream_id, code=event.error_code)
        elif isinstance(event, ConnectionTerminated):
            say(event="terminated", code=event.error_code, reason=event.reason_phrase)

    def on_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        quic = self._quic
        behaviour = self.behaviour_of(stream_id)
        first = stream_id not in self.acted
        self.acted.add(stream_id)
        if behaviour == "echo":
            if data or fin:
                quic.send_stream_data(stream_id, data, end_stream=fin)
        elif behaviour == "answer-after-fin":
            self.received.setdefault(stream_id, bytearray()).extend(data)
            if fin:
                quic.send_stream_data(stream_id, bytes(self.received.pop(stream_id)), end_stream=True)
        elif behaviour == "stop-sending" and first:
            # one call each: STOP_SENDING on the client's direction, FIN on ours
            quic.stop_stream(stream_id, STOP_SENDING_CODE)
            quic.send_stream_data(stream_id, b"", end_stream=True)
            say(event="stop-sending", stream=stream_id, code=STOP_SENDING_CODE)
        elif behaviour == "reset" and first:
            # RESET_STREAM on our direction; the client's keeps flowing and is read to the end
            quic.reset_stream(stream_id, RESET_CODE)
            say(event="reset", stream=stream_id, code=RESET_CODE)
        elif behaviour == "close-connection" and first:
            quic.close(CLOSE_CODE)
            say(event="close-connection", stream=stream_id, code=CLOSE_CODE)
        if fin:
            say(event="fin-received", stream=stream_id, behaviour=behaviour)


def udp_sockets() -> list[tuple[int, str]]:
    """This process's UDP sockets: (file descriptor, kernel's address line)."""
    inodes: dict[str, int] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes[target[8:-1]] = int(name)
    found = []
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                found.append((inodes[fields[9]], f"{table.rsplit('/', 1)[1]} {fields[1]}"))
    return found


def local_address(fd: int) -> tuple[str, int, int]:
    """(host, port, family) the socket ``fd`` is bound to."""
    sock = socket.socket(fileno=fd)
    try:
        host, port = sock.getsockname()[:2]
        return host, port, sock.family
    finally:
        sock.detach()


def pin_to_loopback(fd: int) -> str:
    """Bind the socket ``fd`` to the loopback interface (SO_BINDTODEVICE): picoquic binds
    the wildcard address, so this is what keeps datagrams from elsewhere out. Returns
    the device the kernel then reports."""
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0").decode()
    finally:
        sock.detach()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--alpn", default="quicsim")
    parser.add_argument("--behaviour", default="echo", help=f"comma-separated, each one of {', '.join(BEHAVIOURS)}")
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    args = parser.parse_args()
    menu = tuple(args.behaviour.split(","))
    bad = [b for b in menu if b not in BEHAVIOURS]
    if bad:
        say(error=f"unknown behaviour {bad[0]!r} (one of {', '.join(BEHAVIOURS)})")
        return 2
    PeerServer.behaviours = menu
    configuration = QuicConfiguration(is_client=False, alpn_protocols=[args.alpn], idle_timeout=args.idle_timeout,
                                      ip_family=socket.AF_INET)  # IPv4 only: no [::] socket at all
    configuration.load_cert_chain(args.cert, args.key)
    before = {fd for fd, _ in udp_sockets()}
    server = await serve("127.0.0.1", 0, configuration=configuration, create_protocol=PeerServer)
    sockets: list[tuple[int, str]] = []
    for _ in range(BIND_TRIES):  # bounded: picoquic's thread binds shortly after serve() returns
        sockets = [(fd, line) for fd, line in udp_sockets() if fd not in before]
        if sockets:
            break
        await asyncio.sleep(BIND_STEP)
    bound = []
    for fd, line in sockets:
        host, port, family = local_address(fd)
        bound.append({"host": host, "port": port, "family": "ipv6" if family == socket.AF_INET6 else "ipv4",
                      "device": pin_to_loopback(fd), "kernel": line})
    if len(bound) != 1 or bound[0]["family"] != "ipv4" or bound[0]["device"] != "lo":
        say(error="the server's socket is not one IPv4 socket pinned to the loopback interface", bound=bound)
        server.close()
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before the line: the launcher may stop it at once
        loop.add_signal_handler(signum, stop.set)

    def on_stdin() -> None:  # the launcher holds our stdin open: end of file means it is gone
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, on_stdin)
    say(listening={"host": "127.0.0.1", "port": bound[0]["port"], "pid": os.getpid(), "bound": bound,
                   "behaviours": list(menu)})
    await stop.wait()
    server.close()
    say(event="stopped")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

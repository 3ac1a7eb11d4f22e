"""The picoquic peer's client, run by :mod:`quicsim.peers.clients` under Python >= 3.12 in
aiopquic's virtualenv: connects to a quicsim listener on 127.0.0.1 under ALPN ``quicsim``,
verifying its certificate with the project's test CA, and opens one bidirectional stream
per action of the menu, in order.

Standalone on purpose (aiopquic and the standard library, plus the loopback checks of the
server script beside it). One JSON line per thing it did or saw; ``{"event": "done"}`` and
exit status 0 once every stream is over, or the connection is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from aiopquic.asyncio.client import connect
from aiopquic.asyncio.protocol import QuicConnectionProtocol
from aiopquic.quic.configuration import QuicConfiguration
from aiopquic.quic.events import (ConnectionTerminated, HandshakeCompleted, StopSendingReceived, StreamDataReceived,
                                  StreamReset)

from picoquic_server import pin_to_loopback, udp_sockets  # the script beside this one

#: the application error codes of the abortive actions (the server sees them)
STOP_SENDING_CODE = 0x52
RESET_CODE = 0x53
CLOSE_CODE = 0x54
ACTIONS = ("echo", "stop-sending", "reset", "close-connection")
#: bounded wait for picoquic's network thread to bind the client's socket
BIND_TRIES = 500
BIND_STEP = 0.01


def say(**record: Any) -> None:
    """One JSON line on stdout (the launcher reads them)."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class PeerClient(QuicConnectionProtocol):  # type: ignore[misc]
    """The n-th stream it opens gets the n-th action: echo sends the request with FIN and
    reads the answer to its FIN; the abortive ones send the request without FIN and act at
    the first bytes of the answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actions: dict[int, str] = {}
        self.received: dict[int, int] = {}
        self.over: set[int] = set()
        self.acted: set[int] = set()
        self.changed = asyncio.Event()
        self.terminated = False

    def end(self, stream_id: int) -> None:
        self.over.add(stream_id)
        self.changed.set()

    @property
    def connection(self) -> Any:
        """aiopquic's connection object of this protocol (picoquic's, not aioquic's)."""
        return self._quic

    def quic_event_received(self, event: Any) -> None:
        quic = self._quic
        if isinstance(event, HandshakeCompleted):
            say(event="connected", alpn=event.alpn_protocol)
        elif isinstance(event, StreamDataReceived):
            sid = event.stream_id
            self.received[sid] = self.received.get(sid, 0) + len(event.data)
            action = self.actions.get(sid, "echo")
            if event.end_stream:
                say(event="fin-received", stream=sid, bytes=self.received[sid], action=action)
                self.end(sid)
            elif action == "stop-sending" and event.data and sid not in self.acted:
                quic.stop_stream(sid, STOP_SENDING_CODE)
                say(event="stop-sending", stream=sid, code=STOP_SENDING_CODE)
                self.acted.add(sid)
            elif action == "reset" and event.data and sid not in self.acted:
                # our direction only: the stream is over when the server ends its own
                quic.reset_stream(sid, RESET_CODE)
                say(event="reset", stream=sid, code=RESET_CODE)
                self.acted.add(sid)
            elif action == "close-connection" and event.data and sid not in self.acted:
                self.acted.add(sid)
                quic.close(CLOSE_CODE)
                say(event="close-connection", stream=sid, code=CLOSE_CODE)
        elif isinstance(event, StreamReset):
            say(event="reset-received", stream=event.stream_id, code=event.error_code)
            self.end(event.stream_id)
        elif isinstance(event, StopSendingReceived):
            # RFC 9000 3.5: answer with RESET_STREAM (picoquic leaves it to the application)
            say(event="stop-sending-received", stream=event.stream_id, code=event.error_code)
            quic.reset_stream(event.stream_id, event.error_code)
        elif isinstance(event, ConnectionTerminated):
            say(event="terminated", code=event.error_code, reason=event.reason_phrase)
            self.terminated = True
            self.changed.set()


async def run(args: argparse.Namespace, menu: tuple[str, ...]) -> int:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[args.alpn], idle_timeout=args.idle_timeout,
                                      server_name=args.server_name)
    configuration.load_verify_locations(args.ca)
    before = {fd for fd, _ in udp_sockets()}
    async with connect("127.0.0.1", args.port, configuration=configuration,
                       create_protocol=PeerClient) as client:
        sockets: list[tuple[int, str]] = []
        for _ in range(BIND_TRIES):  # bounded: picoquic's thread binds before the handshake ends
            sockets = [(fd, line) for fd, line in udp_sockets() if fd not in before]
            if sockets:
                break
            await asyncio.sleep(BIND_STEP)
        devices = [pin_to_loopback(fd) for fd, _ in sockets]
        if not devices or any(d != "lo" for d in devices):
            say(error="the client's socket is not pinned to the loopback interface", devices=devices)
            return 3
        payload = bytes(range(256)) * (args.size // 256 + 1)
        streams = []
        for action in menu:
            sid = client.connection.get_next_available_stream_id()
            client.actions[sid] = action
            streams.append(sid)
            await client.connection.send_stream_data_drained(sid, payload[:args.size],
                                                             end_stream=action == "echo")
            say(event="sent", stream=sid, bytes=args.size, action=action)
        while not client.terminated and not all(s in client.over for s in streams):
            client.changed.clear()
            await client.changed.wait()
        await client.aclose(0)
    say(event="done")
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--alpn", default="quicsim")
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--action", default="echo", help=f"comma-separated, each one of {', '.join(ACTIONS)}")
    parser.add_argument("--size", type=int, default=1000, help="bytes sent on each stream")
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before it gives up")
    args = parser.parse_args()
    menu = tuple(args.action.split(","))
    bad = [a for a in menu if a not in ACTIONS]
    if bad:
        say(error=f"unknown action {bad[0]!r} (one of {', '.join(ACTIONS)})")
        return 2
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run(args, menu))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)

    def on_stdin() -> None:  # the launcher holds our stdin open: end of file means it is gone
        if not os.read(0, 4096):
            loop.remove_reader(0)
            task.cancel()

    loop.add_reader(0, on_stdin)
    say(event="started", pid=os.getpid())  # the launcher's stop by pid is heard from here on
    try:
        return await asyncio.wait_for(task, args.timeout)
    except asyncio.TimeoutError:
        say(error=f"not over within {args.timeout:g} s")
        return 4
    except asyncio.CancelledError:
        say(event="stopped")
        return 0
    except (ConnectionError, OSError) as exc:
        say(error=f"{type(exc).__name__}: {exc}")
        return 5


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""``python -m bench.listener_memory``: what a long-lived listener keeps.

One ``quicsim.listen()`` on 127.0.0.1 serves ``--connections`` clients one after another
(``--concurrency`` at a time): each connects, sends a request with FIN, waits for its
SEND_COMPLETE, shuts the connection down and closes it. The server never calls
``accept()`` (its handler serves), the harder case for the accept backlog. The resident
set size is read after 1,000 connections and at the end: a listener must give back what
finished connections held, so the two stay within a few MB. Then ``--initials`` garbage
Initials (real ones, from clients that never answer) and ``listener.close()``: the
connections they opened must all be freed.

A benchmark, not a test: it prints figures (and ``--json``), and exits 1 only when a
connection fails (a client that times out is counted, up to 100) or the ledger finds
something.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import sys
import time
from typing import Any

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

import quicsim
from quicsim.core import ConnectionCore
from quicsim.enums import ConnectionEventType, SendFlags, StreamEventType

#: growth allowed between 1,000 connections and the end (allocator noise, interned names)
GROWTH_MB = 8.0
CHECKPOINT = 1000
#: seconds a client may take for each step (a loaded machine is slow, not broken)
TIMEOUT = 60.0
#: connections that may fail (time out) before the run is given up
MAX_FAILED = 100


def rss_mb() -> float:
    """This process's resident set size, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_cores() -> int:
    """Connection cores still reachable after a full collection."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, ConnectionCore))


def _server_handler(conn: Any, event: Any) -> None:
    # Peer streams need a handler (MsQuic: PEER_STREAM_STARTED); this one only reads.
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(lambda stream, e: None)


async def _client(port: int, n: int) -> None:
    client = await quicsim.connect("127.0.0.1", port)
    done = asyncio.get_running_loop().create_future()

    def on_stream(stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE and not done.done():
            done.set_result(event.canceled)

    stream = client.open_stream(handler=on_stream)
    stream.start()
    stream.send(b"r" * 512, flags=SendFlags.FIN, client_context=n)
    canceled = await asyncio.wait_for(done, TIMEOUT)
    client.shutdown()
    await client.wait_shutdown_complete(timeout=TIMEOUT)
    stream.close()
    client.close()
    if canceled or not client.ledger.ok:
        raise RuntimeError(f"connection {n}: send canceled={canceled}; {client.ledger.summary()}")


async def serve(connections: int, concurrency: int) -> dict:
    listener = await quicsim.listen(handler=_server_handler)
    figures: dict[str, Any] = {"connections": connections}
    next_n = 0
    started = time.perf_counter()

    failed: list[str] = []

    ended = 0

    async def worker() -> None:
        nonlocal next_n, ended
        while next_n < connections and len(failed) < MAX_FAILED:
            next_n += 1
            n = next_n
            try:
                await _client(listener.port, n)
            except (asyncio.TimeoutError, ConnectionError) as exc:
                failed.append(f"connection {n}: {type(exc).__name__}: {exc}")
            ended += 1
            if ended == CHECKPOINT:
                gc.collect()
                figures["rss_at_1000_mb"] = round(rss_mb(), 1)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        gc.collect()
        figures["rss_at_end_mb"] = round(rss_mb(), 1)
        figures["seconds"] = round(time.perf_counter() - started, 1)
        figures["failed"] = len(failed)
        figures["first_failure"] = failed[0] if failed else None
        figures["server_ledger_ok"] = listener.ledger.ok
        figures["listener_connections"] = len(listener.connections)
        figures["accept_backlog"] = len(listener._accepted)
    finally:
        listener.close()
    figures["live_cores_after_close"] = live_cores()
    return figures


async def initials(count: int) -> dict:
    listener = await quicsim.listen()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    figures: dict[str, Any] = {"initials": count, "rss_before_mb": round(rss_mb(), 1)}
    deadline = time.monotonic() + 600
    try:
        for i in range(count):
            quic = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["quicsim"]))
            quic.connect(("127.0.0.1", listener.port), now=0.0)
            for data, _addr in quic.datagrams_to_send(now=0.0):
                sock.sendto(data, ("127.0.0.1", listener.port))
            # Let the listener keep up (the socket buffer would drop what it cannot take).
            while listener._count < i - 32 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
        while listener._count < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        figures["arrived"] = listener._count
        gc.collect()
        figures["rss_after_mb"] = round(rss_mb(), 1)
        figures["listener_connections"] = len(listener.connections)
    finally:
        sock.close()
        listener.close()
    figures["live_cores_after_close"] = live_cores()
    figures["rss_after_close_mb"] = round(rss_mb(), 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listener_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100_000, help="clients served (default 100000)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at a time (default 8)")
    parser.add_argument("--initials", type=int, default=5_000, help="garbage Initials (default 5000; 0: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.connections < CHECKPOINT or args.concurrency < 1 or args.initials < 0:
        parser.error(f"--connections must be at least {CHECKPOINT}, --concurrency at least 1, --initials >= 0")
    result = {"served": asyncio.run(serve(args.connections, args.concurrency))}
    if args.initials:
        result["garbage"] = asyncio.run(initials(args.initials))
    served = result["served"]
    growth = served["rss_at_end_mb"] - served["rss_at_1000_mb"]
    served["growth_mb"] = round(growth, 1)
    served["bounded"] = growth <= GROWTH_MB
    if args.json:
        print(json.dumps(result))
    else:
        print(f"served {served['connections']} connections in {served['seconds']} s: RSS {served['rss_at_1000_mb']} MB "
              f"after {CHECKPOINT}, {served['rss_at_end_mb']} MB at the end (+{served['growth_mb']} MB; "
              f"target within {GROWTH_MB} MB: {'met' if served['bounded'] else 'MISSED'}); "
              f"{served['live_cores_after_close']} connections alive after close")
        if "garbage" in result:
            g = result["garbage"]
            print(f"{g['initials']} garbage Initials: RSS {g['rss_before_mb']} -> {g['rss_after_mb']} MB, "
                  f"{g['listener_connections']} half-open kept, {g['live_cores_after_close']} connections alive "
                  f"after close (RSS {g['rss_after_close_mb']} MB)")
    if served["failed"]:
        print(f"{served['failed']} connections failed; the first: {served['first_failure']}")
    return 0 if served["server_ledger_ok"] and not served["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())

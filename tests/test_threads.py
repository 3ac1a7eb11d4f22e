"""Calls from other threads (MsQuic's API is callable from any thread): state is checked
under the connection's lock, the operation is handed to the loop, the call returns at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from quicsim import Status, StreamShutdownFlags
from quicsim.pair import open_pair

pytestmark = pytest.mark.asyncio


async def test_threads_hammer_send_and_shutdown_while_the_loop_runs():
    pair = await open_pair(transport="udp")
    try:
        streams = []
        for _ in range(4):
            s = pair.client.open_stream()
            s.start()
            streams.append(s)
        await asyncio.sleep(0)
        statuses: list[Status] = []
        lock = threading.Lock()

        def hammer(stream, n):
            mine = []
            for i in range(400):
                mine.append(stream.send(b"x" * 200, client_context=(n, i)))
            mine.append(stream.shutdown(StreamShutdownFlags.GRACEFUL))
            for i in range(100):  # racing the shutdown the loop is applying meanwhile
                mine.append(stream.send(b"late", client_context=(n, "late", i)))
            with lock:
                statuses.extend(mine)

        threads = [threading.Thread(target=hammer, args=(s, n)) for n, s in enumerate(streams)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.005)  # the loop keeps running (and applying) meanwhile
        for s in streams:
            await s.wait_shutdown_complete(timeout=30)
        accepted = statuses.count(Status.PENDING)
        assert set(statuses) <= {Status.PENDING, Status.INVALID_STATE}
        report = pair.ledger.report()
        assert report["sends"] == accepted - 4  # the 4 shutdowns returned PENDING too
        assert report["completions"] == report["sends"] and report["ok"], pair.ledger.summary()
    finally:
        await pair.shutdown()


async def test_blocking_close_from_another_thread():
    pair = await open_pair(transport="memory")
    try:
        stream = pair.client.open_stream()
        stream.start()
        for i in range(20):
            stream.send(bytes(50_000), client_context=i)
        await asyncio.sleep(0.01)  # some in flight; close() must complete all 20 either way
        await asyncio.get_running_loop().run_in_executor(None, stream.close)
        assert stream.handle_closed
        assert pair.ledger.report()["completions"] == 20 and pair.ledger.ok
    finally:
        await pair.shutdown()

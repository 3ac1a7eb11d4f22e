"""The ACK path touches only streams whose data was acknowledged or lost: no scans."""

from __future__ import annotations

import asyncio

import pytest

from quicsim import SendFlags, Settings, StreamShutdownFlags
from quicsim.core import StreamCore

from .conftest import Recorder, close_pair, eventually, make_pair

pytestmark = pytest.mark.asyncio


async def test_idle_streams_are_not_polled(monkeypatch):
    pair = await make_pair(server_settings=Settings(peer_bidi_stream_count=500))
    try:
        idle = []
        for i in range(100):
            s = pair.client.open_stream()
            s.start()
            s.send(b"x", client_context=i)
            idle.append(s)
        await eventually(lambda: pair.client.ledger.report()["completions"] == 100, "100 completions")

        calls: dict[int, int] = {}
        original = StreamCore.on_acks

        def counting(self):
            calls[self.handle] = calls.get(self.handle, 0) + 1
            original(self)

        monkeypatch.setattr(StreamCore, "on_acks", counting)
        rec = Recorder()
        busy = pair.client.open_stream(handler=rec)
        busy.start()
        for i in range(300):
            busy.send(bytes(1000), client_context=i)
        busy.send(b"", SendFlags.FIN)
        await busy.wait_send_shutdown_complete(timeout=10)
        assert len(rec.completions()) == 301
        assert set(calls) == {busy.handle}, "only the stream with acknowledged data is visited"
        assert calls[busy.handle] <= 301  # at most one visit per acknowledging datagram
        for s in idle:
            s.shutdown(StreamShutdownFlags.ABORT)
    finally:
        await close_pair(pair)

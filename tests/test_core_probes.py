"""Probes the core reports from branches only the worker sees: each reached by a small
program made for it, none by a plain exchange, and none reported when nobody asks."""

from __future__ import annotations

import asyncio

import pytest

import quicsim
from quicsim import SendFlags, Settings, StreamEventType, StreamShutdownFlags, StreamStartFlags
from quicsim.observer import Observer
from quicsim.probes import CORE_PROBES, PROBES, ProbeObserver
from quicsim.transport.virtual_loop import VirtualTimeEventLoop


async def _plain(pair):
    s = pair.client.open_stream()
    s.start()
    s.send(b"x" * 1000)
    s.send(b"", SendFlags.FIN)
    await s.wait_shutdown_complete(timeout=5)
    s.close()


async def _graceful_then_send(pair):
    s = pair.client.open_stream()
    s.start()
    s.send(b"a")
    await asyncio.sleep(0)  # flushed
    s.shutdown(StreamShutdownFlags.GRACEFUL)
    s.send(b"b")  # accepted, then canceled by the shutdown that detaches it
    await s.wait_shutdown_complete(timeout=5)


async def _close_inside_batch(pair):
    def on_event(stream, event):
        if event.type is StreamEventType.SEND_COMPLETE and event.client_context == "B":
            stream.close()

    s = pair.client.open_stream(handler=on_event)
    s.start()
    s.send(b"a", client_context="A")
    await s.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
    s.shutdown(StreamShutdownFlags.GRACEFUL)
    s.send(b"b", client_context="B")
    s.send(b"c", client_context="C")
    await s.wait_shutdown_complete(timeout=5)


async def _start_send_closed_in_callback(pair):
    # With buffering on, a send from a callback is queued, not flushed inline, so the
    # close right after it cancels the START send before the stream ever started.
    def on_event(stream, event):
        if event.type is StreamEventType.SEND_COMPLETE:
            b = pair.client.open_stream()
            b.send(b"b", SendFlags.START, client_context="b")
            b.close()

    a = pair.client.open_stream(handler=on_event)
    a.start()
    a.send(b"a", SendFlags.FIN)
    await a.wait_shutdown_complete(timeout=5)


async def _delay_send(pair):
    s = pair.client.open_stream()
    s.start()
    s.send(b"a", SendFlags.DELAY_SEND)
    await asyncio.sleep(0)
    s.send(b"b", SendFlags.FIN)
    await s.wait_shutdown_complete(timeout=5)


async def _bulk_buffered(pair):
    s = pair.client.open_stream()
    s.start()
    for _ in range(10):
        s.send(bytes(100_000))
    s.send(b"", SendFlags.FIN)
    await s.wait_shutdown_complete(timeout=20)


async def _priority_start(pair):
    a, b = pair.client.open_stream(), pair.client.open_stream()
    a.start()
    b.start(StreamStartFlags.PRIORITY_WORK)  # queued ahead of a's start
    await asyncio.sleep(0)
    for s in (a, b):
        s.shutdown(StreamShutdownFlags.ABORT)
        await s.wait_shutdown_complete(timeout=5)


PROGRAMS = {
    "graceful-shutdown-cancels-batch": (_graceful_then_send, {}),
    "close-inside-detached-batch": (_close_inside_batch, {}),
    "start-send-start-complete-aborted": (_start_send_closed_in_callback, {"send_buffering": True}),
    "delay-send-held": (_delay_send, {}),
    "send-buffer-full": (_bulk_buffered, {"send_buffering": True}),
    "queued-ahead-of-work": (_priority_start, {}),
    "worker-preempted": (_plain, {"preempt": 1.0}),
}


def _hits(body, settings: dict, observer: Observer | None = None) -> dict:
    async def main() -> dict:
        probes = ProbeObserver()
        observers = (probes,) if observer is None else (probes, observer)
        pair = await quicsim.open_pair(transport="memory", observers=observers,
                                       client_settings=Settings(**settings))
        try:
            await body(pair)
        finally:
            await pair.shutdown()
        assert pair.ledger.ok, pair.ledger.summary()
        return {name: n for name, n in probes.hits.items() if name in CORE_PROBES}

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


def test_every_core_probe_has_a_program_and_a_description():
    assert set(PROGRAMS) == set(CORE_PROBES) and set(CORE_PROBES) <= set(PROBES)


#: probes of a connection-wide branch; every other probe names the stream it was reached on
CONNECTION_PROBES = {"send-buffer-full", "queued-ahead-of-work", "worker-preempted"}


class _Where(Observer):
    """Which (connection, stream) each probe was reported with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object, object]] = []

    def probe(self, conn, stream, name) -> None:
        self.seen.append((name, conn, stream))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_core_probe_is_reached_by_its_program(name):
    body, settings = PROGRAMS[name]
    where = _Where()
    assert _hits(body, settings, where).get(name, 0) >= 1
    if name not in CONNECTION_PROBES:
        streams = [stream for hit, _, stream in where.seen if hit == name]
        assert all(stream is not None for stream in streams), f"{name} reported without its stream"
        assert all(stream.connection is conn for hit, conn, stream in where.seen if hit == name)


def test_a_plain_exchange_reaches_no_core_probe():
    assert _hits(_plain, {}) == {}


def test_the_core_reports_probes_only_when_an_observer_asks():
    class Spy(Observer):
        def __init__(self) -> None:
            self.calls = 0

        def probe(self, conn, stream, name) -> None:
            self.calls += 1

    spy = Spy()
    _hits(_graceful_then_send, {}, spy)
    assert spy.calls >= 1  # a probe observer is attached: every observer hears the probes

    async def without_probe_observer() -> tuple[bool, int]:
        quiet = Spy()
        pair = await quicsim.open_pair(transport="memory", observers=(quiet,))
        try:
            await _graceful_then_send(pair)
        finally:
            await pair.shutdown()
        return pair.client.core.probing, quiet.calls

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        assert runner.run(without_probe_observer()) == (False, 0)

    async def close_in_a_callback_without_probe_observer() -> int:
        quiet = Spy()
        pair = await quicsim.open_pair(transport="memory", observers=(quiet,))
        try:
            await _close_inside_batch(pair)  # reaches a probe's branch from inside a callback
        finally:
            await pair.shutdown()
        return quiet.calls

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        assert runner.run(close_in_a_callback_without_probe_observer()) == 0

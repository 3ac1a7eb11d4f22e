"""Benchmark cases: each measures quicsim and a bare-aioquic baseline doing the same work.

Baselines use aioquic's own API only (``QuicConnectionProtocol``, ``serve``,
``QuicConnection``). Every function returns seconds of wall time for one round.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import StreamDataReceived

import quicsim
from quicsim import SendFlags, Settings, StreamEventType, certs
from quicsim.core import aioquic_adapter as aq
from quicsim.fuzz.engine import NO_HANDSHAKE, check_seed
from quicsim.fuzz.program import generate
from quicsim.network import Network
from quicsim.transport.memory import SERVER_ADDR, MemoryLink
from quicsim.transport.udp import enlarge_buffers
from quicsim.transport.virtual_loop import run_virtual

ALPN = "quicsim"


def _configs() -> tuple[QuicConfiguration, QuicConfiguration]:
    paths = certs.default_paths()
    client = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost",
                               max_data=16 << 20, max_stream_data=1 << 20)
    client.load_verify_locations(cafile=str(paths.ca))
    server = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_data=16 << 20,
                               max_stream_data=1 << 20)
    server.load_cert_chain(str(paths.cert), str(paths.key))
    return client, server


# ----------------------------------------------------------------------------- baseline

class _Sink(QuicConnectionProtocol):
    """Counts received bytes and FINs; sets ``done`` after ``expect_fins`` FINs."""

    expect_fins = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0
        self.fins = 0
        self.done = asyncio.Event()

    def quic_event_received(self, event) -> None:
        if isinstance(event, StreamDataReceived):
            self.received += len(event.data)
            if event.end_stream:
                self.fins += 1
                if self.fins >= self.expect_fins:
                    self.done.set()


def _check_sink(sink: _Sink, total: int, fins: int, what: str) -> None:
    """Not timed: the bare receiver got every byte and every FIN."""
    if sink.received != total or sink.fins != fins:
        raise RuntimeError(f"{what}: received {sink.received} of {total} bytes, {sink.fins} of {fins} FINs")


async def _bare_pair(expect_fins: int = 1, max_streams: int | None = None):
    loop = asyncio.get_running_loop()
    client_config, server_config = _configs()
    sinks: list[_Sink] = []

    def create(quic, stream_handler=None):
        if max_streams:
            aq.set_local_stream_limits(quic, max_streams, max_streams)
        sink = _Sink(quic, stream_handler)
        sink.expect_fins = expect_fins
        sinks.append(sink)
        return sink

    server = await serve("127.0.0.1", 0, configuration=server_config, create_protocol=create)
    server_transport = aq.server_transport(server)
    assert server_transport is not None  # serve() returns a bound server
    port = server_transport.get_extra_info("sockname")[1]
    transport, client = await loop.create_datagram_endpoint(
        lambda: QuicConnectionProtocol(QuicConnection(configuration=client_config)),
        local_addr=("127.0.0.1", 0))
    # The same sockets as quicsim's: its transport enlarges both buffers.
    enlarge_buffers(transport)
    enlarge_buffers(server_transport)
    client.connect(("127.0.0.1", port))
    await client.wait_connected()
    return server, transport, client, sinks


async def _bare_close(server, transport, client) -> None:
    client.close()
    await client.wait_closed()
    transport.close()
    server.close()


async def _bare_timed_sends(client: QuicConnectionProtocol, sink: _Sink, count: int, size: int, streams: int,
                            what: str) -> float:
    """``count`` sends of ``size`` bytes on each of ``streams`` streams, timed until the
    receiver has every byte and FIN, then checked."""
    quic = aq.protocol_quic(client)
    chunk = bytes(size)
    start = time.perf_counter()
    for _ in range(streams):
        sid = quic.get_next_available_stream_id()
        for i in range(count):
            quic.send_stream_data(sid, chunk, end_stream=i == count - 1)
    client.transmit()
    await asyncio.wait_for(sink.done.wait(), 600)
    elapsed = time.perf_counter() - start
    _check_sink(sink, count * size * streams, streams, what)
    return elapsed


async def bare_sends(count: int, size: int, streams: int = 1) -> float:
    server, transport, client, sinks = await _bare_pair(expect_fins=streams, max_streams=streams + 10)
    elapsed = await _bare_timed_sends(client, sinks[0], count, size, streams, "bare UDP sends")
    await _bare_close(server, transport, client)
    return elapsed


# ----------------------------------------------------------------------------- quicsim

class _Tally:
    """What quicsim's application saw: bytes and FINs at the receiver (``done`` after
    ``expect_fins`` FINs) and SEND_COMPLETEs at the sender (``completed`` after all)."""

    def __init__(self, expect_fins: int, expect_sends: int) -> None:
        self.expect_fins = expect_fins
        self.expect_sends = expect_sends
        self.received = 0
        self.fins = 0
        self.completions = 0
        self.done = asyncio.Event()
        self.completed = asyncio.Event()

    def on_receiver(self, stream, event) -> None:
        kind = event.type
        if kind is StreamEventType.RECEIVE:
            self.received += event.total_buffer_length
        elif kind is StreamEventType.PEER_SEND_SHUTDOWN:
            self.fins += 1
            if self.fins >= self.expect_fins:
                self.done.set()

    def on_sender(self, stream, event) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            self.completions += 1
            if self.completions >= self.expect_sends:
                self.completed.set()

    def on_connection(self, conn, event) -> None:
        if event.type.name == "PEER_STREAM_STARTED":
            event.stream.set_handler(self.on_receiver)

    async def check(self, ledger, total: int, what: str, timeout: float = 30) -> None:
        """Not timed: wait (bounded) for every SEND_COMPLETE (the ACK trails the data by
        the ACK delay), then check bytes, FINs, completions and the ledger's verdict."""
        try:
            await asyncio.wait_for(self.completed.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        problems = []
        if self.received != total or self.fins != self.expect_fins:
            problems.append(f"received {self.received} of {total} bytes, {self.fins} of {self.expect_fins} FINs")
        if self.completions != self.expect_sends:
            problems.append(f"{self.completions} of {self.expect_sends} sends completed")
        if not ledger.ok:
            problems.append(ledger.summary())
        if problems:
            raise RuntimeError(f"{what}: " + "; ".join(problems))


async def _quicsim_pair(tally: _Tally, streams: int):
    settings = Settings(peer_bidi_stream_count=streams + 10)
    listener = await quicsim.listen(handler=tally.on_connection, settings=settings)
    conn = await quicsim.connect("127.0.0.1", listener.port, settings=settings)
    return listener, conn


async def _quicsim_timed_sends(conn: Any, tally: _Tally, count: int, size: int, streams: int, what: str) -> float:
    """``count`` sends of ``size`` bytes on each of ``streams`` new streams of ``conn``,
    timed until the receiver has every byte and FIN; then (not timed) every completion and
    the ledger are checked."""
    chunk = bytes(size)
    start = time.perf_counter()
    for _ in range(streams):
        stream = conn.open_stream(handler=tally.on_sender)
        stream.start()
        for i in range(count):
            stream.send(chunk, SendFlags.FIN if i == count - 1 else SendFlags.NONE)
    await asyncio.wait_for(tally.done.wait(), 600)
    elapsed = time.perf_counter() - start
    await tally.check(conn.ledger, count * size * streams, what)
    return elapsed


async def quicsim_sends(count: int, size: int, streams: int = 1) -> float:
    tally = _Tally(streams, count * streams)
    listener, conn = await _quicsim_pair(tally, streams)
    elapsed = await _quicsim_timed_sends(conn, tally, count, size, streams, "quicsim UDP sends")
    conn.shutdown()
    # Not timed. The closing period is three PTOs, and a loop that just carried 100,000
    # sends has sampled long RTTs: give it room rather than guess a few seconds.
    await conn.wait_shutdown_complete(timeout=60)
    conn.close()
    listener.close()
    return elapsed


def pending_send_bytes(count: int = 10_000) -> float:
    """Peak memory per accepted, not yet applied send (tracemalloc), in bytes. The stream
    is never started: closing it must cancel every send, each with one SEND_COMPLETE."""

    async def run() -> float:
        tally = _Tally(1, count)
        listener, conn = await _quicsim_pair(tally, 1)
        stream = conn.open_stream(handler=tally.on_sender)
        chunk = bytes(64)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            stream.send(chunk, client_context=i)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stream.close()
        conn.close()
        listener.close()
        if tally.completions != count or not conn.ledger.ok:
            raise RuntimeError(f"pending sends: {tally.completions} of {count} completed on close; "
                               + conn.ledger.summary())
        return (peak - base) / count

    return asyncio.run(run())


# ----------------------------------------------------------------------------- memory

async def _bare_memory_pair(network: Network | None = None, expect_fins: int = 1, max_streams: int | None = None):
    """Bare aioquic protocols on quicsim's in-memory link: the same link, impairment model
    (``network``, clean when None) and aioquic server demultiplexer that
    ``open_pair(transport="memory")`` gives quicsim, so both sides pay alike per datagram."""
    loop = asyncio.get_running_loop()
    client_config, server_config = _configs()
    link = MemoryLink(network if network is not None else Network(None, 1, loop.time))
    sinks: list[_Sink] = []

    def create(quic, stream_handler=None):
        if max_streams:
            aq.set_local_stream_limits(quic, max_streams, max_streams)
        sink = _Sink(quic, stream_handler)
        sink.expect_fins = expect_fins
        sinks.append(sink)
        return sink

    server = QuicServer(configuration=server_config, create_protocol=create)
    server.connection_made(link.server_end)
    link.server_protocol = server
    client = QuicConnectionProtocol(QuicConnection(configuration=client_config))
    client.connection_made(link.client_end)
    link.client_protocol = client
    client.connect(SERVER_ADDR)
    await asyncio.wait_for(client.wait_connected(), 60)
    return link, server, client, sinks


async def _bare_memory_close(link: MemoryLink, server: QuicServer, client: QuicConnectionProtocol,
                             sinks: list[_Sink]) -> None:
    """Close as an application would: the client closes and waits for the end of it."""
    client.close()
    await asyncio.wait_for(client.wait_closed(), 60)
    server.close()
    link.close()
    for proto in (client, *sinks):
        aq.stop_protocol(proto)


def bare_memory_bulk(total: int, chunk: int) -> float:
    """Bare aioquic over the in-memory link (clean network), on a virtual-time loop."""

    async def run() -> float:
        link, server, client, sinks = await _bare_memory_pair()
        start = time.perf_counter()
        quic = aq.protocol_quic(client)
        sid = quic.get_next_available_stream_id()
        for offset in range(0, total, chunk):
            quic.send_stream_data(sid, bytes(min(chunk, total - offset)), end_stream=offset + chunk >= total)
        client.transmit()
        await asyncio.wait_for(sinks[0].done.wait(), 600)
        elapsed = time.perf_counter() - start
        _check_sink(sinks[0], total, 1, "bare memory bulk")
        await _bare_memory_close(link, server, client, sinks)
        return elapsed

    return run_virtual(run())


def quicsim_memory_bulk(total: int, chunk: int) -> float:
    """quicsim over the same in-memory link (``open_pair`` with a clean network)."""

    async def run() -> float:
        sends = -(-total // chunk)
        tally = _Tally(1, sends)
        pair = await quicsim.open_pair(transport="memory", server_handler=tally.on_connection)
        start = time.perf_counter()
        stream = pair.client.open_stream(handler=tally.on_sender)
        stream.start()
        for offset in range(0, total, chunk):
            stream.send(bytes(min(chunk, total - offset)),
                        SendFlags.FIN if offset + chunk >= total else SendFlags.NONE)
        await asyncio.wait_for(tally.done.wait(), 600)
        elapsed = time.perf_counter() - start
        await tally.check(pair.ledger, total, "quicsim memory bulk")
        await pair.shutdown()
        return elapsed

    return run_virtual(run())


def bare_memory_sends(count: int, size: int, streams: int = 1) -> float:
    """``count`` sends of ``size`` bytes on each of ``streams`` streams, bare aioquic on the
    in-memory link (clean network, virtual time): the small-send cases, deterministic."""

    async def run() -> float:
        link, server, client, sinks = await _bare_memory_pair(expect_fins=streams, max_streams=streams + 10)
        elapsed = await _bare_timed_sends(client, sinks[0], count, size, streams, "bare memory sends")
        await _bare_memory_close(link, server, client, sinks)
        return elapsed

    return run_virtual(run())


def quicsim_memory_sends(count: int, size: int, streams: int = 1) -> float:
    """The same sends through quicsim on the same link, every completion and the ledger
    checked afterwards (not timed)."""

    async def run() -> float:
        tally = _Tally(streams, count * streams)
        settings = Settings(peer_bidi_stream_count=streams + 10)
        pair = await quicsim.open_pair(transport="memory", server_handler=tally.on_connection,
                                       server_settings=settings)
        elapsed = await _quicsim_timed_sends(pair.client, tally, count, size, streams, "quicsim memory sends")
        await pair.shutdown()
        return elapsed

    return run_virtual(run())


FUZZ_MAX_OPS = 12


def fuzz_run_seconds(runs: int, faults: frozenset[str] = frozenset()) -> float:
    """Seconds per fuzz run, as a campaign's worker process does them (the worker's own
    start, once per campaign, is left out). Each run judges its own ledger at teardown
    (every accepted send completed exactly once): a run that did not pass fails the bench.
    ``faults`` switches on injected faults (to show that a failing run is noticed)."""
    failures = []
    start = time.perf_counter()
    for seed in range(runs):
        _, sig, _, _, _ = check_seed(seed, FUZZ_MAX_OPS, faults)
        if sig is not None and sig != NO_HANDSHAKE:
            failures.append(f"seed {seed}: {sig}")
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError("fuzz runs failed: " + ", ".join(failures))
    return elapsed / runs


async def _bare_lifecycle(network: dict, seed: int) -> None:
    """Two bare connections as a fuzz run has them: built from fresh configurations, a
    handshake over the in-memory link with the run's drawn network, then a close."""
    link, server, client, sinks = await _bare_memory_pair(Network(network, seed, asyncio.get_running_loop().time))
    await _bare_memory_close(link, server, client, sinks)


def bare_lifecycle_seconds(runs: int) -> float:
    """Seconds per bare connection lifecycle on the same seeds' networks (drawn before
    timing), each on its own virtual-time loop as a fuzz run is."""
    programs = [generate(seed, FUZZ_MAX_OPS) for seed in range(runs)]
    start = time.perf_counter()
    for program in programs:
        run_virtual(_bare_lifecycle(program.network, program.seed), seed=program.seed)
    return (time.perf_counter() - start) / runs


def traced_sends(count: int, traced: bool) -> float:
    """The small-send case on the memory transport, with or without the JSONL tracer."""
    import tempfile

    from quicsim.trace import Tracer

    async def run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            tracer = Tracer(f"{tmp}/trace.jsonl") if traced else None
            tally = _Tally(1, count)
            pair = await quicsim.open_pair(transport="memory", observers=(tracer,) if tracer else (),
                                           server_handler=tally.on_connection)
            start = time.perf_counter()
            stream = pair.client.open_stream(handler=tally.on_sender)
            stream.start()
            for i in range(count):
                stream.send(bytes(64), SendFlags.FIN if i == count - 1 else SendFlags.NONE, client_context=i)
            await stream.wait_send_shutdown_complete(timeout=600)
            elapsed = time.perf_counter() - start
            await tally.check(pair.ledger, 64 * count, f"{'traced' if traced else 'untraced'} sends")
            await pair.shutdown()
            if tracer is not None:
                tracer.close()
            return elapsed

    return run_virtual(run())

"""Same seed, same bytes: traces, qlog files and datagrams of memory-transport runs repeat
exactly; the check that says so catches a run that does not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from quicsim.determinism import check_run, first_difference
from quicsim.loader import load_scenarios
from quicsim.runner import RunOptions, run_job
from quicsim.transport import seeded as seeded_module
from quicsim.transport.seeded import seeded
from quicsim.transport.virtual_loop import VirtualTimeEventLoop

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "scenarios"

SCENARIOS = """
    import os
    from quicsim import scenario, Settings, StreamShutdownFlags

    ROOMY = Settings(peer_bidi_stream_count=100)

    @scenario(network={"loss": 0.15, "delay_ms": 10}, transport="memory", timeout=120, settings=ROOMY, seed=3)
    async def busy(ctx):
        streams = []
        for n in range(8):
            s = ctx.client.open_stream()
            s.start()
            for i in range(20):
                s.send(bytes(1500), client_context=(n, i))
            streams.append(s)
        await ctx.sleep(0.05)
        for n, s in enumerate(streams):
            if n % 2:
                s.shutdown(StreamShutdownFlags.ABORT, 7)
            else:
                s.shutdown(StreamShutdownFlags.GRACEFUL)
        await ctx.wait_all_shutdown_complete(streams, timeout=100)

    @scenario(transport="memory")
    async def unseeded(ctx):
        # Real randomness the seed does not reach: the size of the send differs per run.
        s = ctx.client.open_stream()
        s.start()
        s.send(bytes(1 + os.urandom(1)[0] + 256 * os.urandom(1)[0]), client_context="random size")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete()

    @scenario()
    async def over_udp(ctx):
        pass
"""


@pytest.fixture
def specs(tmp_path):
    path = tmp_path / "det_scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    return {s.name: s for s in load_scenarios([str(path)])}


def test_busy_lossy_multi_stream_runs_give_byte_identical_traces_and_qlogs(specs, tmp_path):
    spec = specs["busy"]
    runs = []
    for n in range(4):
        result = run_job(spec, 3, RunOptions(trace_dir=str(tmp_path / f"run{n}")))
        assert result["passed"], result
        assert result["canceled"] > 0 and result["acked"] > 0  # both endings happened
        directory = tmp_path / f"run{n}"
        runs.append({p.name: p.read_text() for p in sorted(directory.iterdir())})
    assert sorted(runs[0]) == ["busy-seed3-client.sqlog", "busy-seed3-server.sqlog", "busy-seed3.jsonl"]
    assert '"name": "loss"' in runs[0]["busy-seed3.jsonl"]
    for n, other in enumerate(runs[1:], 2):
        for name, text in sorted(runs[0].items(), key=lambda item: not item[0].endswith(".jsonl")):
            difference = first_difference(text.splitlines(), other[name].splitlines(), name)
            assert difference is None, f"run {n}: {difference}"


def test_check_run_names_the_first_differing_trace_line_of_an_unseeded_run(specs):
    result, check = check_run(specs["unseeded"], 1)
    assert result["passed"]
    assert not check.identical
    assert check.difference.startswith("trace (unseeded-seed1.jsonl) line ")
    assert '"name": "send"' in check.difference and "random size" in check.difference


def test_check_run_of_a_deterministic_run_has_digests_of_every_file(specs):
    _, check = check_run(specs["busy"], 3)
    assert check.identical, check.difference
    assert set(check.digests) == {"trace", "qlog client", "qlog server", "wire"}


def test_first_difference():
    assert first_difference(["a", "b"], ["a", "b"], "x") is None
    assert first_difference(["a", "b"], ["a", "c"], "x") == "x line 2: b / second run: c"
    assert first_difference(["a"], ["a", "c"], "x") == "x line 2: only the second run has it: c"


def test_every_library_scenario_repeats_exactly_in_memory():
    differing = []
    for spec in load_scenarios([str(LIBRARY)]):
        _, check = check_run(spec, spec.seed, RunOptions(transport="memory"))
        if not check.identical:
            differing.append((spec.name, check.difference))
    assert differing == []


def test_qlog_connection_ids_come_from_the_seed(specs, tmp_path):
    def odcid(seed: int, run: str) -> str:
        result = run_job(specs["unseeded"], seed, RunOptions(trace_dir=str(tmp_path / run)))
        header = (tmp_path / run / f"unseeded-seed{seed}-client.sqlog").read_text().split("\n")[0]
        assert result["trace"]
        return json.loads(header.strip("\x1e"))["trace"]["common_fields"]["ODCID"]

    assert odcid(5, "a") == odcid(5, "b")
    assert odcid(5, "a") != odcid(6, "c")


def test_seeded_is_scoped_to_its_thread_and_restored_after():
    import aioquic.quic.connection as connection
    import aioquic.tls as tls

    real = (connection.os, tls.os, tls.x25519, tls.ec)
    state = random.getstate()
    expected = random.Random("quicsim-bytes:9").randbytes(16)
    other_thread: list[bytes] = []
    with seeded(9):
        assert connection.os.urandom(16) == expected
        thread = threading.Thread(target=lambda: other_thread.append(connection.os.urandom(16)))
        thread.start()
        thread.join()
        key = tls.x25519.X25519PrivateKey.generate()
        assert isinstance(key, real[2].X25519PrivateKey)
        ec_key = tls.ec.generate_private_key(tls.ec.SECP256R1())
        with pytest.raises(RuntimeError):
            with seeded(10):
                pass
    assert other_thread[0] != expected  # the other thread drew real randomness
    assert (connection.os, tls.os, tls.x25519, tls.ec) == real
    assert connection.os is os
    assert random.getstate() == state
    with seeded(9) as rng:
        rng.randbytes(16)
        again = tls.x25519.X25519PrivateKey.generate()
        ec_again = tls.ec.generate_private_key(tls.ec.SECP256R1())
    assert again.private_bytes_raw() == key.private_bytes_raw()
    assert ec_again.private_numbers().private_value == ec_key.private_numbers().private_value
    assert seeded_module._active == 0


def test_only_connections_made_while_seeded_serve_their_streams_by_id():
    """aioquic's stream service order comes from a set of streams: a connection made on a
    seeded thread hashes its streams by stream id (peer-opened ones too, lower-numbered
    ones included), any other keeps the identity hash, and QuicStream itself is unchanged."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import QuicFrameType
    from aioquic.quic.stream import QuicStream

    def made(seed: int | None) -> tuple[QuicConnection, QuicConnection]:
        with seeded(seed) if seed is not None else contextlib.nullcontext():
            client = QuicConnection(configuration=QuicConfiguration(is_client=True))
            server = QuicConnection(configuration=QuicConfiguration(is_client=True))  # (no certificate needed)
            seeded_module.serve_streams_by_id(client)
            seeded_module.serve_streams_by_id(server)
        return client, server

    for seed in (3, None):
        client, server = made(seed)
        client.send_stream_data(4, b"x")  # (an id past 0: the limit check is the server's)
        stream = client._streams[4]
        peer = server._get_or_create_stream(QuicFrameType.STREAM_BASE, 9)  # the peer's 9 opens 1 and 5 too
        ids = sorted(server._streams)
        assert ids == [1, 5, 9] and peer is server._streams[9]
        for s in (stream, *server._streams.values()):
            assert (hash(s) == s.stream_id) is (seed is not None), (seed, s.stream_id)
            assert (type(s) is QuicStream) is (seed is None)
    assert "__hash__" not in vars(QuicStream)


def test_timers_due_at_the_same_instant_run_in_the_order_they_were_set():
    order: list[int] = []

    async def main():
        loop = asyncio.get_running_loop()
        when = loop.time() + 0.01
        for i in range(50):
            loop.call_at(when, order.append, i)
        await asyncio.sleep(0.02)

    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        runner.run(main())
    assert order == list(range(50))


def _quicsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quicsim", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_run_check_determinism_command(specs, tmp_path):
    path = specs["busy"].file
    good = _quicsim("run", path, "-k", "busy", "--check-determinism", "--json")
    assert good.returncode == 0, good.stderr
    row = json.loads(good.stdout)
    assert row["determinism"]["identical"] and row["passed"]
    bad = _quicsim("run", path, "-k", "unseeded", "--check-determinism")
    assert bad.returncode == 1
    assert "not deterministic: trace (unseeded-seed1.jsonl) line" in bad.stdout
    assert "determinism: 0 of 1 runs identical" in bad.stdout
    udp = _quicsim("run", path, "-k", "over_udp", "--check-determinism")
    assert udp.returncode == 2 and "needs the memory transport" in udp.stderr and "Traceback" not in udp.stderr

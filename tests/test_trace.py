"""The JSON Lines tracer: each record says what was true when it happened, even when it
is written later with its batch; a crash keeps every line flushed before it; records
from other threads are all written, whole and in order."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import quicsim
from quicsim import Status, StreamEventType, StreamShutdownFlags
from quicsim.trace import FLUSH_EVERY, Tracer, json_records
from quicsim.transport.virtual_loop import VirtualTimeEventLoop


def _run(coro_fn, *args):
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(coro_fn(*args))


def _records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [record for _, record in json_records(lines)]


def test_records_keep_the_stream_id_and_client_context_of_their_moment(tmp_path):
    """The first send is made before the stream has an id and its context list changes
    before it completes; all of it fits in one batch, written after the fact."""
    path = tmp_path / "t.jsonl"

    async def main() -> int:
        tracer = Tracer(path, clock=asyncio.get_running_loop().time, include_cids=False)
        pair = await quicsim.open_pair(transport="memory", observers=(tracer,))
        try:
            stream = pair.client.open_stream()
            stream.start()
            context = ["first"]
            assert stream.send(b"a" * 100, client_context=context) is Status.PENDING
            context.append("changed")  # before the send completes
            await stream.wait_event(StreamEventType.START_COMPLETE, timeout=10)
            assert stream.send(b"b" * 50, client_context="second") is Status.PENDING
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
            await stream.wait_shutdown_complete(timeout=10)
            assert pair.ledger.ok, pair.ledger.summary()
        finally:
            await pair.shutdown()
            tracer.close()
        return tracer.lines

    lines = _run(main)
    assert lines < FLUSH_EVERY  # one batch: nothing was formatted before the end
    records = _records(path)
    assert len(records) == lines
    client = [r for r in records if r.get("side") == "client"]
    calls = [r for r in client if r["kind"] == "call" and r["name"] == "send"]
    assert [(r["stream_id"], r["client_context"], r["bytes"]) for r in calls] == [
        (None, "['first']", 100), (0, "'second'", 50)]
    queued = [r for r in client if r["kind"] == "queued"]
    assert [(r["stream_id"], r["send_id"], r["range"], r["fin"]) for r in queued] == [
        (0, calls[0]["send_id"], [0, 100], False), (0, calls[1]["send_id"], [100, 150], False)]
    completions = [r for r in client if r["name"] == "SEND_COMPLETE"]
    assert [(r["send_id"], r["client_context"], r["canceled"]) for r in completions] == [
        (calls[0]["send_id"], "['first', 'changed']", False), (calls[1]["send_id"], "'second'", False)]
    applied = [r for r in client if r["kind"] == "applied"]
    assert (applied[0]["name"], applied[0]["stream_id"]) == ("start", 0)  # the id came with the start
    assert {"side": "client", "conn": "client", "stream_handle": 1}.items() <= calls[0].items()
    receives = [r for r in records if r.get("side") == "server" and r["name"] == "RECEIVE"]
    assert receives and sum(r["bytes"] for r in receives) == 150
    offsets = [r["absolute_offset"] for r in receives]
    assert offsets == [0] + [sum(r["bytes"] for r in receives[:i]) for i in range(1, len(receives))]
    assert all(r["flags"] in ("NONE", "FIN") and r["total_buffer_length"] == r["bytes"] for r in receives)
    times = [r["t"] for r in records]
    assert times == sorted(times) and times[0] >= 0  # one clock for batched and other records


CRASHING_RUN = """
    import asyncio, os, sys
    import quicsim
    from quicsim import SendFlags
    from quicsim.trace import Tracer
    from quicsim.transport.virtual_loop import run_virtual

    async def main():
        # A large buffer of our own: only the tracer's flushes put lines in the file.
        target = sys.argv[1] if sys.argv[2] == "path" else open(sys.argv[1], "w", buffering=1 << 20)
        tracer = Tracer(target)
        pair = await quicsim.open_pair(transport="memory", observers=(tracer,))
        stream = pair.client.open_stream()
        stream.start()
        for i in range(200):
            stream.send(bytes(10), SendFlags.FIN if i == 199 else SendFlags.NONE, client_context=i)
        await stream.wait_send_shutdown_complete(timeout=60)
        print(tracer.lines, flush=True)
        os._exit(3)  # no close, no flush at exit: as a crash would leave it

    run_virtual(main())
"""


@pytest.mark.parametrize("target", ["path", "open file"])
def test_a_crash_keeps_every_line_flushed_before_it(tmp_path, target):
    path = tmp_path / "crash.jsonl"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING_RUN), str(path), target],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    traced = int(done.stdout)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = _records(path)  # every line whole
    assert len(records) == traced - traced % FLUSH_EVERY  # all but the batch being gathered
    assert traced >= 600  # 200 sends, each queued and completed
    send_ids = [r["send_id"] for r in records if r["kind"] == "call" and r["name"] == "send"]
    assert send_ids == list(range(1, 201))
    assert [r["client_context"] for r in records if r["kind"] == "call" and r["name"] == "send"][:3] == ["0", "1", "2"]


def test_records_from_other_threads_are_all_written_whole_and_in_order(tmp_path):
    """Two connections share the tracer; a thread per stream sends on it while the loop
    thread applies the sends and completes them."""
    path = tmp_path / "threads.jsonl"
    threads_n, sends_n = 4, 600

    async def main() -> int:
        tracer = Tracer(path)
        pairs = [await quicsim.open_pair(transport="memory", observers=(tracer,)) for _ in range(2)]
        switch = sys.getswitchinterval()
        try:
            streams = [pairs[n % 2].client.open_stream() for n in range(threads_n)]
            for stream in streams:
                stream.start()

            def hammer(n: int) -> None:
                for i in range(sends_n):
                    assert streams[n].send(b"x" * 20, client_context=(n, i)) is Status.PENDING
                streams[n].shutdown(StreamShutdownFlags.GRACEFUL)

            threads = [threading.Thread(target=hammer, args=(n,)) for n in range(threads_n)]
            sys.setswitchinterval(1e-6)  # threads switch as often as they can: batches race
            for t in threads:
                t.start()
            await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join(60) for t in threads])
            sys.setswitchinterval(switch)
            assert not any(t.is_alive() for t in threads)
            for stream in streams:
                await stream.wait_shutdown_complete(timeout=30)
            assert all(pair.ledger.ok for pair in pairs), [pair.ledger.summary() for pair in pairs]
        finally:
            sys.setswitchinterval(switch)
            for pair in pairs:
                await pair.shutdown()
            tracer.close()
        return tracer.lines

    lines = _run(main)
    records = _records(path)
    assert len(records) == lines
    calls = [r for r in records if r["kind"] == "call" and r["name"] == "send"]
    assert len(calls) == threads_n * sends_n
    for n in range(threads_n):
        mine = [r["client_context"] for r in calls if r["client_context"].startswith(f"({n},")]
        assert mine == [repr((n, i)) for i in range(sends_n)]  # each once, in the order made
    cids = {r["cid"] for r in calls}
    assert len(cids) == 2
    for cid in cids:  # send ids are per connection
        send_ids = sorted(r["send_id"] for r in calls if r["cid"] == cid)
        assert len(send_ids) == len(set(send_ids)) == threads_n // 2 * sends_n
        for kind, name in (("queued", "send"), ("event", "SEND_COMPLETE")):
            assert sorted(r["send_id"] for r in records
                          if r["kind"] == kind and r["name"] == name and r["cid"] == cid) == send_ids


class _Mutable:
    """A client_context whose repr changes after it is traced."""

    def __init__(self) -> None:
        self.n = 0

    def __repr__(self) -> str:
        return f"<ctx {self.n} \"quoted\" \u00e9>"


def test_the_batched_records_equal_the_generic_ones_for_any_number_or_context(tmp_path):
    """Each send record, completion and RECEIVE is also traced through the generic
    (dict) path; apart from the time, the two lines must say the same."""
    from quicsim import SendFlags
    from quicsim import events as ev
    from quicsim.trace import event_fields

    path = tmp_path / "t.jsonl"
    contexts = [0, 7, 4095, 4096, -1, 10**20, True, None, "a\"b\\c", ("t", 1), Status.SUCCESS, _Mutable()]
    numbers = [0, 1, 4095, 4096, 10**12]

    async def main() -> None:
        tracer = Tracer(path, include_cids=True)
        pair = await quicsim.open_pair(transport="memory")
        try:
            conn = pair.client.core
            stream = pair.client.open_stream().core
            for n in numbers:
                for context in contexts:
                    for status in (Status.PENDING, Status.INVALID_STATE):
                        tracer.send_call(conn, stream, n, status, n, SendFlags.FIN | SendFlags.DELAY_SEND, context)
                        tracer.api_call(conn, stream, "send", status, {"send_id": n, "bytes": n,
                                                                       "flags": SendFlags.FIN | SendFlags.DELAY_SEND,
                                                                       "client_context": context})
                    event = ev.SendComplete(canceled=n % 2 == 0, client_context=context, send_id=n)
                    tracer.stream_event(conn, stream, event)
                    tracer._write({"kind": "event", "name": "SEND_COMPLETE", **tracer._where(conn, stream),
                                   **event_fields(event)})
                    if isinstance(context, _Mutable):
                        context.n += 1  # after the records, before they are written
                for offset, end in ((n, n + n), (n + n, n + n + 3), (7, 9)):  # contiguous, then not
                    tracer.send_queued(conn, stream, n, offset, end, n == 0)
                for offset, end in ((n, n + n), (n + n, n + n + 3), (7, 9)):
                    tracer._write({"kind": "queued", "name": "send", **tracer._where(conn, stream), "send_id": n,
                                   "range": [offset, end], "fin": n == 0})
                receive = ev.Receive(absolute_offset=n, total_buffer_length=n + 3, buffers=(b"ab", b"c" * (n % 7)),
                                     flags=quicsim.ReceiveFlags.FIN)
                tracer.stream_event(conn, stream, receive)
                tracer._write({"kind": "event", "name": "RECEIVE", **tracer._where(conn, stream),
                               **event_fields(receive)})
                tracer.operation_applied(conn, stream, "send")
                tracer._write({"kind": "applied", "name": "send", **tracer._where(conn, stream)})
                tracer.operation_applied(conn, None, "conn_shutdown")
                tracer._write({"kind": "applied", "name": "conn_shutdown", **tracer._where(conn, None)})
        finally:
            await pair.shutdown()
            tracer.close()

    _run(main)
    records = _records(path)
    assert len(records) == 2 * len(numbers) * (3 * len(contexts) + 6)
    queued = [r for r in records if r["kind"] == "queued"]  # in sixes: three batched, three generic
    pairs = [(queued[i + k], queued[i + 3 + k]) for i in range(0, len(queued), 6) for k in range(3)]
    others = [r for r in records if r["kind"] != "queued"]  # batched, generic, batched, ...
    pairs += list(zip(others[::2], others[1::2]))
    assert len(pairs) * 2 == len(records)
    for fast, generic in pairs:
        assert list(fast) == list(generic)  # the same keys in the same order
        fast.pop("t"), generic.pop("t")
        assert fast == generic
    contexts_seen = {r["client_context"] for r in records if "client_context" in r}
    assert {"7", "4096", "-1", "True", "None", "'a\"b\\\\c'", "('t', 1)", "<ctx 0 \"quoted\" \u00e9>"} <= contexts_seen


def test_default_clock_is_the_loops_so_a_virtual_run_is_traced_in_virtual_time(tmp_path):
    """A tracer made without a clock (and before the loop exists) times its records by
    the loop they happen on: sends five virtual seconds apart are five seconds apart in
    the trace, though no real time passed; sends of one instant carry one time."""
    path = tmp_path / "t.jsonl"
    tracer = Tracer(path, include_cids=False)

    async def main() -> None:
        pair = await quicsim.open_pair(transport="memory", observers=(tracer,))
        try:
            stream = pair.client.open_stream()
            stream.start()
            for context in ("a", "b"):
                assert stream.send(b"x" * 10, client_context=context) is Status.PENDING
            await asyncio.sleep(5)  # virtual: instant in real time
            assert stream.send(b"y" * 10, client_context="c") is Status.PENDING
            stream.shutdown(StreamShutdownFlags.GRACEFUL)
            await stream.wait_shutdown_complete(timeout=10)
        finally:
            await pair.shutdown()
            tracer.close()

    _run(main)
    records = _records(path)
    calls = {r["client_context"]: r["t"] for r in records if r["kind"] == "call" and r["name"] == "send"}
    assert calls["'a'"] == calls["'b'"]
    assert calls["'c'"] - calls["'a'"] == pytest.approx(5.0, abs=1e-5)
    assert min(r["t"] for r in records) == 0  # counted from the first record

"""An observer never costs the application an event: one that raises (a tracer on a full
disk, a bug in someone's observer) watches no more, says so once, and every accepted send
still gets its SEND_COMPLETE; `quicsim run` still gives each run's verdict and exits 2
for the file it could not write. The full disk is real: /dev/full fails every write with
ENOSPC."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quicsim import SendFlags, StreamEventType
from quicsim.observer import Observer
from quicsim.pair import open_pair
from quicsim.trace import Tracer

REPO = Path(__file__).resolve().parent.parent
SENDS = 300

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a disk that is full)")


class _Raises(Observer):
    """An observer with a bug: its stream_event raises after the first few events."""

    def __init__(self) -> None:
        self.seen = 0

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        self.seen += 1
        if self.seen > 3:
            raise RuntimeError("observer bug")


class _Counts(Observer):
    def __init__(self) -> None:
        self.completions = 0

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            self.completions += 1


async def _send_all(pair: Any) -> int:
    """SENDS sends on one stream, FIN on the last; the completions the handler got."""
    completions = []

    def on_event(stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            completions.append(event.canceled)

    stream = pair.client.open_stream(handler=on_event)
    stream.start()
    for n in range(SENDS):
        stream.send(b"x" * 100, flags=SendFlags.FIN if n == SENDS - 1 else SendFlags.NONE, client_context=n)
    await stream.wait_shutdown_complete(timeout=30)
    return len(completions)


@pytest.mark.asyncio
async def test_a_tracer_on_a_full_disk_costs_no_completion():
    tracer = Tracer("/dev/full")
    pair = await open_pair(transport="memory", observers=(tracer,))
    try:
        assert await _send_all(pair) == SENDS  # and no API call raised
    finally:
        await pair.shutdown()
    assert tracer.failed is not None and tracer.failed.errno == errno.ENOSPC
    report = pair.ledger.report()
    assert report["ok"] and report["sends"] == report["completions"] == SENDS
    errors = [text for c in (pair.client, pair.server) for _o, _e, text in c.core.observer_errors]
    assert len(errors) == 1, errors  # said once, by the side whose write failed first
    assert "Tracer (/dev/full) stopped watching: OSError: [Errno 28]" in errors[0]


@pytest.mark.asyncio
async def test_an_observer_that_raises_is_dropped_and_those_after_it_still_watch():
    bad, counts = _Raises(), _Counts()
    pair = await open_pair(transport="memory", observers=(bad, counts))
    try:
        assert await _send_all(pair) == SENDS
    finally:
        await pair.shutdown()
    assert counts.completions == SENDS  # told of the event the bad one raised on, and of every later one
    assert pair.ledger.report()["ok"]
    failed = [(o, text) for o, _e, text in pair.client.core.observer_errors]
    assert [o for o, _ in failed] == [bad]
    assert "_Raises stopped watching: RuntimeError: observer bug (in stream_event)" in failed[0][1]
    assert bad not in pair.client.core.observers and counts in pair.client.core.observers


@pytest.mark.parametrize("transport", ["memory", "udp"])
def test_run_on_a_full_disk_gives_the_verdict_and_exits_2(tmp_path, transport):
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "many_streams_lossy-seed1.jsonl").symlink_to("/dev/full")
    out = subprocess.run([sys.executable, "-m", "quicsim", "run", str(REPO / "scenarios" / "many_streams_lossy.py"),
                          "--trace", str(traces), "--transport", transport, "--json"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"quicsim run: could not write the trace {traces / 'many_streams_lossy-seed1.jsonl'}: OSError: [Errno 28] "
        "No space left on device; every run was judged all the same (above)"]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["passed"] and result["sends"] == result["completions"] == 520


@pytest.mark.asyncio
@pytest.mark.skipif(not os.environ.get("QUICSIM_MSQUIC_LIB"), reason="needs QUICSIM_MSQUIC_LIB (a libmsquic)")
async def test_on_the_real_library_too_an_observer_that_raises_costs_nothing():
    bad, counts = _Raises(), _Counts()
    pair = await open_pair(backend="msquic", observers=(bad, counts))
    try:
        assert await _send_all(pair) == SENDS
    finally:
        await pair.shutdown()
    assert counts.completions == SENDS and pair.ledger.report()["ok"]
    assert [o for o, _e, _t in pair.client.observer_errors] == [bad]

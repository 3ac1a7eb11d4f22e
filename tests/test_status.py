"""Rule 5: MsQuic's statuses for protocol misuse through the API."""

from __future__ import annotations

import asyncio
import quicsim

import pytest

from quicsim import (
    SendFlags,
    Status,
    StatusError,
    StreamShutdownFlags as F,
    StreamStartFlags,
)

from .conftest import Recorder, round_trip

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("flags", [
    F.NONE,
    F.GRACEFUL | F.ABORT_SEND,
    F.GRACEFUL | F.ABORT,
    F.GRACEFUL | F.IMMEDIATE,
    F.IMMEDIATE,
    F.IMMEDIATE | F.ABORT_SEND,
    F.IMMEDIATE | F.ABORT_RECEIVE,
    F.ABORT | F.IMMEDIATE | F.INLINE,  # MsQuicStreamShutdown wants IMMEDIATE|ABORT exactly
    F.ABORT | F.IMMEDIATE | 0x100,
])
async def test_invalid_shutdown_flags(pair, flags):
    stream = pair.client.open_stream()
    stream.start()
    assert stream.shutdown(flags, 0) is Status.INVALID_PARAMETER


@pytest.mark.parametrize("flags", [
    F.GRACEFUL, F.ABORT_SEND, F.ABORT_RECEIVE, F.ABORT, F.ABORT | F.IMMEDIATE, F.GRACEFUL | F.INLINE,
    F.GRACEFUL | 0x100, F.ABORT | F.INLINE | 0x4000,  # other unknown bits pass, as in api.c
])
async def test_valid_shutdown_flags(pair, flags):
    stream = pair.client.open_stream()
    stream.start()
    assert stream.shutdown(flags, 0) is Status.PENDING  # INLINE outside a callback is queued


@pytest.mark.parametrize("code,status", [
    ((1 << 62) - 1, Status.PENDING), (1 << 62, Status.INVALID_PARAMETER), (-1, Status.INVALID_PARAMETER),
])
async def test_shutdown_error_code_range(pair, code, status):
    stream = pair.client.open_stream()
    stream.start()
    assert stream.shutdown(F.ABORT, code) is status


async def test_second_graceful_shutdown_succeeds(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    assert stream.shutdown(F.GRACEFUL) is Status.PENDING
    await asyncio.sleep(0)
    assert stream.shutdown(F.GRACEFUL) is Status.PENDING
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.types().count("SEND_SHUTDOWN_COMPLETE") == 1


async def test_bad_send_parameters_get_no_event(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    chunk = memoryview(bytes(1 << 20))
    assert stream.send("text", client_context=1) is Status.INVALID_PARAMETER
    assert stream.send([b"ok", 5], client_context=2) is Status.INVALID_PARAMETER
    assert stream.send(b"x", -1, client_context=3) is Status.INVALID_PARAMETER
    # Over 4 GiB in one call, without allocating it: the same 1 MiB buffer 4097 times.
    assert stream.send([chunk] * 4097, client_context=4) is Status.INVALID_PARAMETER
    # MsQuicStreamSend keeps Flags & ~QUIC_SEND_FLAGS_INTERNAL: unknown bits are ignored.
    assert stream.send(b"x", 0x1000, client_context=5) is Status.PENDING
    stream.shutdown(F.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [(5, False)]
    assert pair.client.ledger.report()["rejected"] == 4


async def test_flags_of_the_wrong_type_raise_type_error_naming_the_type(pair):
    stream = pair.client.open_stream()
    cases = [
        (lambda: stream.start("now"), "StreamStartFlags"),
        (lambda: stream.start(True), "StreamStartFlags"),
        (lambda: stream.shutdown(quicsim.SendFlags.FIN), "StreamShutdownFlags"),
        (lambda: stream.send(b"x", StreamStartFlags.IMMEDIATE), "SendFlags"),
        (lambda: stream.send(b"x", True), "SendFlags"),
        (lambda: pair.client.open_stream(F.GRACEFUL), "StreamOpenFlags"),
        (lambda: pair.client.shutdown(F.GRACEFUL), "ConnectionShutdownFlags"),
    ]
    for call, expected in cases:
        with pytest.raises(TypeError, match=f"flags must be {expected}"):
            call()
    assert pair.client.ledger.report()["rejected"] == 0 and pair.client.ledger.sends == 0


async def test_double_start(pair):
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    assert stream.start() is Status.PENDING
    await stream.wait_event(quicsim.StreamEventType.START_COMPLETE, timeout=5)
    assert stream.start() is Status.INVALID_STATE
    assert stream.start(0x1000) is Status.INVALID_STATE  # unknown bits ignored: still started
    assert stream.start(-1) is Status.INVALID_PARAMETER
    await round_trip(pair.client)  # a second START_COMPLETE would have come by now
    assert rec.types() == ["START_COMPLETE"]


async def test_start_fail_blocked_reports_stream_limit(pair):
    limit = pair.client.core.quic._remote_max_streams_bidi
    for _ in range(limit):
        last = pair.client.open_stream()
        last.start()
    await last.wait_event(quicsim.StreamEventType.START_COMPLETE, timeout=5)  # every start applied
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start(StreamStartFlags.FAIL_BLOCKED)
    event = await stream.wait_event(quicsim.StreamEventType.START_COMPLETE, timeout=5)
    assert event.status is Status.STREAM_LIMIT_REACHED and rec.events == [event]


async def test_open_start_send_after_local_shutdown(pair):
    before = pair.client.open_stream()
    started = pair.client.open_stream()
    started.start()
    await started.wait_event(quicsim.StreamEventType.START_COMPLETE, timeout=5)
    pair.client.shutdown()
    await started.wait_shutdown_complete(timeout=5)  # the shutdown was applied: it ended the stream
    with pytest.raises(StatusError) as info:
        pair.client.open_stream()
    assert info.value.status is Status.INVALID_STATE
    assert started.send(b"x") is Status.INVALID_STATE
    # An opened, unstarted stream still accepts sends (MsQuic checks only SendEnabled
    # and ClosedRemotely); they complete, canceled, when the stream is closed.
    rec = Recorder()
    before.set_handler(rec)
    assert before.send(b"x", SendFlags.NONE, client_context="u") is Status.PENDING
    await pair.client.wait_shutdown_complete(timeout=5)
    before.close()
    assert rec.completions() == [("u", True)]
    assert pair.client.ledger.ok


async def test_a_handler_raising_cancelled_error_does_not_stall_its_stream(pair):
    def handler(stream, event):
        if event.type is quicsim.StreamEventType.START_COMPLETE:
            raise asyncio.CancelledError()

    rec = Recorder(handler)
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"x" * 100, client_context="a")
    stream.shutdown(F.GRACEFUL)
    await stream.wait_shutdown_complete(timeout=5)
    assert rec.completions() == [("a", False)]  # acknowledged, not canceled
    assert [type(e) for e in pair.client.handler_errors] == [asyncio.CancelledError]

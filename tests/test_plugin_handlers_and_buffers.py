"""The plugin fails a test whose event handler raised (``expect=`` can allow it), and
``quicsim_buffers`` lets a test check its own buffer table against the completions."""

from __future__ import annotations

import pytest

from quicsim import StreamEventType, StreamShutdownFlags, open_pair
from quicsim.held import Buffers

RAISING = """
    import pytest
    from quicsim import StreamEventType, StreamShutdownFlags

    def on_event(stream, event):
        if event.type is StreamEventType.SEND_COMPLETE:
            raise RuntimeError("my handler broke on " + str(event.client_context))

    async def run(pair):
        s = pair.client.open_stream(handler=on_event)
        s.start()
        s.send(b"x" * 100, client_context="buf-1")
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)

    @pytest.mark.asyncio
    async def test_handler_raised(quicsim_pair):
        await run(quicsim_pair)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(expect="handler_error")
    async def test_handler_raised_and_expected(quicsim_pair):
        await run(quicsim_pair)

    @pytest.mark.asyncio
    @pytest.mark.quicsim(expect="handler_error")
    async def test_handler_expected_but_did_not_raise(quicsim_pair):
        s = quicsim_pair.client.open_stream()
        s.start()
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        await s.wait_shutdown_complete(timeout=5)
"""


def test_a_handler_that_raised_fails_the_test_with_its_traceback(pytester: pytest.Pytester):
    pytester.makepyfile(RAISING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=1, failed=2)
    text = result.stdout.str()
    assert "exception(s) raised in event handlers" in text
    assert "RuntimeError: my handler broke on buf-1" in text
    assert 'in on_event' in text and "Traceback (most recent call last)" in text  # the handler's own frame
    assert "expected an event handler to raise (expect='handler_error'), none did" in text


WRAPPERS = """
    import pytest
    from quicsim import StreamEventType, StreamShutdownFlags

    class Wrapper:
        '''An application's send wrapper: a buffer table freed on SEND_COMPLETE.'''

        def __init__(self, frees_canceled):
            self.outstanding = []
            self.frees_canceled = frees_canceled

        def on_event(self, stream, event):
            if event.type is StreamEventType.SEND_COMPLETE:
                if not event.canceled or self.frees_canceled:
                    self.outstanding.remove(event.client_context)

        def send(self, stream, data, ctx):
            self.outstanding.append(ctx)
            stream.send(data, client_context=ctx)

    async def race(pair, wrapper):
        s = pair.client.open_stream(handler=wrapper.on_event)
        s.start()
        wrapper.send(s, b"x" * 100, "buf-early")
        await s.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
        s.shutdown(StreamShutdownFlags.GRACEFUL)
        wrapper.send(s, b"late", "buf-late")            # accepted, then canceled
        await s.wait_shutdown_complete(timeout=5)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("frees_canceled", [True, False])
    async def test_wrapper(quicsim_pair, quicsim_buffers, frees_canceled):
        wrapper = Wrapper(frees_canceled)
        await race(quicsim_pair, wrapper)
        assert ("buf-late", True) in quicsim_buffers.completed()
        quicsim_buffers.assert_matches(wrapper.outstanding)
"""


def test_buffers_fixture_catches_a_wrapper_that_never_frees_canceled_buffers(pytester: pytest.Pytester):
    pytester.makepyfile(WRAPPERS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "test_wrapper[True] PASSED" in text and "test_wrapper[False] FAILED" in text
    assert "still held by the application, but its send completed: 'buf-late'" in text


@pytest.mark.asyncio
async def test_buffers_tracks_held_and_completed_and_sees_a_dropped_completion():
    for faults, late_held in (((), False), (("drop-send-after-shutdown",), True)):
        from quicsim import Settings

        buffers = Buffers()
        pair = await open_pair(transport="memory", observers=(buffers,),
                               client_settings=Settings(faults=frozenset(faults)))
        try:
            s = pair.client.open_stream()
            s.start()
            s.send(b"x", client_context="early")
            await s.wait_event(StreamEventType.SEND_COMPLETE, timeout=5)
            s.shutdown(StreamShutdownFlags.GRACEFUL)
            s.send(b"y", client_context="late")
            assert buffers.held() == ["late"]
            await s.wait_shutdown_complete(timeout=5)
            assert buffers.held() == (["late"] if late_held else [])
            assert buffers.completed()[0] == ("early", False)
            assert buffers.mismatches(["late"] if late_held else []) == []
            assert buffers.mismatches([]) == ([] if not late_held else
                                              ["released by the application before its SEND_COMPLETE: 'late'"])
        finally:
            await pair.shutdown()

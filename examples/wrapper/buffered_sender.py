"""An application's wrapper over quicsim's stream API that owns each buffer it sends and
frees it on that send's SEND_COMPLETE, acknowledged or canceled.

MsQuic's rule: from StreamSend until its SEND_COMPLETE the buffer belongs to the library;
the completion, and only the completion, hands it back. A wrapper that frees only on
acknowledgement leaks every canceled buffer; ``free_canceled=False`` is that bug, so the
tests beside this file can show the check catching it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import quicsim
from quicsim import Status, StreamEventType, StreamShutdownFlags


class BufferedSender:
    """One stream; ``outstanding`` maps each buffer still owned by quicsim to its bytes."""

    def __init__(self, conn: quicsim.Connection, *, free_canceled: bool = True) -> None:
        self.outstanding: dict[str, bytes] = {}
        self.freed: list[tuple[str, bool]] = []  # (context, canceled) in completion order
        self._free_canceled = free_canceled
        self._next = 0
        self.stream = conn.open_stream(handler=self._on_event)  # StreamOpen
        self.stream.start()  # StreamStart

    def send(self, data: bytes) -> Status:
        """StreamSend one buffer; it is ours again only at its SEND_COMPLETE."""
        context = f"buf-{self._next}"
        self._next += 1
        self.outstanding[context] = data
        status = self.stream.send(data, client_context=context)
        if status is not Status.PENDING:  # refused: no SEND_COMPLETE will come, the buffer stays ours
            del self.outstanding[context]
        return status

    def _on_event(self, stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            if event.canceled and not self._free_canceled:
                return  # the bug: a canceled buffer is never freed
            del self.outstanding[event.client_context]
            self.freed.append((event.client_context, bool(event.canceled)))

    async def send_then_shut_down(self, chunks: Iterable[bytes], late: Iterable[bytes] = ()) -> None:
        """Send ``chunks``, shut the send side down gracefully, then send ``late`` (the race
        of MsQuic issue 4307: accepted, then canceled), and wait for the stream's end."""
        for chunk in chunks:
            self.send(chunk)
        await asyncio.sleep(0)  # one loop turn: the worker applies the sends queued so far
        self.stream.shutdown(StreamShutdownFlags.GRACEFUL)  # StreamShutdown -> PENDING
        for chunk in late:
            self.send(chunk)
        await self.stream.wait_shutdown_complete(timeout=20)
        self.stream.close()  # StreamClose, after SHUTDOWN_COMPLETE as MsQuic asks

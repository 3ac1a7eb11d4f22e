"""Send buffering (MsQuic's SendBufferingEnabled, ``src/core/send_buffer.c``).

With buffering on, a send completes (canceled=False) as soon as it is copied into the
connection's send buffer, while the buffered bytes are below the ideal size; the other
sends wait in their stream's queue and are buffered as acknowledgements free space (or
complete on their own acknowledgement, or are canceled on abort). The ideal size starts
at 128 KiB and follows the bytes in flight the path can hold (the congestion window),
in powers of two up to 128 MiB; each change is announced with IDEAL_SEND_BUFFER_SIZE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .stream import StreamCore

MIN_IDEAL = 128 * 1024
MAX_IDEAL = 128 * 1024 * 1024


def ideal_for(bytes_in_flight: int) -> int:
    """QuicGetNextIdealBytes: the smallest power-of-two multiple of 128 KiB that holds
    what the path can have in flight, capped at 128 MiB."""
    ideal = MIN_IDEAL
    while ideal < bytes_in_flight and ideal < MAX_IDEAL:
        ideal *= 2
    return ideal


class SendBuffer:
    """The connection-wide buffer: how much is buffered, the ideal, who waits for room."""

    __slots__ = ("buffered_bytes", "ideal_bytes", "waiting")

    def __init__(self) -> None:
        self.buffered_bytes = 0
        self.ideal_bytes = MIN_IDEAL
        #: started streams with unbuffered sends, in the order they started waiting
        self.waiting: dict[StreamCore, None] = {}

    def fill(self) -> None:
        """QuicSendBufferFill: buffer whole sends, oldest stream first, while there is room."""
        waiting = self.waiting
        while waiting and self.buffered_bytes < self.ideal_bytes:
            stream = next(iter(waiting))
            if not stream._buffer_next_send():
                del waiting[stream]

    def release(self, length: int) -> None:
        self.buffered_bytes -= length

"""Per-stream send requests: accepted by the API, flushed by the worker, completed on ACK.

This mirrors MsQuic's two lists on a stream: ``ApiSendRequests`` (accepted by
StreamSend, not yet seen by the worker) and ``SendRequests`` (queued at a stream
offset, waiting for the peer's acknowledgement). Both are FIFO deques, so every
completion is O(1) amortized: the ACK path only ever looks at the head.
"""

from __future__ import annotations

from collections import deque
from contextlib import AbstractContextManager
from typing import Any, Iterator

from ..enums import SendFlags

_FIN = int(SendFlags.FIN)


_BUFFER_TYPES = (bytes, bytearray, memoryview)
#: one QUIC_BUFFER: a bytes-like object the send holds until it is written
Buffer = bytes | bytearray | memoryview


def normalize_buffers(buffers: Any) -> tuple[tuple[Buffer, ...], int] | None:
    """MsQuic's QUIC_BUFFER array: one bytes-like object or a list of them."""
    bufs: tuple[Buffer, ...]
    if isinstance(buffers, _BUFFER_TYPES):
        bufs = (buffers,)
    elif isinstance(buffers, (list, tuple)):
        bufs = tuple(buffers)
        for b in bufs:
            if not isinstance(b, _BUFFER_TYPES):
                return None
    else:
        return None
    if any(isinstance(b, memoryview) for b in bufs):
        flat: list[Buffer] = []
        for b in bufs:
            if isinstance(b, memoryview):
                if not b.c_contiguous:
                    return None  # not one contiguous run of bytes: no QUIC_BUFFER can hold it
                if b.ndim != 1 or b.format not in ("B", "b", "c"):
                    b = b.cast("B")  # count and send bytes, not items
            flat.append(b)
        bufs = tuple(flat)
    total = 0
    for b in bufs:
        total += len(b)
    return bufs, total


class SendRequest:
    """One accepted StreamSend: its buffers, flags, client context and stream range."""

    __slots__ = ("send_id", "buffers", "length", "flags", "client_context", "offset", "end", "fin")

    def __init__(self, send_id: int, buffers: tuple[Buffer, ...], length: int, flags: int,
                 client_context: Any) -> None:
        self.send_id = send_id
        #: the application's buffers, held (not copied) until written to aioquic
        self.buffers: tuple[Buffer, ...] | None = buffers
        self.length = length
        self.flags = flags
        self.client_context = client_context
        self.offset = -1  # stream offset, set when the worker queues it
        self.end = -1
        self.fin = bool(flags & _FIN)

    def __repr__(self) -> str:
        return (
            f"SendRequest(send_id={self.send_id}, bytes={self.length}, "
            f"range=[{self.offset}, {self.end}), fin={self.fin}, "
            f"client_context={self.client_context!r})"
        )


class SendQueue:
    """The two request lists of one stream, plus the next stream offset."""

    __slots__ = ("api_requests", "taken", "requests", "queued_offset")

    def __init__(self) -> None:
        #: accepted by the API, waiting for the worker (MsQuic: ApiSendRequests)
        self.api_requests: deque[SendRequest] = deque()
        #: taken from ``api_requests`` by the worker, being applied or canceled right now
        self.taken: deque[SendRequest] = deque()
        #: queued at an offset, waiting for acknowledgement (MsQuic: SendRequests)
        self.requests: deque[SendRequest] = deque()
        #: the offset the next queued request starts at (MsQuic: QueuedSendOffset)
        self.queued_offset = 0

    def queue(self, request: SendRequest) -> None:
        """Give ``request`` its stream range and append it to the waiting list."""
        request.offset = self.queued_offset
        self.queued_offset += request.length
        request.end = self.queued_offset
        self.requests.append(request)

    def pop_acknowledged(self, acked_offset: int, fin_acked: bool) -> Iterator[SendRequest]:
        """Yield, oldest first, the requests whose bytes (and FIN) are all acknowledged.

        ``acked_offset`` is the contiguous acknowledged prefix of the stream; a request
        carrying the FIN also needs ``fin_acked`` (which can turn true before the data
        before it is contiguous, so both are checked).
        """
        requests = self.requests
        while requests:
            head = requests[0]
            if head.end > acked_offset or (head.fin and not fin_acked):
                return
            requests.popleft()
            yield head

    def take_api_requests(self, lock: AbstractContextManager[Any]) -> deque[SendRequest]:
        """Swap out the accepted-not-applied list under ``lock`` (QuicStreamSendFlush's
        ``ApiSendRequests = NULL``): a send racing from another thread either made it
        into the batch taken here or finds an empty list and queues its own operation.

        The batch joins ``taken``, which every path (flush, shutdown, abort, close) drains:
        a handler that closes the stream from a completion raised in the middle of one of
        them still completes the rest."""
        with lock:
            batch = self.api_requests
            if batch:
                self.api_requests = deque()
        self.taken.extend(batch)
        return self.taken

    def detach_api_requests(self, lock: AbstractContextManager[Any]) -> int:
        """QuicStreamSendShutdown's own ``ApiSendRequests = NULL``: the accepted sends not
        yet taken go to the *front* of ``taken`` (the shutdown completes them before the
        loop it may run inside goes on with the rest). Returns how many."""
        with lock:
            batch = self.api_requests
            if not batch:
                return 0
            self.api_requests = deque()
        self.taken.extendleft(reversed(batch))
        return len(batch)

    def strand_taken(self) -> int:
        """Leave the batch being drained to the loop that detached it (the
        ``reentrant-close`` fault): later takes start a new batch. Returns its size."""
        stranded = len(self.taken)
        self.taken = deque()
        return stranded

    def forget_all(self) -> int:
        """Drop every pending request without completing it (a fault's doing); returns
        how many."""
        dropped = self.pending_count()
        self.api_requests = deque()
        # In place: a loop draining ``taken`` (the close may run inside its own canceled
        # batch) must see it empty, not complete a request counted as dropped here.
        self.taken.clear()
        self.requests.clear()
        return dropped

    def pending_count(self) -> int:
        return len(self.api_requests) + len(self.taken) + len(self.requests)

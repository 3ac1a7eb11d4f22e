"""Unreliable datagrams (MsQuic's ConnectionSendDatagram, RFC 9221) with a state per
datagram: SENT, then ACKNOWLEDGED, or LOST_SUSPECT and LOST_DISCARDED, or CANCELED when the
connection ends first. Each datagram reaches exactly one final state.

aioquic keeps no per-datagram delivery state, so the connection's DATAGRAM frame writer
is replaced (per connection) by one that registers a delivery callback for each frame.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from aioquic.buffer import size_uint_var
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicDeliveryState

from .. import events as ev
from ..enums import DatagramSendState, Status

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore

FINAL_STATES = frozenset({DatagramSendState.ACKNOWLEDGED, DatagramSendState.LOST_DISCARDED,
                          DatagramSendState.CANCELED})


class DatagramRequest:
    __slots__ = ("datagram_id", "data", "client_context", "done")

    def __init__(self, datagram_id: int, data: bytes, client_context: Any) -> None:
        self.datagram_id = datagram_id
        self.data = data
        self.client_context = client_context
        self.done = False


class DatagramSender:
    """The datagrams of one connection: queued, in flight, and their states."""

    def __init__(self, conn: "ConnectionCore") -> None:
        self.conn = conn
        self.queued: deque[DatagramRequest] = deque()  # in aioquic's _datagrams_pending order
        self.in_flight: dict[int, DatagramRequest] = {}
        self._ids = 0
        #: state changes seen inside aioquic (packet building, ACK processing), delivered
        #: from ``deliver()`` once aioquic is done: a handler may not re-enter it mid-packet
        self._changes: list[tuple[DatagramRequest, DatagramSendState]] = []
        conn.quic._write_datagram_frame = self._write_frame  # per instance, see module doc

    def check(self, data: Any) -> tuple[Status | None, bytes]:
        """ConnectionSendDatagram's checks: None when the datagram can be accepted."""
        conn = self.conn
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return Status.INVALID_PARAMETER, b""
        data = bytes(data)
        limit = conn.quic._remote_max_datagram_frame_size
        if conn.shutdown_initiated or not conn.connected or limit is None:
            return Status.INVALID_STATE, data  # not negotiated (the peer must enable receiving)
        if len(data) + 1 + size_uint_var(len(data)) > min(limit, conn.quic._max_datagram_size - 40):
            return Status.INVALID_PARAMETER, data  # cannot fit one packet
        return None, data

    def new_request(self, data: bytes, client_context: Any) -> DatagramRequest:
        self._ids += 1
        return DatagramRequest(self._ids, data, client_context)

    def enqueue(self, request: DatagramRequest) -> None:
        """Hand an accepted datagram to aioquic (under the connection's lock)."""
        self.queued.append(request)
        self.conn.quic.send_datagram_frame(request.data)

    def _write_frame(self, builder: Any, data: bytes, frame_type: QuicFrameType) -> bool:
        """aioquic's DATAGRAM frame writer, plus a delivery callback for this datagram."""
        request = self.queued[0]
        length = len(data)
        buf = builder.start_frame(frame_type, capacity=1 + size_uint_var(length) + length,
                                  handler=self._on_delivery, handler_args=(request,))
        buf.push_uint_var(length)
        buf.push_bytes(data)
        quic_logger = self.conn.quic._quic_logger
        if quic_logger is not None:  # as aioquic's own writer logs the frame (qlog)
            builder.quic_logger_frames.append(quic_logger.encode_datagram_frame(length=length))
        self.queued.popleft()
        self.in_flight[request.datagram_id] = request
        self._changes.append((request, DatagramSendState.SENT))
        return True

    def _on_delivery(self, delivery: QuicDeliveryState, request: DatagramRequest) -> None:
        if request.done:
            return
        self.in_flight.pop(request.datagram_id, None)
        if delivery == QuicDeliveryState.ACKED:
            self._changes.append((request, DatagramSendState.ACKNOWLEDGED))
        else:
            # Datagrams are never retransmitted: suspected lost, then given up at once.
            self._changes.append((request, DatagramSendState.LOST_SUSPECT))
            self._changes.append((request, DatagramSendState.LOST_DISCARDED))

    def deliver(self) -> None:
        """Deliver the state changes collected while aioquic was working."""
        while self._changes:
            changes, self._changes = self._changes, []
            for request, state in changes:
                self._state(request, state)

    def cancel_all(self) -> None:
        """The connection is gone: every datagram without a final state is CANCELED."""
        self.deliver()
        with self.conn.lock:
            left = [*self.queued, *self.in_flight.values()]
            self.queued.clear()
            self.in_flight.clear()
            self.conn.quic._datagrams_pending.clear()  # nothing of ours may be written later
        for request in left:
            self._state(request, DatagramSendState.CANCELED)

    def _state(self, request: DatagramRequest, state: DatagramSendState) -> None:
        if request.done:
            return
        if state in FINAL_STATES:
            request.done = True
        self.conn._indicate(ev.DatagramSendStateChanged(client_context=request.client_context, state=state,
                                                        datagram_id=request.datagram_id))

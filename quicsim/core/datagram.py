"""Unreliable datagrams (MsQuic's ConnectionSendDatagram, RFC 9221) with a state per
datagram, as ``src/core/datagram.c`` and ``loss_detection.c`` report them: SENT when
written; then ACKNOWLEDGED, or LOST_SUSPECT when its packet is declared lost, followed by
ACKNOWLEDGED_SPURIOUS if a later ACK names that packet or LOST_DISCARDED once the packet
is forgotten (acknowledged past and sent more than two PTOs ago); CANCELED if never
written before the connection ended, LOST_DISCARDED if still in flight or suspect then.
Each datagram reaches exactly one final state.

aioquic keeps no per-datagram delivery state and forgets a packet once it declares it
lost, so the connection's DATAGRAM frame writer is replaced (per connection) by one that
registers a delivery callback for each frame, and the recovery's ACK and loss-timer entry
points are wrapped (per connection) to see late ACKs and the passing of time.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from aioquic.buffer import size_uint_var
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicDeliveryState

from .. import events as ev
from ..enums import DatagramSendState, Status
from . import aioquic_adapter as aq

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore

FINAL_STATES = frozenset({DatagramSendState.ACKNOWLEDGED, DatagramSendState.ACKNOWLEDGED_SPURIOUS,
                          DatagramSendState.LOST_DISCARDED, DatagramSendState.CANCELED})
_SENT = DatagramSendState.SENT
_LOST_SUSPECT = DatagramSendState.LOST_SUSPECT
_LOST_DISCARDED = DatagramSendState.LOST_DISCARDED


class DatagramRequest:
    __slots__ = ("datagram_id", "data", "client_context", "done", "packet")

    def __init__(self, datagram_id: int, data: bytes, client_context: Any) -> None:
        self.datagram_id = datagram_id
        self.data = data
        self.client_context = client_context
        self.done = False
        self.packet: Any = None  # aioquic's QuicSentPacket that carries it, once written


class DatagramSender:
    """The datagrams of one connection: queued, in flight, and their states."""

    def __init__(self, conn: "ConnectionCore") -> None:
        self.conn = conn
        self.queued: deque[DatagramRequest] = deque()  # in aioquic's _datagrams_pending order
        self.in_flight: dict[int, DatagramRequest] = {}
        #: datagrams of packets declared lost and not yet forgotten, by packet number in
        #: the order they were declared lost (MsQuic's LostPackets list)
        self.suspects: dict[int, list[DatagramRequest]] = {}
        self._app_space: Any = None  # aioquic's application-data packet space, once seen
        self._ids = 0
        #: state changes seen inside aioquic (packet building, ACK processing), delivered
        #: from ``deliver()`` once aioquic is done: a handler may not re-enter it mid-packet
        self.changes: list[tuple[DatagramRequest, DatagramSendState]] = []
        aq.replace_datagram_writer(conn.quic, self._write_frame)
        self._loss: Any = None  # aioquic's recovery, once its entry points are wrapped

    def _wrap_recovery(self) -> None:
        """Wrap aioquic's ACK and loss-timer entry points (per instance, on the first
        datagram, so connections without datagrams pay nothing per ACK)."""
        self._loss = aq.recovery(self.conn.quic)
        self._on_ack_received, self._on_loss_detection_timeout = aq.watch_recovery(
            self.conn.quic, self._ack_received, self._loss_detection_timeout)

    def check(self, data: Any) -> tuple[Status | None, bytes]:
        """ConnectionSendDatagram's checks: None when the datagram can be accepted."""
        conn = self.conn
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return Status.INVALID_PARAMETER, b""
        data = bytes(data)
        limit, packet_size = aq.datagram_limits(conn.quic)
        if conn.shutdown_initiated or not conn.connected or limit is None:
            return Status.INVALID_STATE, data  # not negotiated (the peer must enable receiving)
        if len(data) + 1 + size_uint_var(len(data)) > min(limit, packet_size - 40):
            return Status.INVALID_PARAMETER, data  # cannot fit one packet
        return None, data

    def state(self) -> tuple[bool, int]:
        """(send_enabled, max_send_length) as DATAGRAM_STATE_CHANGED tells them: whether the
        peer enabled receiving datagrams, and the longest payload :meth:`check` accepts."""
        limit, packet_size = aq.datagram_limits(self.conn.quic)
        if limit is None:
            return False, 0
        room = min(limit, packet_size - 40)
        length = room - 1 - size_uint_var(room)
        while length + 1 + size_uint_var(length) < room:
            length += 1
        while length > 0 and length + 1 + size_uint_var(length) > room:
            length -= 1
        return True, max(length, 0)

    def new_request(self, data: bytes, client_context: Any) -> DatagramRequest:
        self._ids += 1
        return DatagramRequest(self._ids, data, client_context)

    def enqueue(self, request: DatagramRequest) -> None:
        """Hand an accepted datagram to aioquic (under the connection's lock)."""
        if self._loss is None:
            self._wrap_recovery()
        self.queued.append(request)
        self.conn.quic.send_datagram_frame(request.data)

    def _write_frame(self, builder: Any, data: bytes, frame_type: QuicFrameType) -> bool:
        """aioquic's DATAGRAM frame writer, plus a delivery callback for this datagram."""
        request = self.queued[0]
        request.packet = aq.packet_being_built(builder)
        length = len(data)
        buf = builder.start_frame(frame_type, capacity=1 + size_uint_var(length) + length,
                                  handler=self._on_delivery, handler_args=(request,))
        buf.push_uint_var(length)
        buf.push_bytes(data)
        quic_logger = aq.quic_logger(self.conn.quic)
        if quic_logger is not None:  # as aioquic's own writer logs the frame (qlog)
            builder.quic_logger_frames.append(quic_logger.encode_datagram_frame(length=length))
        self.queued.popleft()
        self.in_flight[request.datagram_id] = request
        self.changes.append((request, _SENT))
        return True

    def _on_delivery(self, delivery: QuicDeliveryState, request: DatagramRequest) -> None:
        if request.done:
            return
        self.in_flight.pop(request.datagram_id, None)
        if delivery == QuicDeliveryState.ACKED:
            self.changes.append((request, DatagramSendState.ACKNOWLEDGED))
        else:
            # QuicLossDetectionRetransmitFrames: suspected; aioquic forgets the packet, so
            # keep its number to recognise a late ACK and to forget it as MsQuic does.
            self.suspects.setdefault(request.packet.packet_number, []).append(request)
            self.changes.append((request, _LOST_SUSPECT))

    def _ack_received(self, *, ack_rangeset: Any, ack_delay: float, now: float, space: Any) -> None:
        """aioquic's ACK processing, preceded by what MsQuic's does first for lost packets
        (QuicLossDetectionProcessAckBlocks): an ACK of a suspected packet is spurious,
        then packets lost long enough ago are forgotten."""
        if space.is_application_data:
            self._app_space = space
        if self.suspects and space.is_application_data:
            bounds = ack_rangeset.bounds()
            acked = []
            for number in self.suspects:  # in packet number order, as MsQuic walks them
                if number >= bounds.stop:
                    break
                if number >= bounds.start and number in ack_rangeset:
                    acked.append(number)
            for number in acked:
                for request in self.suspects.pop(number):
                    self.changes.append((request, DatagramSendState.ACKNOWLEDGED_SPURIOUS))
            self._forget(now, max(space.largest_acked_packet, bounds.stop - 1))
        self._on_ack_received(ack_rangeset=ack_rangeset, ack_delay=ack_delay, now=now, space=space)

    def _loss_detection_timeout(self, *, now: float) -> None:
        """aioquic's loss timer; MsQuic's (QuicLossDetectionProcessTimerOperation) first
        forgets packets lost long enough ago."""
        if self.suspects and self._app_space is not None:
            self._forget(now, self._app_space.largest_acked_packet)
        self._on_loss_detection_timeout(now=now)

    def _forget(self, now: float, largest_acked: int) -> None:
        """QuicLossDetectionDetectAndHandleLostPackets: a lost packet below the largest
        acknowledged one and sent more than two PTOs ago is forgotten, in order, and its
        datagrams are LOST_DISCARDED (QuicSentPacketMetadataReleaseFrames)."""
        two_pto = 2 * self._loss.get_probe_timeout()
        suspects = self.suspects
        while suspects:
            number = next(iter(suspects))
            requests = suspects[number]
            if not (number < largest_acked and now - requests[0].packet.sent_time > two_pto):
                break
            del suspects[number]
            for request in requests:
                self.changes.append((request, _LOST_DISCARDED))

    def deliver(self) -> None:
        """Deliver the state changes collected while aioquic was working."""
        while self.changes:
            changes, self.changes = self.changes, []
            for request, state in changes:
                self._state(request, state)

    def cancel_all(self) -> None:
        """The connection is gone: datagrams never written are CANCELED
        (QuicDatagramSendShutdown); those in flight or suspected lost are LOST_DISCARDED,
        as QuicLossDetectionUninitialize releases their packets."""
        self.deliver()
        with self.conn.lock:
            canceled = list(self.queued)
            discarded = [*self.in_flight.values(), *(r for rs in self.suspects.values() for r in rs)]
            self.queued.clear()
            self.in_flight.clear()
            self.suspects.clear()
            aq.drop_pending_datagrams(self.conn.quic)
        for request in canceled:
            self._state(request, DatagramSendState.CANCELED)
        for request in discarded:
            self._state(request, _LOST_DISCARDED)

    def _state(self, request: DatagramRequest, state: DatagramSendState) -> None:
        if request.done:
            return
        if state in FINAL_STATES:
            request.done = True
            request.packet = None
        self.conn.delivery.connection_event(ev.DatagramSendStateChanged(client_context=request.client_context, state=state,
                                                        datagram_id=request.datagram_id))

"""The aioquic internals the core relies on. If a new aioquic release moves any of them,
this fails first, with a message naming what changed (pin aioquic or adapt the core)."""

from __future__ import annotations

import inspect

import pytest
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.stream import QuicStream, QuicStreamReceiver, QuicStreamSender


def _need(obj, name: str, where: str) -> None:
    if not hasattr(obj, name):
        pytest.fail(f"aioquic changed: {where}.{name} is gone; quicsim's core reads it "
                    f"(see quicsim/core). Pin aioquic to a release that has it.")


def test_sender_ack_state():
    sender = QuicStreamSender(stream_id=0, writable=True)
    for name in ("_buffer_start", "_acked_fin", "_reset_error_code", "is_finished", "write", "reset"):
        _need(sender, name, "QuicStreamSender")
    params = list(inspect.signature(sender.on_data_delivery).parameters)
    assert params == ["delivery", "start", "stop", "fin"], f"on_data_delivery signature changed: {params}"
    assert list(inspect.signature(sender.on_reset_delivery).parameters) == ["delivery"]
    # Our own delivery wrappers are looked up per instance when frames are written.
    src = inspect.getsource(QuicConnection._write_stream_frame)
    assert "stream.sender.on_data_delivery" in src, "aioquic no longer reads sender.on_data_delivery per frame"
    src = inspect.getsource(QuicConnection._write_reset_stream_frame)
    assert "on_reset_delivery" in src


def test_stream_and_connection_fields():
    stream = QuicStream(stream_id=0)
    for name in ("is_blocked", "sender", "receiver"):
        _need(stream, name, "QuicStream")
    _need(stream.receiver, "stop", "QuicStreamReceiver")
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    for name in ("_streams", "_events", "_close_event", "_state", "_close_end", "_is_client",
                 "_local_max_streams_bidi", "_local_max_streams_uni",
                 "_remote_max_streams_bidi", "_remote_max_streams_uni"):
        _need(quic, name, "QuicConnection")
    assert hasattr(quic._local_max_streams_bidi, "value") and hasattr(quic._local_max_streams_bidi, "sent")
    _need(quic, "_loss", "QuicConnection")
    assert isinstance(quic._loss.congestion_window, int), "send buffering follows the congestion window"
    _need(quic._loss, "_cc", "QuicPacketRecovery")
    assert quic._loss.congestion_window == quic._loss._cc.congestion_window, "the window is the controller's"
    for state in ("DRAINING", "TERMINATED", "CLOSING"):
        _need(QuicConnectionState, state, "QuicConnectionState")
    # Closing as MsQuic does (aioquic_adapter.close_as_msquic): the draining period's end,
    # the smoothed RTT it is computed from, and a close written only while one is pending.
    for name in ("_close_begin", "_close_at", "_close_pending"):
        _need(quic, name, "QuicConnection")
    _need(quic._loss, "_rtt_smoothed", "QuicPacketRecovery")
    assert list(inspect.signature(quic._close_begin).parameters) == ["is_initiator", "now"]
    assert "if self._close_pending:" in inspect.getsource(QuicConnection.datagrams_to_send)
    # StreamStart(IMMEDIATE)'s empty opening frame and the peer's streams opened by frames
    # (aioquic_adapter.send_open_frame, watch_peer_stream_opens).
    sender = QuicStreamSender(stream_id=0, writable=True)
    for name in ("_pending", "_pending_eof", "get_frame", "buffer_is_empty"):
        _need(sender, name, "QuicStreamSender")
    _need(quic, "_get_or_create_stream", "QuicConnection")
    assert list(inspect.signature(quic._get_or_create_stream).parameters) == ["frame_type", "stream_id"]
    assert "self._get_or_create_stream(frame_type, stream_id)" in inspect.getsource(QuicConnection._handle_stream_frame)
    # A pending ACK rides with stream data (aioquic_adapter.piggyback_ack): its due time.
    _need(quic, "_spaces", "QuicConnection")
    src = inspect.getsource(QuicConnection._write_application)
    assert "space.ack_at <= now" in src, "aioquic no longer writes the ACK when space.ack_at is due"
    for event in ("StreamDataReceived", "StreamReset", "StopSendingReceived",
                  "HandshakeCompleted", "ConnectionTerminated"):
        _need(qe, event, "aioquic.quic.events")


def test_ack_advances_buffer_start_and_fin():
    """The meaning of the fields, checked on aioquic's own sender."""
    from aioquic.quic.packet_builder import QuicDeliveryState

    sender = QuicStreamSender(stream_id=0, writable=True)
    sender.write(b"a" * 10)
    sender.write(b"b" * 5, end_stream=True)
    sender.get_frame(100)
    sender.on_data_delivery(QuicDeliveryState.ACKED, 10, 15, True)
    assert sender._acked_fin and sender._buffer_start == 0  # FIN acked before the data
    sender.on_data_delivery(QuicDeliveryState.ACKED, 0, 10, False)
    assert sender._buffer_start == 15 and sender.is_finished


def test_datagram_writer_fields():
    """core/datagram.py replaces the DATAGRAM frame writer per connection and logs the frame
    to qlog itself, as aioquic's writer does."""
    from aioquic.quic.logger import QuicLoggerTrace
    from aioquic.quic.packet_builder import QuicPacketBuilder

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    for name in ("_write_datagram_frame", "_remote_max_datagram_frame_size", "_max_datagram_size",
                 "_datagrams_pending", "_quic_logger"):
        _need(quic, name, "QuicConnection")
    params = list(inspect.signature(QuicConnection._write_datagram_frame).parameters)
    assert params == ["self", "builder", "data", "frame_type"], f"_write_datagram_frame changed: {params}"
    src = inspect.getsource(QuicConnection._write_datagram_frame)
    assert "builder.quic_logger_frames.append" in src and "encode_datagram_frame(length=length)" in src, \
        "aioquic logs DATAGRAM frames differently now: update core/datagram.py's writer"
    assert "self._write_datagram_frame(" in inspect.getsource(QuicConnection._write_application), \
        "aioquic no longer looks the DATAGRAM writer up per call"
    assert {"handler", "handler_args"} <= set(inspect.signature(QuicPacketBuilder.start_frame).parameters)
    assert "quic_logger_frames" in inspect.getsource(QuicPacketBuilder.__init__)
    _need(QuicLoggerTrace, "encode_datagram_frame", "QuicLoggerTrace")


def test_datagram_loss_fields():
    """core/datagram.py keeps the packet a datagram was written in (the builder's current
    QuicSentPacket), wraps the recovery's ACK and loss-timer entry points per instance, and
    forgets lost packets after two PTOs, as MsQuic does."""
    from aioquic.quic.packet_builder import QuicPacketBuilder, QuicSentPacket
    from aioquic.quic.rangeset import RangeSet
    from aioquic.quic.recovery import QuicPacketRecovery, QuicPacketSpace

    assert "self._packet = QuicSentPacket(" in inspect.getsource(QuicPacketBuilder.start_packet)
    for name in ("packet_number", "sent_time", "delivery_handlers"):
        assert name in QuicSentPacket.__dataclass_fields__, f"QuicSentPacket.{name} is gone"
    space = QuicPacketSpace(is_application_data=True)
    for name in ("is_application_data", "largest_acked_packet", "sent_packets"):
        _need(space, name, "QuicPacketSpace")
    assert list(inspect.signature(QuicPacketRecovery.on_ack_received).parameters) == [
        "self", "ack_rangeset", "ack_delay", "now", "space"]
    assert list(inspect.signature(QuicPacketRecovery.on_loss_detection_timeout).parameters) == ["self", "now"]
    _need(QuicPacketRecovery, "get_probe_timeout", "QuicPacketRecovery")
    # Looked up on the instance at each call, so the per-instance wrappers are used.
    src = inspect.getsource(QuicConnection)
    assert "self._loss.on_ack_received(" in src and "self._loss.on_loss_detection_timeout(" in src
    # A lost packet leaves sent_packets, so a later ACK of it reaches no delivery handler.
    assert "del space.sent_packets[packet.packet_number]" in inspect.getsource(QuicPacketRecovery._on_packets_lost)
    ranges = RangeSet([range(3, 5), range(7, 9)])
    assert ranges.bounds() == range(3, 9) and 4 in ranges and 5 not in ranges


def test_max_stream_data_fields():
    """core/send_buffer.py wraps the MAX_STREAM_DATA entry of the connection's frame handler
    table (per instance) and reads each stream's limit and ACKed offset as MsQuic's
    SendWindow = MaxAllowedSendOffset - UnAckedOffset."""
    from aioquic.buffer import Buffer
    from aioquic.quic.packet import QuicFrameType

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    handlers = getattr(quic, "_QuicConnection__frame_handlers", None)
    assert isinstance(handlers, dict), "aioquic's frame handler table moved"
    handler, epochs = handlers[QuicFrameType.MAX_STREAM_DATA]
    assert handler == quic._handle_max_stream_data_frame
    assert list(inspect.signature(handler).parameters) == ["context", "frame_type", "buf"]
    src = inspect.getsource(QuicConnection._handle_max_stream_data_frame)
    assert src.index("stream_id = buf.pull_uint_var()") < src.index("max_stream_data = buf.pull_uint_var()")
    assert "stream.max_stream_data_remote = max_stream_data" in src
    assert "frame_handler(context, frame_type, buf)" in inspect.getsource(QuicConnection._payload_received)
    _need(QuicStream(stream_id=0), "max_stream_data_remote", "QuicStream")
    _need(Buffer(capacity=1), "tell", "Buffer")
    _need(Buffer(capacity=1), "seek", "Buffer")


#: every private aioquic name quicsim touches, all of them in quicsim/core/aioquic_adapter.py
#: (QuicConnection's, its streams' senders', its packet builder's), with the test above that
#: checks its meaning
PRIVATE_NAMES = {
    "_is_client", "_close_event", "_state", "_close_end", "_events",
    "_remote_max_streams_bidi", "_remote_max_streams_uni", "_local_max_streams_bidi",
    "_local_max_streams_uni", "_streams", "_loss",
    "_buffer_start", "_acked_fin", "_reset_error_code", "_stop_error_code",
    "_QuicConnection__frame_handlers",
    "_write_datagram_frame", "_remote_max_datagram_frame_size", "_max_datagram_size",
    "_quic_logger", "_packet", "_datagrams_pending",
    "_close_begin", "_close_at", "_close_pending", "_spaces",
    "_pending", "_pending_eof", "_get_or_create_stream",
    "_loss_at", "_pacing_at",
}


def _private_reads(path) -> set[str]:
    import re

    text = path.read_text()
    return set(re.findall(r"\b(?:quic|sender|receiver|builder|pending\[0\])\.(_[A-Za-z]\w*)", text))


def test_every_private_read_is_in_the_adapter_and_named_here():
    from pathlib import Path

    import quicsim

    root = Path(quicsim.__file__).parent
    adapter = root / "core" / "aioquic_adapter.py"
    used = _private_reads(adapter)
    assert used, "the adapter reads no private field? the pattern above is out of date"
    unnamed = used - PRIVATE_NAMES
    assert not unnamed, f"core/aioquic_adapter.py reads {sorted(unnamed)}: name them in PRIVATE_NAMES"
    for path in root.rglob("*.py"):
        if path != adapter:
            assert not _private_reads(path), f"{path.relative_to(root)} reads aioquic's private state: " \
                                             f"move it into core/aioquic_adapter.py"
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    sender = QuicStreamSender(stream_id=0, writable=True)
    receiver = QuicStreamReceiver(stream_id=0, readable=True)
    for name in PRIVATE_NAMES:
        assert any(hasattr(obj, name) for obj in (quic, sender, receiver)) or name == "_packet", \
            f"aioquic changed: {name} is gone; core/aioquic_adapter.py reads it. Pin aioquic."


def test_the_drivers_timer_is_aioquics_with_one_instant_at_most():
    """ConnectionDriver._handle_timer replaces aioquic's protocol timer (to handle a timer
    at most once per instant): it must still do what aioquic's does."""
    from aioquic.asyncio.protocol import QuicConnectionProtocol

    src = inspect.getsource(QuicConnectionProtocol._handle_timer)
    for line in ("now = max(self._timer_at, self._loop.time())", "self._timer = None", "self._timer_at = None",
                 "self._quic.handle_timer(now=now)", "self._process_events()", "self.transmit()"):
        assert line in src, f"aioquic's protocol timer changed ({line!r} is gone): see quicsim/transport/udp.py"

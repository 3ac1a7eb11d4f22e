"""Datagram send states as MsQuic reports them (``src/core/datagram.c``,
``loss_detection.c``), driven sans-I/O so loss, ACKs and timers are exact."""

from __future__ import annotations

from aioquic.quic.logger import QuicLogger

from quicsim import ConnectionEventType, Settings

from .core_pair import CorePair

ON = Settings(datagram_receive_enabled=True)


def _packet_sent_frames(logger: QuicLogger) -> list[dict]:
    return [frame for trace in logger.to_dict()["traces"] for event in trace["events"]
            if event["name"] == "transport:packet_sent" for frame in event["data"]["frames"]]


def test_datagram_frames_still_reach_aioquics_qlog():
    """The per-connection DATAGRAM frame writer keeps aioquic's own frame logging."""
    logger = QuicLogger()
    pair = CorePair(ON, ON, client_quic_logger=logger)
    pair.handshake()
    assert {"frame_type": "datagram", "length": 5} not in _packet_sent_frames(logger)
    pair.client.send_datagram(b"hello", client_context="d")
    assert pair.deliver(pair.client) == 1
    assert {"frame_type": "datagram", "length": 5} in _packet_sent_frames(logger)

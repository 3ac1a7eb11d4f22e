"""Datagram send states as MsQuic reports them (``src/core/datagram.c``,
``loss_detection.c``), driven sans-I/O so loss, ACKs and timers are exact."""

from __future__ import annotations

from types import SimpleNamespace

from aioquic.quic.logger import QuicLogger

from quicsim import (ConnectionEventType, ConnectionShutdownFlags, DatagramSendState, Ledger, Settings, Status,
                     events as ev)

from .conftest import Recorder
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


def _states(rec: Recorder) -> dict:
    out: dict = {}
    for e in rec.events:
        if e.type is ConnectionEventType.DATAGRAM_SEND_STATE_CHANGED:
            out.setdefault(e.client_context, []).append(e.state)
    return out


def _pair() -> tuple[CorePair, Recorder, Ledger]:
    ledger = Ledger()
    pair = CorePair(ON, ON, observers=(ledger,))
    pair.handshake()
    rec = Recorder()
    pair.client.set_handler(rec)
    return pair, rec, ledger


def _round_trip(pair: CorePair, context) -> tuple[float, float]:
    """One more datagram from the client, then the server's (delayed) ACK. Returns when
    the client processed that ACK and its PTO just before."""
    pair.client.send_datagram(b"x", client_context=context)
    pair.deliver(pair.client)
    pto = pair.client.quic._loss.get_probe_timeout()
    pair.deliver(pair.server, now=pair.now + 0.03)
    return pair.now, pto


def test_a_lost_datagram_is_suspect_and_discarded_about_two_ptos_after_it_was_sent():
    """QuicLossDetectionRetransmitFrames raises LOST_SUSPECT; LOST_DISCARDED comes only when
    QuicLossDetectionDetectAndHandleLostPackets forgets the packet: below the largest
    acknowledged packet and sent more than two PTOs ago."""
    pair, rec, ledger = _pair()
    pair.client.send_datagram(b"lost", client_context="L")
    assert pair.drop(pair.client) == 1
    sent_at = pair.now
    for i in range(4):  # enough later packets acknowledged to declare it lost
        _round_trip(pair, i)
        if len(_states(rec)["L"]) > 1:
            break
    assert _states(rec)["L"] == [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT]
    acks = []  # (when an ACK was processed, the PTO then, whether L was gone afterwards)
    for i in range(200):
        now, pto = _round_trip(pair, ("later", i))
        acks.append((now - sent_at, 2 * pto, _states(rec)["L"][-1] is DatagramSendState.LOST_DISCARDED))
        if acks[-1][2]:
            break
    assert acks[-1][2] and len(acks) > 2, acks  # discarded, and not at the first ACKs after
    age, two_pto, _ = acks[-1]
    assert age > two_pto, acks
    age, two_pto, _ = acks[-2]
    assert age <= two_pto, acks  # the ACK before came too early to forget the packet
    assert _states(rec)["L"] == [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT,
                                 DatagramSendState.LOST_DISCARDED]
    assert all(seq == [DatagramSendState.SENT, DatagramSendState.ACKNOWLEDGED]
               for ctx, seq in _states(rec).items() if ctx != "L")
    assert ledger.ok, ledger.summary()


def test_a_late_ack_of_a_suspected_datagram_is_acknowledged_spurious():
    """A packet declared lost that the peer acknowledges later: ACKNOWLEDGED_SPURIOUS, final
    (QuicLossDetectionProcessAckBlocks, QuicLossDetectionOnPacketAcknowledged)."""
    pair, rec, ledger = _pair()
    pair.client.send_datagram(b"late", client_context="S")
    held = pair.hold(pair.client)
    assert len(held) == 1
    for i in range(4):
        _round_trip(pair, i)
        if len(_states(rec)["S"]) > 1:
            break
    assert _states(rec)["S"] == [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT]
    pair.release(pair.server, held)  # it was only late
    pair.deliver(pair.server, now=pair.now + 0.03)
    assert _states(rec)["S"] == [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT,
                                 DatagramSendState.ACKNOWLEDGED_SPURIOUS]
    for i in range(30):  # well past two PTOs: no LOST_DISCARDED follows the final state
        _round_trip(pair, ("later", i))
    pair.client.shutdown(ConnectionShutdownFlags.SILENT)
    pair.client.process_operations()
    pair.settle(pair.client)
    assert _states(rec)["S"][-1] is DatagramSendState.ACKNOWLEDGED_SPURIOUS
    assert ledger.ok and ledger.report()["violations"] == [], ledger.summary()


def test_at_shutdown_unwritten_datagrams_are_canceled_and_written_ones_discarded():
    """QuicDatagramSendShutdown cancels what was never written; QuicLossDetectionUninitialize
    releases packets still in flight or suspected lost: LOST_DISCARDED."""
    pair, rec, ledger = _pair()
    pair.client.send_datagram(b"suspect", client_context="S")
    assert pair.drop(pair.client) == 1
    for i in range(4):
        _round_trip(pair, i)
        if len(_states(rec)["S"]) > 1:
            break
    pair.client.send_datagram(b"in flight", client_context="F")
    assert pair.drop(pair.client) == 1
    pair.client.send_datagram(b"queued", client_context="Q")
    pair.client.shutdown(ConnectionShutdownFlags.SILENT)
    pair.client.process_operations()
    pair.settle(pair.client)
    assert pair.client.shutdown_complete
    states = _states(rec)
    assert states["S"] == [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT,
                           DatagramSendState.LOST_DISCARDED]
    assert states["F"] == [DatagramSendState.SENT, DatagramSendState.LOST_DISCARDED]
    assert states["Q"] == [DatagramSendState.CANCELED]
    assert ledger.ok, ledger.summary()


def test_ledger_takes_acknowledged_spurious_as_final():
    """Known good: SENT, LOST_SUSPECT, ACKNOWLEDGED_SPURIOUS ends the datagram. Known bad: a
    state after it is a violation."""
    conn = SimpleNamespace(label="c")

    def run(states) -> Ledger:
        ledger = Ledger()
        ledger.api_call(conn, None, "send_datagram", Status.PENDING,
                        {"datagram_id": 1, "bytes": 1, "client_context": "d"})
        for state in states:
            ledger.connection_event(conn, ev.DatagramSendStateChanged(client_context="d", state=state,
                                                                      datagram_id=1))
        ledger.connection_event(conn, ev.ConnectionShutdownComplete(
            handshake_completed=True, peer_acknowledged_shutdown=False, app_close_in_progress=False))
        return ledger

    spurious = [DatagramSendState.SENT, DatagramSendState.LOST_SUSPECT, DatagramSendState.ACKNOWLEDGED_SPURIOUS]
    good = run(spurious)
    assert good.ok and good.datagram_leaks == [], good.summary()
    bad = run([*spurious, DatagramSendState.LOST_DISCARDED])
    assert not bad.ok and any("after its final state" in v for v in bad.violations)

"""Enum values equal MsQuic's numeric values (msquic.h, Linux build)."""

from quicsim import (
    ConnectionEventType,
    ConnectionShutdownFlags,
    ReceiveFlags,
    SendFlags,
    Status,
    StreamEventType,
    StreamOpenFlags,
    StreamShutdownFlags,
    StreamStartFlags,
)


def test_flag_values():
    assert [int(StreamOpenFlags[n]) for n in ("NONE", "UNIDIRECTIONAL", "ZERO_RTT", "DELAY_ID_FC_UPDATES")] == \
        [0, 1, 2, 4]
    assert [int(StreamStartFlags[n]) for n in ("NONE", "IMMEDIATE", "FAIL_BLOCKED", "SHUTDOWN_ON_FAIL",
                                               "INDICATE_PEER_ACCEPT", "PRIORITY_WORK")] == [0, 1, 2, 4, 8, 0x10]
    assert [int(SendFlags[n]) for n in ("NONE", "ALLOW_0_RTT", "START", "FIN", "DGRAM_PRIORITY", "DELAY_SEND",
                                        "CANCEL_ON_LOSS", "PRIORITY_WORK", "CANCEL_ON_BLOCKED")] == \
        [0, 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80]
    assert [int(StreamShutdownFlags[n]) for n in ("NONE", "GRACEFUL", "ABORT_SEND", "ABORT_RECEIVE", "ABORT",
                                                  "IMMEDIATE", "INLINE")] == [0, 1, 2, 4, 6, 8, 0x10]
    assert (int(ConnectionShutdownFlags.NONE), int(ConnectionShutdownFlags.SILENT)) == (0, 1)
    assert (int(ReceiveFlags.NONE), int(ReceiveFlags.ZERO_RTT), int(ReceiveFlags.FIN)) == (0, 1, 2)


def test_status_values_and_failure_rule():
    expected = {"SUCCESS": 0, "PENDING": -2, "CONTINUE": -1, "OUT_OF_MEMORY": 12, "INVALID_PARAMETER": 22,
                "INVALID_STATE": 1, "ABORTED": 125, "CONNECTION_IDLE": 62, "CONNECTION_TIMEOUT": 110,
                "STREAM_LIMIT_REACHED": 86, "USER_CANCELED": 130}
    assert {n: int(Status[n]) for n in expected} == expected
    assert not Status.PENDING.failed and not Status.CONTINUE.failed and Status.ABORTED.failed
    assert Status.SUCCESS.succeeded and Status.PENDING.succeeded and not Status.INVALID_STATE.succeeded


def test_event_type_values():
    assert [e.name for e in StreamEventType] == [
        "START_COMPLETE", "RECEIVE", "SEND_COMPLETE", "PEER_SEND_SHUTDOWN", "PEER_SEND_ABORTED",
        "PEER_RECEIVE_ABORTED", "SEND_SHUTDOWN_COMPLETE", "SHUTDOWN_COMPLETE", "IDEAL_SEND_BUFFER_SIZE",
        "PEER_ACCEPTED", "CANCEL_ON_LOSS"]
    assert [int(e) for e in StreamEventType] == list(range(11))
    assert int(ConnectionEventType.CONNECTED) == 0 and int(ConnectionEventType.PEER_STREAM_STARTED) == 6
    assert int(ConnectionEventType.SHUTDOWN_COMPLETE) == 3

"""IDEAL_SEND_BUFFER_SIZE as MsQuic computes it (``src/core/send_buffer.c``): a 1.5x
ladder, a connection ideal that only grows and is kept with buffering off too, and per
stream min(connection ideal, the step above the stream's send window). Driven sans-I/O
so the congestion window and the peer's MAX_STREAM_DATA move in virtual time."""

from __future__ import annotations

from quicsim import Ledger, Settings, StreamEventType
from quicsim.core.send_buffer import MAX_IDEAL, MIN_IDEAL, ideal_for

from .core_pair import CorePair

SMALL_WINDOW = Settings(stream_recv_window_default=64 * 1024)  # the server's per-stream limit


def _ladder() -> list[int]:
    steps = [131072]
    while steps[-1] < 134217728:
        steps.append(min(steps[-1] + steps[-1] // 2, 134217728))
    return steps


LADDER = _ladder()


def test_the_ladder_grows_one_and_a_half_times_up_to_128_mib():
    """QuicGetNextIdealBytes: the step above the value, a value on a step rounding up."""
    assert LADDER[:4] == [131072, 196608, 294912, 442368] and LADDER[-1] == MAX_IDEAL == 134217728
    assert MIN_IDEAL == 131072
    assert ideal_for(0) == ideal_for(131071) == 131072
    for low, high in zip(LADDER, LADDER[1:]):
        assert ideal_for(low) == high and ideal_for(high - 1) == high
    assert ideal_for(MAX_IDEAL) == ideal_for(10**12) == MAX_IDEAL


class _Sizes:
    """A stream handler keeping each IDEAL_SEND_BUFFER_SIZE with the connection's ideal then."""

    def __init__(self, pair: CorePair) -> None:
        self.pair = pair
        self.seen: list[tuple[int, int]] = []

    def __call__(self, stream, event) -> None:
        if event.type is StreamEventType.IDEAL_SEND_BUFFER_SIZE:
            self.seen.append((event.byte_count, self.pair.client.send_buffer.ideal_bytes))

    def values(self) -> list[int]:
        return [value for value, _ in self.seen]


def _two_streams(client_settings: Settings, ledger: Ledger):
    """A client sending 3 MiB on stream A while stream B is started and idle; the server
    allows 64 KiB per stream at first (aioquic doubles it as data arrives)."""
    pair = CorePair(client_settings, SMALL_WINDOW, observers=(ledger,))
    pair.handshake()
    sizes_a, sizes_b = _Sizes(pair), _Sizes(pair)
    a = pair.client.open_stream(handler=sizes_a)
    b = pair.client.open_stream(handler=sizes_b)
    a.start()
    b.start()
    for i in range(192):
        a.send(bytes(16384), client_context=i)
    return pair, sizes_a, sizes_b


def _flow(pair: CorePair, until) -> None:
    for _ in range(400):
        if until():
            return
        pair.client.process_operations()
        pair.deliver(pair.client)
        pair.deliver(pair.server, now=pair.now + 0.01)
    raise AssertionError("the congestion window did not grow")


def test_each_stream_gets_min_of_the_connection_ideal_and_its_window_with_buffering_off():
    """QuicSendBufferConnectionAdjust runs with buffering off too; QuicSendBufferStreamAdjust
    gives each stream min(IdealBytes, QuicGetNextIdealBytes(SendWindow)), announced when it
    changes from LastIdealSendBuffer (0 at first), also on the peer's MAX_STREAM_DATA."""
    ledger = Ledger()
    pair, sizes_a, sizes_b = _two_streams(Settings(send_buffering=False), ledger)
    _flow(pair, lambda: pair.client.send_buffer.ideal_bytes >= LADDER[3])
    # A's first size came from a MAX_STREAM_DATA, before the connection's ideal moved:
    # its window was below 128 KiB, so the step above it is 128 KiB, announced as new.
    assert sizes_a.seen[0] == (131072, 131072), sizes_a.seen
    # Then A follows the connection's ideal (its window grows faster), step by step.
    assert [v for v, ideal in sizes_a.seen[1:]] == [ideal for v, ideal in sizes_a.seen[1:]]
    assert sizes_a.values()[1:4] == LADDER[1:4], sizes_a.seen
    # B never sent a byte: its window is the server's initial 64 KiB, whose step is 128 KiB;
    # announced once, when the connection's ideal first grew, and never again.
    assert sizes_b.seen == [(131072, 196608)], sizes_b.seen
    assert pair.client.send_buffer.ideal_bytes in LADDER
    assert ledger.ok, ledger.summary()


def test_the_connection_ideal_never_shrinks():
    """'IdealBytes only grows and never shrinks': a loss that shrinks the congestion window
    changes neither the ideal nor what the streams were told."""
    ledger = Ledger()
    pair, sizes_a, sizes_b = _two_streams(Settings(send_buffering=True), ledger)
    _flow(pair, lambda: pair.client.send_buffer.ideal_bytes >= LADDER[2])
    ideal = pair.client.send_buffer.ideal_bytes
    told_a, told_b = list(sizes_a.seen), list(sizes_b.seen)
    loss = pair.client.quic._loss
    window_before = loss.congestion_window
    for _ in range(3):
        pair.client.process_operations()
        pair.drop(pair.client)  # lost flights: the sender backs off
    for _ in range(20):
        pair.client.process_operations()
        pair.deliver(pair.client)
        pair.deliver(pair.server, now=pair.now + 0.01)
        pair.fire_timer(pair.client)
    assert loss.congestion_window < window_before
    assert ideal_for(loss.congestion_window) < ideal, "the loss must make a smaller ideal possible"
    assert pair.client.send_buffer.ideal_bytes == ideal
    assert sizes_a.seen == told_a and sizes_b.seen == told_b
    assert ledger.ok, ledger.summary()

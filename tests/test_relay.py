"""The lossy link: each impairment knob's effect on the datagrams the relay really
forwards over loopback UDP, and repeatable decisions for the same seed."""

from __future__ import annotations

import asyncio
import itertools
import struct

import pytest

from quicsim.network import Network, NetworkError, NetworkProfile
from quicsim.transport.relay import Relay
from quicsim.transport.udp import enlarge_buffers

pytestmark = pytest.mark.asyncio


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[int, float]] = []
        self.loop = asyncio.get_running_loop()

    def datagram_received(self, data, addr):
        self.got.append((struct.unpack("!I", data[1:5])[0], self.loop.time()))


def _datagram(i: int, size: int = 1200) -> bytes:
    return bytes([0xC0]) + struct.pack("!I", i) + bytes(size - 5)


async def _until(predicate, what: str, timeout: float = 20.0) -> None:
    """Wait for a condition the relay and the sink make true (bounded; never a guessed pause)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


async def _run(spec: dict, n: int = 400, seed: int = 7, gap: float = 0.0, size: int = 1200,
               clock=None) -> tuple[list[int], list[float], Network]:
    """Send ``n`` datagrams through a relay with ``spec``; return once every one the relay
    decided to forward has arrived. ``clock`` (default: the loop's) drives the impairment
    model, so time windows can follow the datagram count instead of a busy machine's clock."""
    loop = asyncio.get_running_loop()
    server_t, server = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    enlarge_buffers(server_t)
    network = Network(spec, seed, clock or loop.time)
    relay = await Relay(("127.0.0.1", server_t.get_extra_info("sockname")[1]), network).start()
    client_t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    stats = network.stats["to_server"]
    try:
        sent_at = {}
        for i in range(1, n + 1):
            sent_at[i] = loop.time()
            client_t.sendto(_datagram(i, size), ("127.0.0.1", relay.port))
            if gap:
                await asyncio.sleep(gap)  # pacing the sender, not waiting for a result
            elif i % 20 == 0:
                await asyncio.sleep(0)  # let the relay read its socket
        await _until(lambda: stats["received"] == n and len(server.got) >= stats["forwarded"],
                     f"{n} datagrams decided and every forwarded one delivered")
        order = [i for i, _ in server.got]
        delays = [t - sent_at[i] for i, t in server.got]
        return order, delays, network
    finally:
        relay.close()
        client_t.close()
        server_t.close()


async def test_clean_link_forwards_everything_in_order():
    order, _, net = await _run({})
    assert order == list(range(1, 401))
    assert net.stats["to_server"]["forwarded"] == 400


async def test_loss_fraction():
    order, _, net = await _run({"loss": 0.25}, n=1000)
    assert 200 <= 1000 - len(order) <= 300
    assert net.stats["to_server"]["loss"] == 1000 - len(order)


async def test_burst_limits_consecutive_drops():
    order, _, _ = await _run({"loss": 0.9, "burst": 2}, n=300)
    received = set(order)
    run = longest = 0
    for i in range(1, 301):
        run = run + 1 if i not in received else 0
        longest = max(longest, run)
    assert longest == 2


async def test_drop_list():
    order, _, _ = await _run({"drop": [1, 3, 10]}, n=20)
    assert order == [i for i in range(1, 21) if i not in (1, 3, 10)]


async def test_delay_and_jitter():
    _, delays, _ = await _run({"delay_ms": 40}, n=50)
    assert min(delays) >= 0.039  # a busy machine only adds to it
    order, delays, net = await _run({"delay_ms": 30, "jitter_ms": 20}, n=200, gap=0.0005)
    assert min(delays) >= 0.009
    assert order != sorted(order), "jitter reorders datagrams"


async def test_jitter_decisions_stay_in_their_window():
    net = Network({"delay_ms": 30, "jitter_ms": 20}, 7, lambda: 0.0)
    decisions = [net.decide("to_server", 1200) for _ in range(500)]
    delays = [d for decision in decisions for d in decision.delays]
    assert len(delays) == 500 and 0.01 <= min(delays) and max(delays) <= 0.05
    assert max(delays) - min(delays) > 0.03, "the jitter spreads the delays"


async def test_reorder():
    order, _, net = await _run({"reorder": 0.2, "reorder_delay_ms": 20}, n=300, gap=0.0005)
    assert sorted(order) == list(range(1, 301))
    late = net.stats["to_server"]["reorder"]
    assert 30 <= late <= 90
    overtaken = sum(1 for a, b in zip(order, order[1:]) if a > b)
    assert overtaken > 10


async def test_duplicate():
    order, _, net = await _run({"duplicate": 0.3}, n=500)
    extra = len(order) - 500
    assert 100 <= extra <= 200 and extra == net.stats["to_server"]["duplicate"]
    assert set(order) == set(range(1, 501))


async def test_rate_limit_and_queue():
    # 1200-byte datagrams at 960 kbit/s take 10 ms each; a 5-packet queue overflows.
    order, delays, net = await _run({"rate_kbps": 960, "queue": 5}, n=40)
    assert net.stats["to_server"]["queue-full"] > 20
    assert len(order) == 40 - net.stats["to_server"]["queue-full"]
    assert max(delays) >= 0.04  # queued behind the others


async def test_blackhole_window():
    # the model's clock advances 2 ms per datagram sent, whatever the machine's load
    sent = itertools.count()
    order, _, net = await _run({"blackhole": {"on": 0.05, "off": 0.15}}, n=100,
                               clock=lambda: next(sent) * 0.002)
    assert net.stats["to_server"]["blackhole"] > 20
    missing = sorted(set(range(1, 101)) - set(order))
    assert missing == list(range(missing[0], missing[-1] + 1)), "one contiguous hole"


async def test_same_seed_same_decisions_and_runtime_update():
    a, _, net_a = await _run({"loss": 0.3, "duplicate": 0.1}, n=300, seed=11)
    b, _, _ = await _run({"loss": 0.3, "duplicate": 0.1}, n=300, seed=11)
    c, _, _ = await _run({"loss": 0.3, "duplicate": 0.1}, n=300, seed=12)
    assert sorted(a) == sorted(b)
    assert sorted(a) != sorted(c)
    net_a.update(loss=0.0)
    assert net_a.profile.to_server.loss == 0.0 and net_a.changes[-1]["change"] == "update"


async def test_garbage_and_strangers_are_ignored():
    loop = asyncio.get_running_loop()
    server_t, server = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    relay = await Relay(("127.0.0.1", server_t.get_extra_info("sockname")[1]),
                        Network({}, 1, loop.time)).start()
    stranger, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    client, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        stranger.sendto(b"\x00garbage", ("127.0.0.1", relay.port))  # not an Initial: not the client
        client.sendto(_datagram(1), ("127.0.0.1", relay.port))
        stranger.sendto(_datagram(2), ("127.0.0.1", relay.port))  # the client is already known
        client.sendto(b"\xff" * 3 + bytes(10), ("127.0.0.1", relay.port))  # garbage from the client: forwarded
        await _until(lambda: len(server.got) >= 2 and relay.ignored >= 2, "the relay to sort out all four")
        assert [i for i, _ in server.got][:1] == [1] and len(server.got) == 2
        assert relay.ignored == 2
    finally:
        relay.close()
        stranger.close()
        client.close()
        server_t.close()


@pytest.mark.filterwarnings("ignore")
def test_bad_profiles_name_the_key():
    with pytest.raises(NetworkError, match=r"network.loss must be a fraction in \[0, 1\], got 1.5"):
        NetworkProfile.from_dict({"loss": 1.5})
    with pytest.raises(NetworkError, match="unknown network key 'los'"):
        NetworkProfile.from_dict({"los": 0.1})
    with pytest.raises(NetworkError, match="network.to_client.delay_ms"):
        NetworkProfile.from_dict({"to_client": {"delay_ms": -1}})
    profile = NetworkProfile.from_dict({"loss": 0.1, "to_client": {"loss": 0.2}})
    assert (profile.to_server.loss, profile.to_client.loss) == (0.1, 0.2)

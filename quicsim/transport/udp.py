"""Loopback UDP transport: aioquic's asyncio protocol, trimmed to move bytes and timers
for one quicsim connection, plus the client and server endpoints.

The driver only feeds the core: datagrams and timers in (then ``poll`` for ACKs),
queued operations applied when the core asks (``wakeup``), datagrams out.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Callable

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from ..core import aioquic_adapter as aq
from ..core.protocols import TransportCore
from .seeded import serve_streams_by_id
from .window import has_window, let_network_in

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
SOCKET_BUFFER = 4 << 20
#: a timer handled twice at one instant is handled this much later the second time
TIMER_NUDGE = 1e-6
#: firings in a row of one connection's timer after which aioquic's deadline was still at
#: or before the instant handled: its clock has stopped, the run is a hang
STUCK_TIMER_FIRINGS = 1000
#: once that was reported, how far on the timer is moved each time (the cleanup must end)
STUCK_TIMER_BACKOFF = 0.1


def enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    """Bursts on loopback must not overflow socket buffers: the only loss on the path
    should be the seeded, decided kind."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            pass


class ConnectionDriver(QuicConnectionProtocol):
    """Drives one connection core over an asyncio datagram transport. What it needs of
    aioquic's protocol beyond its public methods goes through core/aioquic_adapter.py."""

    def __init__(self, quic: QuicConnection, stream_handler: Any = None) -> None:
        super().__init__(quic)
        self.quic = quic
        self.core: TransportCore | None = None
        self.loop: asyncio.AbstractEventLoop = aq.protocol_loop(self)
        #: the datagram transport, once connected
        self.transport: Any = None
        #: aioquic's pending events to the core (the protocol's own loop over them)
        self.process_events = aq.protocol_event_processor(self)
        aq.replace_timer_handler(self, self.handle_timer)
        serve_streams_by_id(quic)  # a seeded run's streams are served in a repeatable order
        self._worker_scheduled = False
        self.owns_transport = False
        self._last_timer_now = -1.0
        self._timer_stalls = 0  # firings in a row that left aioquic's deadline in the past

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = transport

    def attach(self, core: TransportCore) -> None:
        self.core = core
        # aioquic's event loop calls this per event: straight to the core, one call less.
        aq.route_quic_events(self, core.handle_quic_event)
        # the loop's thread is the worker
        core.attach_worker(self._wakeup, threading.get_ident(), self._call_on_worker)

    # -- the worker: apply queued operations soon, on the loop, in one batch
    def _wakeup(self) -> None:
        if self._worker_scheduled:
            return
        self._worker_scheduled = True
        assert self.core is not None  # only an attached core asks for the worker
        try:
            if threading.get_ident() == self.core.worker_thread:
                self.loop.call_soon(self.run_worker)
            else:
                # An API call from another thread: hand over, never wait (MsQuic's queued calls).
                self.loop.call_soon_threadsafe(self.run_worker)
        except RuntimeError:  # the loop is closed: nothing will run the worker any more
            self._worker_scheduled = False
            raise

    def _call_on_worker(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop and block this (other) thread until it ran."""
        if not self.loop.is_running():
            fn()  # no loop to hand it to (it stopped): nothing else touches the core now
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                fn()
                self.transmit()
            except BaseException as exc:  # re-raised in the calling thread
                failure.append(exc)
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait()
        if failure:
            raise failure[0]

    def run_worker(self) -> None:
        """One worker pass: apply queued operations, deliver events, send."""
        self._worker_scheduled = False
        core = self.core
        assert core is not None  # scheduled by the attached core's wakeup
        core.process_operations()
        self.process_events()
        if not core.flush_delayed:  # DELAY_SEND: the next flush, for any reason, sends it
            self.transmit()

    @property
    def has_network_window(self) -> bool:
        """Whether a preemption point can let the network in here (a virtual clock; see
        :mod:`quicsim.transport.window`). Over UDP it cannot."""
        return has_window(self.loop)

    def let_network_in(self, seconds: float) -> dict[str, int]:
        return let_network_in(self.loop, seconds)

    def run_events(self) -> None:
        """Deliver aioquic's pending events now (used by a blocking close)."""
        self.process_events()

    # -- aioquic hooks
    def handle_timer(self) -> None:
        """aioquic's timer, never twice at one instant: its loss detection, called at a
        packet's loss deadline, can find the packet not yet lost by float rounding
        (sent + delay <= now, yet sent > now - delay) and re-arm the same deadline, which
        on a virtual clock that does not move while callbacks run is a livelock."""
        timer_at = aq.take_timer(self)
        instant = self.loop.time()
        now = max(timer_at or 0.0, instant)
        if now <= self._last_timer_now:
            now = self._last_timer_now + TIMER_NUDGE
        self._last_timer_now = now
        self.quic.handle_timer(now=now)
        self.process_events()
        self.transmit()
        at = aq.timer_due(self)
        if at is None or at > instant:
            self._timer_stalls = 0
        else:
            self._timer_stalled(instant, at)

    def _timer_stalled(self, instant: float, at: float) -> None:
        """aioquic re-armed its timer at or before the instant just handled. Once, it runs
        again at once (a later ``now``, above). Twice in a row, it waits 1 us, so the clock
        moves: aioquic sends a due ACK past pacing only once its deadline is strictly past
        (``ack_at < now``), so an ACK due exactly now that the pacer holds back re-arms the
        same instant forever on a clock that does not move. Far more often in a row, the
        clock has stopped for this timer: the loop is told (a hang that names the timer)."""
        self._timer_stalls += 1
        if self._timer_stalls == 1 or not aq.timer_armed(self):
            return
        step = TIMER_NUDGE
        if self._timer_stalls >= STUCK_TIMER_FIRINGS:
            step = STUCK_TIMER_BACKOFF
            stopped = getattr(self.loop, "clock_stopped", None)  # the virtual-time loop's
            if self._timer_stalls == STUCK_TIMER_FIRINGS and stopped is not None:
                side = self.core.label if self.core is not None else "connection"
                stopped(f"the {side}'s {aq.timer_name(self.quic, at)} (aioquic) fired "
                        f"{STUCK_TIMER_FIRINGS} times in a row, each time re-armed at or before the instant it fired")
        aq.rearm_timer(self, instant + step)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        core = self.core
        if core is None:
            super().datagram_received(data, addr)
            return
        core.receive_datagram(data, addr, self.loop.time())  # type: ignore[arg-type]  # bytes (no cast: per datagram)
        self.process_events()
        self.transmit()

    def transmit(self) -> None:
        core = self.core
        assert core is not None  # attached when made, before anything is sent
        core.poll()  # ACKs were processed by receive_datagram/handle_timer
        transport = self.transport
        if transport is None or transport.is_closing():
            aq.forget_transmit(self)
            return
        super().transmit()
        datagrams = core.datagrams
        if datagrams.changes:
            datagrams.deliver()  # SENT states seen while the packets were built

    def release(self) -> None:
        """Stop timers and, for a client, close the socket."""
        aq.stop_protocol(self)
        if self.owns_transport and self.transport is not None:
            self.transport.close()


def check_loopback(host: str) -> None:
    """quicsim only ever talks to this machine."""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(f"quicsim only uses loopback addresses, not {host!r}")


async def open_client(
    host: str, port: int, configuration: QuicConfiguration, attach: Callable[[ConnectionDriver], None]
) -> ConnectionDriver:
    """A client socket on the loopback interface, connected to (host, port)."""
    check_loopback(host)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=2)  # SOCK_DGRAM
    addr = infos[0][4]
    local = ("::1", 0) if ":" in str(addr[0]) else ("127.0.0.1", 0)
    quic = QuicConnection(configuration=configuration)
    transport, driver = await loop.create_datagram_endpoint(lambda: ConnectionDriver(quic), local_addr=local)
    assert isinstance(driver, ConnectionDriver)
    enlarge_buffers(transport)
    driver.owns_transport = True
    attach(driver)
    driver.connect(addr[:2])
    return driver


async def open_server(
    host: str, port: int, configuration: QuicConfiguration, attach: Callable[[ConnectionDriver], None]
) -> QuicServer:
    """A listening socket; each new connection gets a driver passed to ``attach``."""
    check_loopback(host)

    def create_protocol(quic: QuicConnection, stream_handler: Any = None) -> ConnectionDriver:
        driver = ConnectionDriver(quic)
        attach(driver)
        return driver

    server = await serve(host, port, configuration=configuration, create_protocol=create_protocol)
    transport = aq.server_transport(server)
    if transport is not None:
        enlarge_buffers(transport)
    return server

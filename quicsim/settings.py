"""Connection settings (MsQuic's QUIC_SETTINGS names in snake_case); faults by name from :mod:`quicsim.faults`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from .faults import FAULTS, check_faults

__all__ = ["FAULTS", "Settings", "check_faults"]

#: the longest network window a preemption point may draw (a window is time the
#: application's thread was not scheduled; seconds of it are a stall, not a race)
MAX_WINDOW_MS = 1000.0


@dataclass(frozen=True)
class Settings:
    """Per-connection settings; names follow MsQuic's QUIC_SETTINGS where one applies."""

    #: IdleTimeoutMs: the connection closes silently after this long without traffic.
    idle_timeout_ms: int = 30_000
    #: HandshakeIdleTimeoutMs: give up connecting after this long.
    handshake_idle_timeout_ms: int = 10_000
    #: SendBufferingEnabled. Off (quicsim's default): a send completes on acknowledgement.
    send_buffering: bool = False
    #: PeerBidiStreamCount / PeerUnidiStreamCount: streams the peer may open.
    peer_bidi_stream_count: int = 100
    peer_unidi_stream_count: int = 100
    #: StreamRecvWindowDefault: initial per-stream receive window (bytes).
    stream_recv_window_default: int = 1 << 20
    #: ConnFlowControlWindow: connection-wide receive window (bytes).
    conn_flow_control_window: int = 16 << 20
    #: DatagramReceiveEnabled: accept unreliable datagrams from the peer (RFC 9221).
    datagram_receive_enabled: bool = False
    #: InitialRttMs.
    initial_rtt_ms: int = 100
    #: quicsim's own: names from :data:`FAULTS` to switch on.
    faults: frozenset[str] = field(default_factory=frozenset)
    #: quicsim's own: the chance (0..1) that the worker runs right after an API call, as
    #: MsQuic's worker thread may between two of the application's statements. Drawn
    #: from the run's seed; 0 (the default): the worker runs only when the loop does.
    preempt: float = 0.0
    #: quicsim's own: at a preemption point, the network may move too: virtual time moves
    #: forward by a window drawn up to this many ms, and the datagrams, handlers and timers
    #: due in it run inside the call (the in-memory link only; see
    #: :mod:`quicsim.transport.window`). 0: a preemption point applies queued calls only.
    preempt_window_ms: float = 0.0

    if TYPE_CHECKING:  # the generated __init__, as type checkers should see it: faults as any iterable of names
        def __init__(self, idle_timeout_ms: int = 30_000, handshake_idle_timeout_ms: int = 10_000,
                     send_buffering: bool = False, peer_bidi_stream_count: int = 100,
                     peer_unidi_stream_count: int = 100, stream_recv_window_default: int = 1 << 20,
                     conn_flow_control_window: int = 16 << 20, datagram_receive_enabled: bool = False,
                     initial_rtt_ms: int = 100, faults: Iterable[str] = frozenset(), preempt: float = 0.0,
                     preempt_window_ms: float = 0.0) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", check_faults(self.faults))
        for name in (
            "idle_timeout_ms",
            "handshake_idle_timeout_ms",
            "peer_bidi_stream_count",
            "peer_unidi_stream_count",
            "stream_recv_window_default",
            "conn_flow_control_window",
            "initial_rtt_ms",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Settings.{name} must be a non-negative int, got {value!r}")
        preempt = self.preempt
        if isinstance(preempt, bool) or not isinstance(preempt, (int, float)) or not 0 <= preempt <= 1:
            raise ValueError(f"Settings.preempt must be a number from 0 to 1, got {preempt!r}")
        window = self.preempt_window_ms
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 <= window <= MAX_WINDOW_MS:
            raise ValueError(f"Settings.preempt_window_ms must be a number from 0 to {MAX_WINDOW_MS}, got {window!r}")

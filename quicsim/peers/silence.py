"""Telling a foreign peer's silence from a quicsim stall: the relay's decisions show when
the peer last sent a datagram, quicsim's side shows which of the peer's stream directions
never finished. A run against a peer that ends by timeout while quicsim has nothing left
to send and the peer went quiet (or left a stream unfinished) is the peer's doing."""

from __future__ import annotations

from typing import Any, Callable

#: a peer that sent nothing for at least this long before a timeout counts as silent
SILENT_SECONDS = 2.0


class PeerSilence:
    """Watches the relay for the time of each side's last datagram: the peer's direction
    (``to_client`` for a foreign server, ``to_server`` for a foreign client) and quicsim's."""

    def __init__(self, name: str, direction: str, clock: Callable[[], float]) -> None:
        self.name, self.direction, self.clock = name, direction, clock
        self.started = clock()
        self.last: float | None = None  # when the peer's last datagram reached the relay
        self.last_ours: float | None = None  # ... and quicsim's last one the link forwarded
        self.datagrams = 0

    def on_network(self, kind: str, data: dict[str, Any]) -> None:
        """A :class:`quicsim.network.Network` listener."""
        if kind != "decision":
            return
        if data.get("direction") == self.direction:
            self.datagrams += 1
            self.last = self.clock()
        elif data.get("delays"):  # (one the link dropped never reached the peer)
            self.last_ours = self.clock()

    def quiet_for(self) -> float:
        """Seconds since the peer's last datagram (since the watch began if it sent none)."""
        return self.clock() - (self.last if self.last is not None else self.started)

    def judge(self, conn: Any, quicsim_pending: int,
              ignore: Callable[[int], bool] | None = None) -> dict[str, Any] | None:
        """After a timeout: the peer's part in it, or None when it is not the peer's.
        ``conn`` is quicsim's connection to the peer; ``quicsim_pending`` how many of its
        accepted sends still wait for their SEND_COMPLETE; ``ignore(stream_id)``: streams
        that stay open by design (a peer's HTTP/3 plumbing). The peer's doing: it went quiet
        while quicsim had nothing left to send or kept sending to it; or it left a stream
        of its own unfinished while quicsim had nothing left to send. A quiet peer while
        quicsim held pending sends and sent nothing either is a quicsim stall (None)."""
        quiet = self.quiet_for()
        unfinished = [i for i in (unfinished_peer_streams(conn) if conn is not None else [])
                      if ignore is None or not ignore(i)]
        we_kept_sending = self.last_ours is not None and self.last is not None and self.last_ours > self.last
        silent = quiet >= SILENT_SECONDS and (quicsim_pending == 0 or we_kept_sending)
        if not silent and not (unfinished and quicsim_pending == 0):
            return None
        parts = [f"peer {self.name} sent nothing for the last {quiet:.1f} s" if silent else f"peer {self.name}"]
        if unfinished:
            ids = ", ".join(str(i) for i in unfinished)
            parts.append(f"its stream{'s' if len(unfinished) > 1 else ''} {ids} never finished "
                         "(no FIN, no RESET_STREAM)")
        if quicsim_pending == 0:
            parts.append("quicsim had no send pending")
        return {"peer": self.name, "silent_seconds": round(quiet, 3), "unfinished_streams": unfinished,
                "peer_datagrams": self.datagrams, "quicsim_pending_sends": quicsim_pending,
                "text": "; ".join(parts)}


def unfinished_peer_streams(conn: Any) -> list[int]:
    """The ids of ``conn``'s streams whose receive direction (the peer's sending one) is
    neither finished nor reset: MsQuic's stream waits on the peer for those."""
    out = []
    for stream in list(conn.core.streams.values()):
        if stream.id is not None and stream.state.started and not stream.state.remote_closed:
            out.append(stream.id)
    return sorted(out)

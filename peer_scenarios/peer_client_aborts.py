"""A foreign client aborts the streams of quicsim's server, for real.

The peer's client (picoquic; ``--peer-client quiche`` for quiche) opens four streams on
one connection to quicsim's server: it reads the answer to its FIN on the first, sends
STOP_SENDING on the second, RESET_STREAM on the third and closes the connection on the
fourth, each at the first bytes of the server's answer. The server answers every chunk
with 400 copies and, while the client's direction is open, one more chunk per
acknowledged answer, so a send is in flight when each abort lands; it answers the fourth
stream only once the first three are over on its side, so the close ends the run. MsQuic's
rules meet another stack's client: on echo every answer and the FIN are acknowledged;
after STOP_SENDING the send in flight completes canceled (PEER_RECEIVE_ABORTED); after
RESET_STREAM the server aborts its own direction (PEER_SEND_ABORTED, as MsQuic's samples
do) and its send completes canceled; after the CONNECTION_CLOSE every pending send
completes canceled. Each accepted send completes exactly once.
"""

from collections import Counter
from typing import Any

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, SendFlags,
                     Status, Stream, StreamEventType, StreamShutdownFlags, scenario)

STOP_SENDING_CODE, RESET_CODE, CLOSE_CODE = 0x52, 0x53, 0x54
ANSWER_FACTOR = 400  # copies of each chunk read: far more than one congestion window
MORE_CHUNK = 1000
MAX_MORE = 2000  # chunks sent after the first answer while the client's direction is open
HELD_STREAM = 12  # the fourth client stream (close-connection): answered last


class Answers:
    """One connection's server side: what it sent, what completed and how, what the peer did."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.completions: Counter[str] = Counter()
        self.canceled: set[str] = set()
        self.seen: list[tuple[str, int]] = []
        self.peer_finished: set[int] = set()
        self.more: Counter[int] = Counter()
        self.send_done: set[int] = set()
        self.held: list[tuple[Stream, bytes]] = []

    def send(self, stream: Stream, data: bytes, flags: SendFlags = SendFlags.NONE) -> None:
        context = f"{stream.id}:{len(self.accepted)}"
        if stream.send(data, flags, client_context=context) is Status.PENDING:
            self.accepted.append(context)

    def on_stream(self, stream: Stream, event: AnyStreamEvent) -> None:
        if event.type is StreamEventType.RECEIVE:
            data = b"".join(bytes(b) for b in event.buffers)
            if data and stream.id == HELD_STREAM and not {0, 4, 8} <= self.send_done:
                self.held.append((stream, data))
            elif data:
                self.send(stream, data * ANSWER_FACTOR)
        elif event.type is StreamEventType.PEER_SEND_SHUTDOWN:
            self.peer_finished.add(stream.id or 0)
            self.send(stream, b"", SendFlags.FIN)
        elif event.type is StreamEventType.SEND_COMPLETE:
            self.completions[event.client_context] += 1
            if event.canceled:
                self.canceled.add(event.client_context)
            elif stream.id not in self.peer_finished and self.more[stream.id or 0] < MAX_MORE:
                self.more[stream.id or 0] += 1
                self.send(stream, bytes(MORE_CHUNK))
        elif event.type is StreamEventType.SEND_SHUTDOWN_COMPLETE:
            self.send_done.add(stream.id or 0)
            if {0, 4, 8} <= self.send_done:
                for held, data in self.held:  # the first three are over: now the close
                    self.send(held, data * ANSWER_FACTOR)
                self.held.clear()
        elif event.type is StreamEventType.PEER_RECEIVE_ABORTED:
            self.seen.append(("stop-sending", event.error_code))
        elif event.type is StreamEventType.PEER_SEND_ABORTED:
            self.seen.append(("reset", event.error_code))
            stream.shutdown(StreamShutdownFlags.ABORT_SEND, event.error_code)


ANSWERS: dict[int, Answers] = {}


def answering_server(conn: Connection, event: AnyConnectionEvent) -> None:
    answers = ANSWERS.setdefault(id(conn), Answers())
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(answers.on_stream)
    elif event.type is ConnectionEventType.SHUTDOWN_INITIATED_BY_PEER:
        answers.seen.append(("close", event.error_code))


@scenario(peer_client="picoquic", peer_client_behaviour=("echo", "stop-sending", "reset", "close-connection"),
          server=answering_server, network={"delay_ms": 5}, timeout=40)
async def peer_client_aborts(ctx: ScenarioContext) -> None:
    assert ctx.peer is not None and ctx.peer.host == "127.0.0.1"
    await ctx.server.wait_shutdown_complete(timeout=30)
    answers = ANSWERS.pop(id(ctx.server))
    await ctx.peer.wait_event("close-connection")
    assert answers.seen.count(("stop-sending", STOP_SENDING_CODE)) == 1, answers.seen
    assert answers.seen.count(("reset", RESET_CODE)) == 1, answers.seen
    assert answers.seen[-1] == ("close", CLOSE_CODE), answers.seen
    # every accepted send completed exactly once, counted by its own context
    assert set(answers.completions) == set(answers.accepted), (answers.completions, answers.accepted)
    assert set(answers.completions.values()) == {1}, answers.completions
    on: dict[int, set[str]] = {sid: {c for c in answers.accepted if c.startswith(f"{sid}:")}
                               for sid in (0, 4, 8, HELD_STREAM)}
    assert len(on[0]) >= 2 and not on[0] & answers.canceled, (on[0], answers.canceled)  # answer + FIN, acked
    for sid in (4, 8, HELD_STREAM):  # each abort found a send in flight and canceled it
        assert on[sid] & answers.canceled, (sid, on[sid], answers.canceled)
    counts: dict[str, Any] = {str(sid): (len(on[sid]), len(on[sid] & answers.canceled)) for sid in on}
    ctx.note(f"{ctx.peer.name}'s client: {', '.join(e['event'] for e in ctx.peer.events)}; "
             f"sends (accepted, canceled) per stream: {counts}")

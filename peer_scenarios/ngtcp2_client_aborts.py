"""ngtcp2's HTTP/3 client aborts the streams of quicsim's server, for real.

ngtcp2's example client (``--peer-client ngtcp2``) POSTs three requests on one connection
to quicsim's server, which answers in HTTP/3 framing (quicsim.peers.h3): the first answer
is well-formed and the client reads it to its FIN; the second opens without ``:status``,
so the client stops the stream (STOP_SENDING, H3_MESSAGE_ERROR; RESET_STREAM of its own
direction as well when its request is not all acknowledged yet); the third opens with a
SETTINGS frame, so the client closes the connection (H3_FRAME_UNEXPECTED). The server
answers every chunk with 400 copies, so a send is in flight when each abort lands; it
answers the third stream only once the first two are over on its side, so the close ends
the run. MsQuic's rules: on echo the answers and the FIN are acknowledged; after
STOP_SENDING the send in flight completes canceled (PEER_RECEIVE_ABORTED) and the server's
direction is reset; after the CONNECTION_CLOSE every pending send completes canceled.
Each accepted send completes exactly once.
"""

from collections import Counter

from quicsim import (AnyConnectionEvent, AnyStreamEvent, Connection, ConnectionEventType, ScenarioContext, SendFlags,
                     Status, Stream, StreamEventType, StreamShutdownFlags, scenario)

H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR = 0x105, 0x10E
ANSWER_FACTOR = 400  # copies of each chunk read: far more than one congestion window
MORE_CHUNK = 1000
MAX_MORE = 2000  # chunks sent after the first answer while the client's direction is open
HELD_STREAM = 8  # the third client stream (close-connection): answered last


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
        self.held: list[tuple[Stream, bytes, SendFlags]] = []

    def send(self, stream: Stream, data: bytes, flags: SendFlags = SendFlags.NONE) -> None:
        context = f"{stream.id}:{len(self.accepted)}"
        if stream.send(data, flags, client_context=context) is Status.PENDING:
            self.accepted.append(context)

    def holding(self, sid: int) -> bool:
        return sid == HELD_STREAM and not {0, 4} <= self.send_done

    def on_stream(self, stream: Stream, event: AnyStreamEvent) -> None:
        sid = stream.id or 0
        if event.type is StreamEventType.RECEIVE:
            data = b"".join(bytes(b) for b in event.buffers)
            if data and self.holding(sid):
                self.held.append((stream, data * ANSWER_FACTOR, SendFlags.NONE))
            elif data:
                self.send(stream, data * ANSWER_FACTOR)
        elif event.type is StreamEventType.SEND_COMPLETE:
            self.completions[event.client_context] += 1
            if event.canceled:
                self.canceled.add(event.client_context)
            elif sid not in self.peer_finished and self.more[sid] < MAX_MORE:
                self.more[sid] += 1
                self.send(stream, bytes(MORE_CHUNK))
        elif event.type is StreamEventType.PEER_SEND_SHUTDOWN:
            self.peer_finished.add(sid)
            if self.holding(sid):  # its FIN too: the first bytes of that answer close the connection
                self.held.append((stream, b"", SendFlags.FIN))
            else:
                self.send(stream, b"", SendFlags.FIN)
        elif event.type is StreamEventType.SEND_SHUTDOWN_COMPLETE:
            self.send_done.add(sid)
            if {0, 4} <= self.send_done:
                for held, data, flags in self.held:  # the first two are over: now the close
                    self.send(held, data, flags)
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


@scenario(peer_client="ngtcp2", peer_only=True, peer_client_behaviour=("echo", "stop-sending", "close-connection"),
          server=answering_server, network={"delay_ms": 5}, timeout=40)
async def ngtcp2_client_aborts(ctx: ScenarioContext) -> None:
    assert ctx.peer is not None and ctx.peer.host == "127.0.0.1"
    await ctx.server.wait_shutdown_complete(timeout=30)
    answers = ANSWERS.pop(id(ctx.server))
    await ctx.peer.wait_event("close-connection")
    assert answers.seen.count(("stop-sending", H3_MESSAGE_ERROR)) == 1, answers.seen
    assert answers.seen[-1] == ("close", H3_FRAME_UNEXPECTED), answers.seen
    # every accepted send completed exactly once, counted by its own context
    assert set(answers.completions) == set(answers.accepted), (answers.completions, answers.accepted)
    assert set(answers.completions.values()) == {1}, answers.completions
    on = {sid: {c for c in answers.accepted if c.startswith(f"{sid}:")} for sid in (0, 4, HELD_STREAM)}
    assert len(on[0]) >= 2 and not on[0] & answers.canceled, (on[0], answers.canceled)  # answers + FIN, acked
    for sid in (4, HELD_STREAM):  # each abort found a send in flight and canceled it
        assert on[sid] & answers.canceled, (sid, on[sid], answers.canceled)
    counts = {str(sid): (len(on[sid]), len(on[sid] & answers.canceled)) for sid in on}
    ctx.note(f"{ctx.peer.name}'s client: {', '.join(e['event'] for e in ctx.peer.events)}; "
             f"sends (accepted, canceled) per stream: {counts}")

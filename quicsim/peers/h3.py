"""HTTP/3 framing of quicsim's streams, for a peer that speaks HTTP/3 only: on quicsim's
client for ngtcp2's example server (a control stream with SETTINGS, and on each client
bidirectional stream a request whose first send carries a HEADERS frame, QPACK-encoded
with pylsqpack, and whose every send's bytes go out inside one DATA frame); on quicsim's
server for ngtcp2's example client (:class:`Http3Server`: the same, each answer opened by
a response's HEADERS frame).

Each application send stays one send (one SEND_COMPLETE, its own client context): the
frame headers travel in the same send as its bytes, so the ledger judges exactly the sends
the application made. What a stream's first frame looks like picks the peer's behaviour
(see :data:`REQUESTS` and :data:`RESPONSES`); the peer's frames reach the application as
they are.
"""

from __future__ import annotations

from typing import Any, Callable

import pylsqpack

from .. import api
from ..enums import ConnectionEventType, SendFlags, Status, StreamOpenFlags

#: HTTP/3 frame and stream types (RFC 9114 7.2, 6.2), and the error codes a server sends
DATA, HEADERS, SETTINGS = 0x00, 0x01, 0x04
CONTROL_STREAM = 0x00
H3_NO_ERROR, H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR = 0x100, 0x105, 0x10E
#: the size of the body the server generates in answer (ngtcp2 answers ``/N`` with N bytes)
ANSWER_BYTES = 1000

#: what each behaviour of the menu sends first on its stream, and why the server reacts so:
#: a well-formed POST (answered once the request is in; at once, with STOP_SENDING of the
#: rest, by a server run with early responses); a request without ``:authority``, which
#: HTTP/3 calls malformed (RFC 9114 4.1.2: the server stops and resets the stream with
#: H3_MESSAGE_ERROR); a SETTINGS frame, which is a connection error on a request stream
#: (RFC 9114 7.2.4: CONNECTION_CLOSE with H3_FRAME_UNEXPECTED).
REQUESTS = {
    "echo": "post",
    "answer-after-fin": "post",
    "stop-sending": "post",
    "reset": "malformed",
    "close-connection": "settings",
}


def varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 16)."""
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 1 << 30:
        return (value | 0x8000_0000).to_bytes(4, "big")
    return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")


def frame(frame_type: int, payload: bytes) -> bytes:
    """One HTTP/3 frame: type, length, payload (RFC 9114 7.1)."""
    return varint(frame_type) + varint(len(payload)) + payload


def data_frame_header(length: int) -> bytes:
    """The type and length of a DATA frame whose ``length`` payload bytes follow."""
    return varint(DATA) + varint(length)


def request_preamble(kind: str, stream_id: int) -> bytes:
    """The bytes that open a request stream of ``kind`` (a value of :data:`REQUESTS`)."""
    if kind == "settings":
        return frame(SETTINGS, b"")
    headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"localhost"),
               (b":path", f"/{ANSWER_BYTES}".encode())]
    if kind == "malformed":
        headers = [h for h in headers if h[0] != b":authority"]
    # A dynamic table of capacity 0 (the QPACK default): no encoder stream needed.
    _encoder_stream, block = pylsqpack.Encoder().encode(stream_id, headers)
    return frame(HEADERS, block)


def control_stream_bytes() -> bytes:
    """The client's control stream: its type, then an empty SETTINGS frame (defaults)."""
    return varint(CONTROL_STREAM) + frame(SETTINGS, b"")


def _buffers(buffers: api.SendBuffers) -> list[Any]:
    """A send's buffers as a list, whether it was given one buffer or several."""
    if isinstance(buffers, (bytes, bytearray, memoryview)):
        return [buffers]
    return list(buffers)


class Http3Client:
    """Frames every bidirectional stream the client opens as an HTTP/3 request; the n-th
    one opened gets the n-th behaviour (the last repeating). Installed on one
    :class:`quicsim.api.Connection` by :func:`frame_as_http3`."""

    def __init__(self, client: api.Connection, behaviours: tuple[str, ...]) -> None:
        self.client = client
        self.behaviours = behaviours
        self.requests_opened = 0
        self.control_stream_id: int | None = None
        self._open_stream: Callable[..., api.Stream] = client.open_stream

    def open_control_stream(self) -> None:
        """The control stream, straight on aioquic's public API: HTTP/3's plumbing, not a
        send of the application's (the ledger never sees it)."""
        self.control_stream_id = control_stream_id(self.client)

    def is_plumbing(self, stream_id: int | None) -> bool:
        """The streams HTTP/3 itself keeps open for the connection's life: ours (the
        control stream) and every unidirectional stream of the server's (its control
        and QPACK streams)."""
        return stream_id is not None and (stream_id == self.control_stream_id or stream_id & 3 == 3)

    def is_plumbing_stream(self, stream: Any) -> bool:
        """:meth:`is_plumbing` of a stream object (anything with an ``id``)."""
        return self.is_plumbing(getattr(stream, "id", None))

    def open_stream(self, flags: StreamOpenFlags = StreamOpenFlags.NONE, handler: Any = None,
                    context: Any = None) -> api.Stream:
        """The client's StreamOpen, a bidirectional stream framed as the next request."""
        stream = self._open_stream(flags, handler, context)
        if not flags & StreamOpenFlags.UNIDIRECTIONAL:
            behaviour = self.behaviours[min(self.requests_opened, len(self.behaviours) - 1)]
            self.requests_opened += 1
            self._frame(stream, REQUESTS[behaviour])
        return stream

    def _frame(self, stream: api.Stream, kind: str) -> None:
        """Frame ``stream``'s sends as a request of ``kind`` (a value of :data:`REQUESTS`)."""
        frame_sends(stream, lambda stream_id: request_preamble(kind, stream_id))


def frame_sends(stream: api.Stream, preamble: Callable[[int], bytes]) -> None:
    """Frame every send of ``stream``: the first one opens with ``preamble(stream id)``
    (a HEADERS frame, or whatever provokes the peer), each one's bytes go in one DATA
    frame; still one send of the application's, with its own client context."""
    send = stream.send
    preamble_sent = False

    def framed_send(buffers: api.SendBuffers, flags: SendFlags = SendFlags.NONE,
                    client_context: Any = None) -> Status:
        nonlocal preamble_sent
        parts = _buffers(buffers)
        length = sum(memoryview(p).nbytes for p in parts)
        prefix = b""
        if not preamble_sent:
            # the stream id is known once the stream started; a request sent before
            # that is encoded for stream 0 (QPACK needs it only for blocked streams)
            prefix = preamble(stream.id or 0)
        if length:
            prefix += data_frame_header(length)
        status = send([prefix, *parts] if prefix else parts, flags, client_context)
        if status is Status.PENDING:
            preamble_sent = True
        return status

    setattr(stream, "send", framed_send)


def frame_as_http3(client: api.Connection, behaviours: tuple[str, ...]) -> Http3Client:
    """Open the client's control stream and frame every request stream it opens from now
    on (its ``open_stream`` is this framing's)."""
    framing = Http3Client(client, behaviours)
    framing.open_control_stream()
    setattr(client, "open_stream", framing.open_stream)
    return framing


# -- quicsim's server answering a client that speaks HTTP/3 only (ngtcp2's example client)

#: what the server's framing opens each answer with, per client action, and why the
#: client reacts so: a well-formed response (read to its FIN); a response without
#: ``:status``, which HTTP/3 calls malformed (RFC 9114 4.1.2: nghttp3 stops the stream
#: with H3_MESSAGE_ERROR, and resets its own direction too while the request is not all
#: acknowledged); a SETTINGS frame, a connection error on a request stream (RFC 9114
#: 7.2.4: CONNECTION_CLOSE with H3_FRAME_UNEXPECTED).
RESPONSES = {
    "echo": "ok",
    "stop-sending": "malformed",
    "close-connection": "settings",
}


def response_preamble(kind: str, stream_id: int) -> bytes:
    """The bytes that open the server's answer of ``kind`` (a value of :data:`RESPONSES`)."""
    if kind == "settings":
        return frame(SETTINGS, b"")
    headers = [(b":status", b"200")] if kind == "ok" else [(b"server", b"quicsim")]
    _encoder_stream, block = pylsqpack.Encoder().encode(stream_id, headers)
    return frame(HEADERS, block)


def control_stream_id(conn: api.Connection) -> int:
    """Open ``conn``'s control stream (its type, then an empty SETTINGS frame) straight on
    aioquic's public API: HTTP/3's plumbing, not a send of the application's."""
    quic = conn.core.quic
    stream_id: int = quic.get_next_available_stream_id(is_unidirectional=True)
    quic.send_stream_data(stream_id, control_stream_bytes())
    return stream_id


def is_unidirectional(stream_id: int | None) -> bool:
    """HTTP/3 without server push uses unidirectional streams only for its plumbing
    (control and QPACK streams, either side's), kept open for the connection's life."""
    return stream_id is not None and bool(stream_id & 2)


class Http3Server:
    """The listener's handler around the application's: each connection gets its control
    stream at CONNECTED; the client's unidirectional streams are read and dropped, never
    shown to the application; the n-th client request stream (id 4n) has every send
    framed as the answer :data:`RESPONSES` picks for the n-th action (the last repeating)."""

    def __init__(self, handler: Callable[[api.Connection, Any], Any], actions: tuple[str, ...]) -> None:
        self.handler = handler
        self.actions = actions

    def kind(self, stream_id: int) -> str:
        return RESPONSES.get(self.actions[min(stream_id // 4, len(self.actions) - 1)], "ok")

    def __call__(self, conn: api.Connection, event: Any) -> Any:
        if event.type is ConnectionEventType.CONNECTED:
            control_stream_id(conn)
        elif event.type is ConnectionEventType.PEER_STREAM_STARTED:
            stream = event.stream
            if is_unidirectional(stream.id):
                stream.set_handler(_drop)
                return None
            kind = self.kind(stream.id or 0)
            frame_sends(stream, lambda stream_id: response_preamble(kind, stream_id))
        return self.handler(conn, event)


def _drop(stream: api.Stream, event: Any) -> None:
    """HTTP/3's plumbing from the client: consumed, nothing the application sees."""

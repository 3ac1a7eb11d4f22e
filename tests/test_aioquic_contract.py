"""The aioquic internals quicsim relies on, all touched in quicsim/core/aioquic_adapter.py.
If a new aioquic release moves any of them, this fails first, with a message naming what
changed (pin aioquic or adapt the adapter); and it fails when any other module of quicsim
touches aioquic's insides (read from each module's syntax tree)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.stream import QuicStream, QuicStreamReceiver, QuicStreamSender


def _need(obj, name: str, where: str) -> None:
    if not hasattr(obj, name):
        pytest.fail(f"aioquic changed: {where}.{name} is gone; quicsim's core reads it "
                    f"(see quicsim/core). Pin aioquic to a release that has it.")


def test_sender_ack_state():
    sender = QuicStreamSender(stream_id=0, writable=True)
    for name in ("_buffer_start", "_acked_fin", "_reset_error_code", "is_finished", "write", "reset"):
        _need(sender, name, "QuicStreamSender")
    params = list(inspect.signature(sender.on_data_delivery).parameters)
    assert params == ["delivery", "start", "stop", "fin"], f"on_data_delivery signature changed: {params}"
    assert list(inspect.signature(sender.on_reset_delivery).parameters) == ["delivery"]
    # Our own delivery wrappers are looked up per instance when frames are written.
    src = inspect.getsource(QuicConnection._write_stream_frame)
    assert "stream.sender.on_data_delivery" in src, "aioquic no longer reads sender.on_data_delivery per frame"
    src = inspect.getsource(QuicConnection._write_reset_stream_frame)
    assert "on_reset_delivery" in src


def test_stream_and_connection_fields():
    stream = QuicStream(stream_id=0)
    for name in ("is_blocked", "sender", "receiver"):
        _need(stream, name, "QuicStream")
    _need(stream.receiver, "stop", "QuicStreamReceiver")
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    for name in ("_streams", "_events", "_close_event", "_state", "_close_end", "_is_client",
                 "_local_max_streams_bidi", "_local_max_streams_uni",
                 "_remote_max_streams_bidi", "_remote_max_streams_uni"):
        _need(quic, name, "QuicConnection")
    assert hasattr(quic._local_max_streams_bidi, "value") and hasattr(quic._local_max_streams_bidi, "sent")
    _need(quic, "_loss", "QuicConnection")
    assert isinstance(quic._loss.congestion_window, int), "send buffering follows the congestion window"
    _need(quic._loss, "_cc", "QuicPacketRecovery")
    assert quic._loss.congestion_window == quic._loss._cc.congestion_window, "the window is the controller's"
    for state in ("DRAINING", "TERMINATED", "CLOSING"):
        _need(QuicConnectionState, state, "QuicConnectionState")
    # Closing as MsQuic does (aioquic_adapter.close_as_msquic): the draining period's end,
    # the smoothed RTT it is computed from, and a close written only while one is pending.
    for name in ("_close_begin", "_close_at", "_close_pending"):
        _need(quic, name, "QuicConnection")
    _need(quic._loss, "_rtt_smoothed", "QuicPacketRecovery")
    assert list(inspect.signature(quic._close_begin).parameters) == ["is_initiator", "now"]
    assert "if self._close_pending:" in inspect.getsource(QuicConnection.datagrams_to_send)
    # StreamStart(IMMEDIATE)'s empty opening frame and the peer's streams opened by frames
    # (aioquic_adapter.send_open_frame, watch_peer_stream_opens).
    sender = QuicStreamSender(stream_id=0, writable=True)
    for name in ("_pending", "_pending_eof", "get_frame", "buffer_is_empty"):
        _need(sender, name, "QuicStreamSender")
    _need(quic, "_get_or_create_stream", "QuicConnection")
    assert list(inspect.signature(quic._get_or_create_stream).parameters) == ["frame_type", "stream_id"]
    assert "self._get_or_create_stream(frame_type, stream_id)" in inspect.getsource(QuicConnection._handle_stream_frame)
    # A pending ACK rides with stream data (aioquic_adapter.piggyback_ack): its due time.
    _need(quic, "_spaces", "QuicConnection")
    src = inspect.getsource(QuicConnection._write_application)
    assert "space.ack_at <= now" in src, "aioquic no longer writes the ACK when space.ack_at is due"
    for event in ("StreamDataReceived", "StreamReset", "StopSendingReceived",
                  "HandshakeCompleted", "ConnectionTerminated"):
        _need(qe, event, "aioquic.quic.events")


def test_ack_advances_buffer_start_and_fin():
    """The meaning of the fields, checked on aioquic's own sender."""
    from aioquic.quic.packet_builder import QuicDeliveryState

    sender = QuicStreamSender(stream_id=0, writable=True)
    sender.write(b"a" * 10)
    sender.write(b"b" * 5, end_stream=True)
    sender.get_frame(100)
    sender.on_data_delivery(QuicDeliveryState.ACKED, 10, 15, True)
    assert sender._acked_fin and sender._buffer_start == 0  # FIN acked before the data
    sender.on_data_delivery(QuicDeliveryState.ACKED, 0, 10, False)
    assert sender._buffer_start == 15 and sender.is_finished


def test_datagram_writer_fields():
    """core/datagram.py replaces the DATAGRAM frame writer per connection and logs the frame
    to qlog itself, as aioquic's writer does."""
    from aioquic.quic.logger import QuicLoggerTrace
    from aioquic.quic.packet_builder import QuicPacketBuilder

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    for name in ("_write_datagram_frame", "_remote_max_datagram_frame_size", "_max_datagram_size",
                 "_datagrams_pending", "_quic_logger"):
        _need(quic, name, "QuicConnection")
    params = list(inspect.signature(QuicConnection._write_datagram_frame).parameters)
    assert params == ["self", "builder", "data", "frame_type"], f"_write_datagram_frame changed: {params}"
    src = inspect.getsource(QuicConnection._write_datagram_frame)
    assert "builder.quic_logger_frames.append" in src and "encode_datagram_frame(length=length)" in src, \
        "aioquic logs DATAGRAM frames differently now: update core/datagram.py's writer"
    assert "self._write_datagram_frame(" in inspect.getsource(QuicConnection._write_application), \
        "aioquic no longer looks the DATAGRAM writer up per call"
    assert {"handler", "handler_args"} <= set(inspect.signature(QuicPacketBuilder.start_frame).parameters)
    assert "quic_logger_frames" in inspect.getsource(QuicPacketBuilder.__init__)
    _need(QuicLoggerTrace, "encode_datagram_frame", "QuicLoggerTrace")


def test_datagram_loss_fields():
    """core/datagram.py keeps the packet a datagram was written in (the builder's current
    QuicSentPacket), wraps the recovery's ACK and loss-timer entry points per instance, and
    forgets lost packets after two PTOs, as MsQuic does."""
    from aioquic.quic.packet_builder import QuicPacketBuilder, QuicSentPacket
    from aioquic.quic.rangeset import RangeSet
    from aioquic.quic.recovery import QuicPacketRecovery, QuicPacketSpace

    assert "self._packet = QuicSentPacket(" in inspect.getsource(QuicPacketBuilder.start_packet)
    for name in ("packet_number", "sent_time", "delivery_handlers"):
        assert name in QuicSentPacket.__dataclass_fields__, f"QuicSentPacket.{name} is gone"
    space = QuicPacketSpace(is_application_data=True)
    for name in ("is_application_data", "largest_acked_packet", "sent_packets"):
        _need(space, name, "QuicPacketSpace")
    assert list(inspect.signature(QuicPacketRecovery.on_ack_received).parameters) == [
        "self", "ack_rangeset", "ack_delay", "now", "space"]
    assert list(inspect.signature(QuicPacketRecovery.on_loss_detection_timeout).parameters) == ["self", "now"]
    _need(QuicPacketRecovery, "get_probe_timeout", "QuicPacketRecovery")
    # Looked up on the instance at each call, so the per-instance wrappers are used.
    src = inspect.getsource(QuicConnection)
    assert "self._loss.on_ack_received(" in src and "self._loss.on_loss_detection_timeout(" in src
    # A lost packet leaves sent_packets, so a later ACK of it reaches no delivery handler.
    assert "del space.sent_packets[packet.packet_number]" in inspect.getsource(QuicPacketRecovery._on_packets_lost)
    ranges = RangeSet([range(3, 5), range(7, 9)])
    assert ranges.bounds() == range(3, 9) and 4 in ranges and 5 not in ranges


def test_max_stream_data_fields():
    """core/send_buffer.py wraps the MAX_STREAM_DATA entry of the connection's frame handler
    table (per instance) and reads each stream's limit and ACKed offset as MsQuic's
    SendWindow = MaxAllowedSendOffset - UnAckedOffset."""
    from aioquic.buffer import Buffer
    from aioquic.quic.packet import QuicFrameType

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    handlers = getattr(quic, "_QuicConnection__frame_handlers", None)
    assert isinstance(handlers, dict), "aioquic's frame handler table moved"
    handler, epochs = handlers[QuicFrameType.MAX_STREAM_DATA]
    assert handler == quic._handle_max_stream_data_frame
    assert list(inspect.signature(handler).parameters) == ["context", "frame_type", "buf"]
    src = inspect.getsource(QuicConnection._handle_max_stream_data_frame)
    assert src.index("stream_id = buf.pull_uint_var()") < src.index("max_stream_data = buf.pull_uint_var()")
    assert "stream.max_stream_data_remote = max_stream_data" in src
    assert "frame_handler(context, frame_type, buf)" in inspect.getsource(QuicConnection._payload_received)
    _need(QuicStream(stream_id=0), "max_stream_data_remote", "QuicStream")
    _need(Buffer(capacity=1), "tell", "Buffer")
    _need(Buffer(capacity=1), "seek", "Buffer")


#: every private aioquic name quicsim touches, all of them in quicsim/core/aioquic_adapter.py
#: (QuicConnection's, its streams' senders', its packet builder's), with the test above that
#: checks its meaning
PRIVATE_NAMES = {
    "_is_client", "_close_event", "_state", "_close_end", "_events",
    "_remote_max_streams_bidi", "_remote_max_streams_uni", "_local_max_streams_bidi",
    "_local_max_streams_uni", "_streams", "_loss",
    "_buffer_start", "_acked_fin", "_reset_error_code", "_stop_error_code",
    "_QuicConnection__frame_handlers",
    "_write_datagram_frame", "_remote_max_datagram_frame_size", "_max_datagram_size",
    "_quic_logger", "_packet", "_datagrams_pending",
    "_close_begin", "_close_at", "_close_pending", "_spaces",
    "_pending", "_pending_eof", "_get_or_create_stream",
    # QuicPacketRecovery's (test_stream_and_connection_fields)
    "_cc", "_rtt_smoothed",
    # streams hashed by id in seeded runs (test_streams_are_made_by_two_methods)
    "_get_or_create_stream_for_send",
    # QuicConnectionProtocol's and QuicServer's (test_the_drivers_timer_is_aioquics_...)
    "_loop", "_process_events", "_handle_timer", "_timer", "_timer_at", "_transmit_task", "_transport", "_closed",
    # the QuicConnection a bare protocol drives (the benchmarks' baseline)
    "_quic",
    # the timers a hang names (aioquic_adapter.timer_name)
    "_loss_at", "_pacing_at",
}


# ---------------------------------------------------------------- who touches aioquic's insides


def _aioquic_names() -> tuple[frozenset[str], frozenset[str]]:
    """(every private name aioquic's classes define: methods and ``self._x`` fields; every
    method name they define), read from aioquic's own source."""
    import aioquic

    private: set[str] = set()
    methods: set[str] = set()
    for path in Path(aioquic.__file__).parent.rglob("*.py"):
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(cls, ast.ClassDef):
                continue
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.add(node.name)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    private.add(node.target.id)
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                    name = node.attr
                    # a name-mangled field (self.__x) is reached from outside as _Class__x
                    private.add(f"_{cls.name}{name}" if name.startswith("__") and not name.endswith("__") else name)
    private |= methods
    return (frozenset(n for n in private if n.startswith("_") and not n.startswith("__")),
            frozenset(n for n in methods if not n.startswith("__")))


AIOQUIC_PRIVATE, AIOQUIC_METHODS = _aioquic_names()


def aioquic_touches(source: str) -> list[str]:
    """Every place in ``source`` (a module's text) that touches aioquic's insides, one
    ``line: what`` each: a read or write of a private name of an aioquic class on anything
    but the module's own objects (``self`` of a class that does not derive from aioquic),
    a private method defined in a subclass of an aioquic class, a method of an aioquic
    object replaced by assignment, an attribute set on an aioquic class or module, and the
    same through ``setattr`` / ``getattr`` / ``delattr`` with a constant name."""
    tree = ast.parse(source)
    from_aioquic: set[str] = set()  # names bound to aioquic modules, classes, functions
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "aioquic":
            from_aioquic.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            from_aioquic.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                                if alias.name.split(".")[0] == "aioquic")
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
              and ast.unparse(node.value.func) in ("importlib.import_module", "import_module")):
            # a module looked up by name: it may be aioquic's
            from_aioquic.update(t.id for t in node.targets if isinstance(t, ast.Name))
    derived: set[str] = set()  # classes of this module that derive from aioquic's
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if (isinstance(node, ast.ClassDef) and node.name not in derived
                    and any(ast.unparse(b).split(".")[0] in from_aioquic | derived for b in node.bases)):
                derived.add(node.name)
                changed = True
    found: list[str] = []

    def visit(node: ast.AST, cls: str | None) -> None:
        if isinstance(node, ast.ClassDef):
            cls = node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if cls in derived and node.name in AIOQUIC_PRIVATE:
                found.append(f"{node.lineno}: {cls}.{node.name} overrides aioquic's private method")
        elif isinstance(node, ast.Attribute):
            receiver = node.value
            own = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            aioquic_self = own and cls in derived
            root = ast.unparse(receiver).split(".")[0]
            store = isinstance(node.ctx, (ast.Store, ast.Del))
            if node.attr in AIOQUIC_PRIVATE and (not own or aioquic_self):
                found.append(f"{node.lineno}: {ast.unparse(node)} touches aioquic's private {node.attr}")
            elif store and root in from_aioquic:
                found.append(f"{node.lineno}: {ast.unparse(node)} = ... patches aioquic's {root}")
            elif store and node.attr in AIOQUIC_METHODS and (not own or aioquic_self):
                found.append(f"{node.lineno}: {ast.unparse(node)} = ... replaces an aioquic method")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "getattr", "delattr", "hasattr") and node.args):
            target = ast.unparse(node.args[0]).split(".")[0]
            name = node.args[1] if len(node.args) > 1 else None
            const = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
            if const in AIOQUIC_PRIVATE or (node.func.id != "getattr" and node.func.id != "hasattr"
                                            and target in from_aioquic):
                found.append(f"{node.lineno}: {ast.unparse(node)} touches aioquic by name")
        for child in ast.iter_child_nodes(node):
            visit(child, cls)

    visit(tree, None)
    return found


def test_the_contract_check_sees_each_kind_of_touch():
    """Known-bad snippets, one per kind of touch, and a clean one."""
    bad = {
        "quic._streams.get(0)": "private _streams",
        "driver._quic = quic": "private _quic",
        "def f(s):\n    s.sender._pending_eof = True": "private _pending_eof",
        "setattr(quic, '_state', None)": "by name",
        "x = getattr(server, '_transport')": "by name",
        "from aioquic.quic.stream import QuicStream\nQuicStream.__hash__ = hash": "patches aioquic's QuicStream",
        "import aioquic.tls\naioquic.tls.os = None": "patches aioquic's aioquic",
        "import importlib\nm = importlib.import_module('aioquic.tls')\nm.os = None": "patches aioquic's m",
        "import importlib\nm = importlib.import_module('aioquic.tls')\nsetattr(m, 'os', None)": "by name",
        "loss.on_ack_received = print": "replaces an aioquic method",
        "from aioquic.asyncio.protocol import QuicConnectionProtocol as P\n"
        "class D(P):\n    def _handle_timer(self):\n        pass": "overrides aioquic's private method",
        "from aioquic.asyncio.protocol import QuicConnectionProtocol\n"
        "class D(QuicConnectionProtocol):\n    def go(self):\n        return self._loop": "private _loop",
        "from aioquic.asyncio.protocol import QuicConnectionProtocol\n"
        "class D(QuicConnectionProtocol):\n    def go(self, core):\n        self.quic_event_received = core":
            "replaces an aioquic method",
        "from aioquic.quic.logger import QuicLoggerTrace\nclass T(QuicLoggerTrace):\n    pass\n"
        "class U(T):\n    def log(self):\n        self._events.append(1)": "private _events",
    }
    for snippet, what in bad.items():
        found = aioquic_touches(snippet)
        assert len(found) == 1 and what in found[0], (snippet, found)
    clean = ("from aioquic.quic.connection import QuicConnection\n"
             "class Own:\n    def __init__(self, quic):\n        self._quic = quic\n"
             "        self._events = []\n        self.close = quic.close\n"
             "    def go(self):\n        self._quic.close()\n        return QuicConnection, self._events\n")
    assert aioquic_touches(clean) == []


def test_every_touch_of_aioquics_insides_is_in_the_adapter():
    import quicsim

    root = Path(quicsim.__file__).parent
    adapter = root / "core" / "aioquic_adapter.py"
    assert aioquic_touches(adapter.read_text(encoding="utf-8")), \
        "the adapter touches nothing private? the check above is out of date"
    # the package, and the project's other code that runs aioquic: the benchmarks' bare
    # baseline, the scenario libraries, the examples
    repo = root.parent
    paths = [*root.rglob("*.py"), *(path for folder in ("bench", "scenarios", "peer_scenarios", "examples")
                                    for path in (repo / folder).rglob("*.py"))]
    elsewhere = {str(path.relative_to(repo)): aioquic_touches(path.read_text(encoding="utf-8"))
                 for path in sorted(paths) if path != adapter}
    elsewhere = {path: found for path, found in elsewhere.items() if found}
    assert not elsewhere, f"aioquic's insides touched outside core/aioquic_adapter.py (move them there): {elsewhere}"
    assert any(path.parts[-2] == "bench" for path in paths), "the benchmarks were not read"


def test_every_private_name_the_adapter_reads_is_named_and_still_there():
    import quicsim

    adapter = Path(quicsim.__file__).parent / "core" / "aioquic_adapter.py"
    used = {node.attr for node in ast.walk(ast.parse(adapter.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and node.attr in AIOQUIC_PRIVATE}
    unnamed = used - PRIVATE_NAMES
    assert not unnamed, f"core/aioquic_adapter.py reads {sorted(unnamed)}: name them in PRIVATE_NAMES"
    gone = PRIVATE_NAMES - AIOQUIC_PRIVATE - {"_QuicConnection__frame_handlers"}
    assert not gone, f"aioquic changed: {sorted(gone)} gone; core/aioquic_adapter.py reads them. Pin aioquic."


def test_the_drivers_timer_is_aioquics_with_one_instant_at_most():
    """ConnectionDriver._handle_timer replaces aioquic's protocol timer (to handle a timer
    at most once per instant): it must still do what aioquic's does."""
    from aioquic.asyncio.protocol import QuicConnectionProtocol

    src = inspect.getsource(QuicConnectionProtocol._handle_timer)
    for line in ("now = max(self._timer_at, self._loop.time())", "self._timer = None", "self._timer_at = None",
                 "self._quic.handle_timer(now=now)", "self._process_events()", "self.transmit()"):
        assert line in src, f"aioquic's protocol timer changed ({line!r} is gone): see quicsim/transport/udp.py"
    # The driver arms aioquic's timer with its own handler, set per instance
    # (aioquic_adapter.replace_timer_handler), and reads the protocol's fields.
    src = inspect.getsource(QuicConnectionProtocol.transmit)
    assert "self._loop.call_at(timer_at, self._handle_timer)" in src
    assert "self._transport.sendto(data, addr)" in src and "self._transmit_task = None" in src
    assert "self.quic_event_received(event)" in inspect.getsource(QuicConnectionProtocol._process_events)
    src = inspect.getsource(QuicConnectionProtocol.__init__)
    for line in ("self._closed = asyncio.Event()", "self._loop = loop", "self._timer: asyncio.TimerHandle | None = None",
                 "self._transport: asyncio.DatagramTransport | None = None"):
        assert line in src, f"aioquic's protocol changed ({line!r} is gone): see core/aioquic_adapter.py"
    from aioquic.asyncio.server import QuicServer

    assert "self._transport" in inspect.getsource(QuicServer.connection_made)


def test_streams_are_made_by_two_methods():
    """aioquic_adapter.serve_streams_by_id wraps the two methods that make a QuicStream
    (and a peer's frame makes the lower-numbered streams of its type too); the stream
    service order comes from a set of streams."""
    src = inspect.getsource(QuicConnection)
    import re

    assert len(re.findall(r"= QuicStream\(\s+stream_id=", src)) == 2, "aioquic makes streams elsewhere now"
    for method in (QuicConnection._get_or_create_stream, QuicConnection._get_or_create_stream_for_send):
        assert "QuicStream(" in inspect.getsource(method)
    assert "self._get_or_create_stream_for_send(stream_id)" in inspect.getsource(QuicConnection.send_stream_data)
    assert "sent: set[QuicStream] = set()" in inspect.getsource(QuicConnection._write_application)
    assert "__hash__" not in vars(QuicStream), "QuicStream hashes by identity no more"

"""The core without asyncio or sockets: two ConnectionCores moved by hand, time passed in."""

from __future__ import annotations

import pytest

from quicsim import StreamShutdownFlags

from .conftest import Recorder
from .core_pair import CorePair


def test_acks_before_stop_sending_in_one_datagram_complete_acked():
    """The peer ACKs the data and sends STOP_SENDING in the same datagram: MsQuic handles
    the ACK frame first, so those sends completed normally (canceled=False). Driven
    sans-I/O so both frames are sure to share one datagram."""
    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    for i in range(10):
        stream.send(bytes(100), client_context=i)
    pair.client.process_operations()
    pair.deliver(pair.client)                      # data reaches the server; its ACK is delayed
    server_stream = next(iter(pair.server.streams.values()))
    server_stream.shutdown(StreamShutdownFlags.ABORT_RECEIVE, 9)
    pair.server.process_operations()               # STOP_SENDING is now pending too
    assert pair.deliver(pair.server, now=pair.now + 0.05) == 1  # ACK + STOP_SENDING together
    assert "PEER_RECEIVE_ABORTED" in rec.types()
    assert rec.completions() == [(i, False) for i in range(10)]


def test_sans_io_pair_completes_sends_on_ack():
    pair = CorePair()
    pair.handshake()
    rec = Recorder()
    stream = pair.client.open_stream(handler=rec)
    stream.start()
    stream.send(b"hello", client_context="h")
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    pair.client.process_operations()
    pair.deliver(pair.client)
    assert rec.completions() == []                 # sent, not yet acknowledged
    pair.deliver(pair.server, now=pair.now + 0.05)  # the delayed ACK
    assert rec.completions() == [("h", False)]
    assert "SEND_SHUTDOWN_COMPLETE" in rec.types()


def test_core_modules_share_no_private_names_and_no_import_cycle():
    """Stream, connection, buffer and datagram talk through public methods only, and the
    core imports no asyncio (sans-I/O) and has no runtime import cycle."""
    import ast
    import re
    from pathlib import Path

    import quicsim.core

    core = Path(quicsim.core.__file__).parent
    imports: dict[str, set[str]] = {}
    for path in core.glob("*.py"):
        text = path.read_text()
        crossing = re.findall(r"\b(?!self\b)[a-z_]+\.(_[a-z]\w*)\(", text)
        crossing = [name for name in crossing if not name.startswith("__")]
        if path.name != "aioquic_adapter.py":
            assert not crossing, f"{path.name} calls another object's private {crossing}"
        tree = ast.parse(text)
        runtime = set()
        for node in tree.body:  # module level only: TYPE_CHECKING blocks are skipped below
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                runtime.add(node.module or "")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.split(".")[0] == "asyncio" for n in names), f"{path.name} imports asyncio"
        imports[path.stem] = {m.split(".")[0] for m in runtime if m}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in imports.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    for module in imports:
        assert not reaches(module, module, {module}), f"import cycle through core/{module}.py"


def test_send_direction_moves_are_a_table_and_illegal_ones_name_state_and_move():
    from quicsim.core.state import SEND_MOVES, StateError, StreamState

    state = StreamState(started=True, has_send_side=True, has_receive_side=True)
    assert state.send_direction() == "open" and state.send_enabled
    with pytest.raises(StateError, match="'open' cannot 'acked'"):
        state.move_send("acked")  # nothing was shut down: there is nothing to acknowledge
    assert state.send_direction() == "open", "an illegal move leaves the state as it was"
    state.move_send("graceful")
    assert state.local_close_fin and not state.send_enabled and state.send_direction() == "fin"
    state.move_send("abort")
    assert state.send_direction() == "reset"
    state.move_send("acked")
    assert state.local_close_acked and state.send_direction() == "closed"
    with pytest.raises(StateError, match="'closed' cannot 'abort'"):
        state.move_send("abort")
    assert all(target in ("stopping", "fin", "reset", "closed") for target in SEND_MOVES.values())


def test_call_statuses_come_from_one_table_per_call():
    from quicsim import Status
    from quicsim.core.state import OPEN_STATUS, SEND_STATUS, ConnectionState, StreamState, status

    conn = ConnectionState()
    stream = StreamState(started=True, has_send_side=True, has_receive_side=True)
    assert status(SEND_STATUS, conn, stream) is None
    stream.send_enabled = False
    assert status(SEND_STATUS, conn, stream) is Status.INVALID_STATE
    stream.received_stop_sending = True
    assert status(SEND_STATUS, conn, stream) is Status.ABORTED
    conn.closed_locally = conn.closed_remotely = True
    assert status(OPEN_STATUS, conn) is Status.INVALID_STATE  # ClosedLocally is checked first
    conn.closed_locally = False
    assert status(OPEN_STATUS, conn) is Status.ABORTED


def test_the_send_fast_path_agrees_with_the_table():
    import itertools

    from quicsim.core.state import SEND_STATUS, ConnectionState, StreamState, send_status, status

    for bits in itertools.product([False, True], repeat=5):
        conn = ConnectionState()
        stream = StreamState(started=True, has_send_side=True, has_receive_side=True)
        (stream.send_enabled, conn.closed_remotely, stream.handle_closed, conn.handle_closed,
         stream.received_stop_sending) = bits
        assert send_status(conn, stream) is status(SEND_STATUS, conn, stream), bits

"""The state's moves in one place (core/state.py): tables of named moves, illegal moves
that raise naming machine, state and move, one table of which events a stream may raise
when (read by the core and by the ledger), and the exactly-once bookkeeping the core
checks after every operation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from quicsim import StreamEventType, StreamShutdownFlags, scenario
from quicsim.core import state as st
from quicsim.core.state import ConnectionState, StateError, StreamState
from quicsim.core.stream import StreamCore
from quicsim.ledger import Ledger
from quicsim.runner import RunOptions, run_job
from quicsim.scenario_spec import ATTRIBUTE

from .core_pair import CorePair

ROOT = Path(__file__).resolve().parent.parent


def _stream() -> StreamState:
    return StreamState(started=True, has_send_side=True, has_receive_side=True)


@pytest.mark.parametrize("machine, table, move, read", [
    ("send direction", st.SEND_MOVES, StreamState.move_send, StreamState.send_direction),
    ("receive direction", st.RECEIVE_MOVES, StreamState.move_receive, StreamState.receive_direction),
])
def test_every_row_of_a_direction_table_is_what_the_move_does(machine, table, move, read):
    """For each (state, move) of the table, reaching that state and making the move lands
    in the table's target, and returns False exactly for a no-op row; every pair not in
    the table raises StateError naming the machine, the state and the move, and changes
    nothing."""
    paths = {  # moves from a fresh started stream to each state of the machine
        "send direction": {"open": [], "stopping": ["disable"], "fin": ["graceful"], "reset": ["abort"],
                           "closed": ["silent"]},
        "receive direction": {"open": [], "stopping": ["abort"], "closed": ["fin"]},
    }[machine]
    states = {s for s, _ in table} | set(table.values())
    assert states == set(paths), f"a state of the {machine} is not reachable here: {states ^ set(paths)}"
    moves = {m for _, m in table}
    for state in states:
        for name in moves:
            s = _stream()
            for step in paths[state]:
                move(s, step)
            assert read(s) == state
            target = table.get((state, name))
            if target is None:
                before = repr(s)
                with pytest.raises(StateError, match=f"{machine} in state '{state}' cannot '{name}'"):
                    move(s, name)
                assert repr(s) == before, "an illegal move changes nothing"
            else:
                assert move(s, name) is (target != state)
                assert read(s) == target


def test_one_way_flags_are_set_once_and_a_second_time_is_a_bug():
    s = StreamState(started=False, has_send_side=True, has_receive_side=True)
    s.move("start")
    assert s.started
    with pytest.raises(StateError, match="'start'"):
        s.move("start")
    with pytest.raises(StateError, match="'fly'"):
        s.move("fly")
    s.move("complete_shutdown")
    assert s.shutdown_complete and not s.send_enabled and s.remote_closed, \
        "SHUTDOWN_COMPLETE closes both directions for good"
    c = ConnectionState()
    c.move("connect")
    with pytest.raises(StateError, match="'connect'"):
        c.move("connect")


@pytest.mark.parametrize("moves, timed_out, state", [
    # (move, silent) in order; then ShutdownCompleteTimedOut and the close state
    ([("close_locally", False)], True, "closing"),  # waiting for the peer's answer
    ([("close_locally", False), ("close_remotely", False)], False, "closed"),  # answered
    ([("close_locally", False), ("shutdown_timer", False)], True, "closed"),  # ran out unanswered
    ([("close_locally", True)], False, "closing"),  # a silent close needs no answer
    ([("close_locally", False), ("close_locally", True)], False, "closing"),  # ConnectionClose while closing
    ([("close_remotely", False)], True, "draining"),  # the peer closed first
    ([("close_remotely", False), ("shutdown_timer", False)], True, "draining"),  # drained: not acknowledged
    ([("close_remotely", False), ("close_locally", True)], False, "closed"),  # the app closed after the peer
])
def test_connection_close_follows_quicconntryclose(moves, timed_out, state):
    """ShutdownCompleteTimedOut (peer_acknowledged_shutdown is its negation) as
    QuicConnTryClose and QuicConnProcessShutdownTimerOperation set it, in the cases seen
    on the real library: the side whose close is answered, a silent close and a
    ConnectionClose during the closing period say 1; a drained side and an unanswered
    close say 0."""
    c = ConnectionState()
    firsts = [c.try_close(move, silent=silent) for move, silent in moves]
    assert firsts[0] and not any(firsts[1:]), "only the first close shuts the streams down"
    assert c.shutdown_timed_out is timed_out
    assert c.close_state() == state


def test_no_state_flag_is_written_outside_core_state():
    """Every change of stream and connection state is a move in core/state.py: no other
    module assigns one of the flags."""
    flags = set(StreamState.__slots__) | set(ConnectionState.__slots__)
    offenders = []
    for path in (ROOT / "quicsim").rglob("*.py"):
        if path.name == "state.py" and path.parent.name == "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr in flags
                        and isinstance(target.value, ast.Attribute) and target.value.attr == "state"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {target.attr}")
    assert offenders == []


def test_the_ledger_and_the_core_read_one_event_table():
    """An event outside its phase: the core refuses to raise it (a core bug), and the
    ledger reports it with the table's wording."""
    pair = CorePair()
    pair.handshake()
    core = pair.client.open_stream()  # never started
    with pytest.raises(StateError, match="RECEIVE raised on a stream in phase 'unstarted'"):
        core.indicate(__import__("quicsim.events", fromlist=["receive"]).receive(0, b"x", 0))
    assert st.event_allowed("unstarted", StreamEventType.SHUTDOWN_COMPLETE)
    assert not st.event_allowed("start_failed", StreamEventType.RECEIVE)

    ledger = Ledger()

    class Stream:
        id = None
        handle = 1
        core = None

    class Conn:
        label = "client"

    class Event:
        type = StreamEventType.PEER_SEND_SHUTDOWN

    stream, conn = Stream(), Conn()
    ledger.api_call(conn, stream, "open_stream", None, {})
    ledger.stream_event(conn, stream, Event())
    assert ledger.violations == [f"client stream handle=1: PEER_SEND_SHUTDOWN delivered {st.PHASE_TEXT['unstarted']}"]


def test_the_state_tables_in_the_conformance_document_are_the_codes():
    text = (ROOT / "docs" / "conformance.md").read_text()
    assert st.markdown() in text, "regenerate with: python -m quicsim.core.state"


# ------------------------------------------------------------------ the exactly-once check


@scenario(transport="memory", timeout=10)
async def _late_send(ctx):
    stream = ctx.client.open_stream()
    stream.start()
    stream.send(b"a" * 100, client_context="a")
    await ctx.sleep(0)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    stream.send(b"late", client_context="late")
    await stream.wait_shutdown_complete()


@pytest.mark.core_broken_on_purpose
def test_the_core_checks_its_exactly_once_bookkeeping(monkeypatch):
    """A core that loses a late send without completing it (no fault switched on) is
    caught by its own check, which names the counts, and the run fails with it."""
    result = run_job(getattr(_late_send, ATTRIBUTE), 1, RunOptions(check_invariants=True))
    assert result["passed"] and result["error"] is None, result

    monkeypatch.setattr(StreamCore, "_cancel_late", lambda self, request: None)  # the loss
    result = run_job(getattr(_late_send, ATTRIBUTE), 1, RunOptions(check_invariants=True))
    assert not result["passed"]
    assert result["error"].startswith("core state error: client: exactly-once bookkeeping broken: "
                                      "2 sends accepted, 0 completed, 0 dropped by faults, 1 pending"), result

"""A user's scenario file under ``mypy --strict``: the typed decorator, context, handlers,
``send()`` buffers and flags and the transport choice catch the usual mistakes, and a
correct file passes (and runs).

Each wrong file marks the lines mypy must flag with ``# E: <error code>``; the test
asserts that exactly those lines are flagged, each with that code (among others a
mistake may cause, such as the untyped decorator a bad ``@scenario(...)`` call leaves).
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import mypy.api

import quicsim
from quicsim.loader import load_scenarios
from quicsim.runner import run_job

REPO = Path(__file__).resolve().parent.parent

GOOD = '''
import quicsim
from quicsim import ConnectionEventType, SendFlags, Status, StreamEventType, StreamShutdownFlags, scenario


def on_server_event(conn: quicsim.Connection, event: quicsim.AnyConnectionEvent) -> None:
    if event.type is ConnectionEventType.PEER_STREAM_STARTED:
        event.stream.set_handler(on_peer_stream)


def on_peer_stream(stream: quicsim.Stream, event: quicsim.AnyStreamEvent) -> None:
    if event.type is StreamEventType.PEER_SEND_SHUTDOWN:
        stream.shutdown(StreamShutdownFlags.GRACEFUL | StreamShutdownFlags.INLINE)


@scenario(network={"loss": 0.0, "delay_ms": 5}, transport="memory", server=on_server_event, expect="ok",
          backends=("simulator",), settings={"client": quicsim.Settings(faults=[])})
async def typed_scenario(ctx: quicsim.ScenarioContext) -> None:
    completed: dict[str, bool] = {}

    def handler(stream: quicsim.Stream, event: quicsim.AnyStreamEvent) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:  # narrows: event is a SendComplete
            completed[event.client_context] = event.canceled

    stream = ctx.client.open_stream(handler=handler)
    assert stream.start() is Status.PENDING
    bufs: list[bytes | memoryview] = [b"a" * 100, memoryview(b"b" * 100)]
    stream.send(bufs, client_context="two-buffers")
    stream.send(bytearray(10), SendFlags.FIN, client_context="fin")
    await stream.wait_shutdown_complete(timeout=10)
    other = ctx.client.open_stream(handler=lambda s, e: e.type is StreamEventType.SEND_COMPLETE and e.canceled)
    other.close()
    ctx.network.update(loss=0.0)
    assert completed == {"two-buffers": False, "fin": False}, completed
    assert ctx.ledger.leaks == [] and ctx.server.label.startswith("server")
    ctx.note(f"sends {ctx.ledger.sends}")


@scenario
async def bare(ctx: quicsim.ScenarioContext) -> None:
    await ctx.sleep(0)
'''

WRONG_ATTRIBUTE = '''
import quicsim


@quicsim.scenario(transport="memory")
async def typo(ctx: quicsim.ScenarioContext) -> None:
    stream = ctx.clinet.open_stream()  # E: attr-defined
    ctx.network.updte(loss=0.5)  # E: attr-defined
    assert ctx.ledger.leak == []  # E: attr-defined
    ctx.client.open_stream().wait_shutdown_complet()  # E: attr-defined
'''

WRONG_FLAGS = '''
import quicsim
from quicsim import SendFlags, StreamShutdownFlags


@quicsim.scenario
async def flags(ctx: quicsim.ScenarioContext) -> None:
    stream = ctx.client.open_stream()
    stream.send(b"x", StreamShutdownFlags.GRACEFUL)  # E: arg-type
    stream.send(b"x", 1)  # E: arg-type
    stream.shutdown(SendFlags.FIN)  # E: arg-type
    stream.send("text")  # E: arg-type
    ctx.client.shutdown(StreamShutdownFlags.ABORT)  # E: arg-type
'''

WRONG_HANDLER = '''
import quicsim


def one_argument(stream: quicsim.Stream) -> None:
    pass


def event_as_int(stream: quicsim.Stream, code: int) -> None:
    pass


def stream_handler(stream: quicsim.Stream, event: quicsim.AnyStreamEvent) -> None:
    pass


@quicsim.scenario(server=stream_handler)  # E: arg-type
async def handlers(ctx: quicsim.ScenarioContext) -> None:
    ctx.client.open_stream(handler=one_argument)  # E: arg-type
    ctx.client.open_stream().set_handler(event_as_int)  # E: arg-type
    ctx.client.set_handler(stream_handler)  # E: arg-type


@quicsim.scenario  # E: type-var
def not_async(ctx: quicsim.ScenarioContext) -> None:
    pass


@quicsim.scenario  # E: type-var
async def wrong_context(ctx: int) -> None:
    pass
'''

WRONG_OPTIONS = '''
import quicsim


@quicsim.scenario(transport="tcp")  # E: call-overload
async def over_tcp(ctx: quicsim.ScenarioContext) -> None:
    pass


@quicsim.scenario(expect="leaks")  # E: call-overload
async def misspelled_expectation(ctx: quicsim.ScenarioContext) -> None:
    pass
'''

FILES = {"good": GOOD, "wrong_attribute": WRONG_ATTRIBUTE, "wrong_flags": WRONG_FLAGS,
         "wrong_handler": WRONG_HANDLER, "wrong_options": WRONG_OPTIONS}


def _expected(text: str) -> set[tuple[int, str]]:
    return {(n, m.group(1)) for n, line in enumerate(text.splitlines(), 1)
            for m in [re.search(r"# E: ([a-z-]+)", line)] if m}


def _mypy_strict(tmp_path: Path) -> dict[str, set[tuple[int, str]]]:
    """mypy --strict on every file at once, as a user runs it (their settings, not the
    project's); returns the (line, code) pairs flagged per file."""
    for name, text in FILES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text).lstrip("\n"))
    stdout, stderr, _status = mypy.api.run(
        ["--config-file=", "--python-version", "3.11", "--strict", "--follow-imports=silent",
         "--no-error-summary", "--show-error-codes", "--cache-dir", str(tmp_path / ".mypy_cache"),
         *[str(tmp_path / f"{name}.py") for name in FILES]])
    assert not stderr, stderr
    flagged: dict[str, set[tuple[int, str]]] = {name: set() for name in FILES}
    for line in stdout.splitlines():
        m = re.match(r".*?([a-z_]+)\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        assert m or ": note:" in line, f"unexpected mypy output: {line}"
        if m:
            flagged[m.group(1)].add((int(m.group(2)), m.group(3)))
    return flagged


def test_mypy_strict_passes_the_correct_file_and_flags_each_mistake(tmp_path):
    flagged = _mypy_strict(tmp_path)
    assert flagged["good"] == set(), flagged["good"]
    for name, text in FILES.items():
        expected = _expected(textwrap.dedent(text).lstrip("\n"))
        assert bool(expected) == (name != "good")
        found = flagged[name]
        assert {n for n, _ in found} == {n for n, _ in expected}, (name, sorted(found), sorted(expected))
        assert expected <= found, (name, sorted(found), sorted(expected))


def test_the_correct_file_runs(tmp_path):
    path = tmp_path / "good.py"
    path.write_text(textwrap.dedent(GOOD).lstrip("\n"))
    specs = load_scenarios([str(path)])
    assert [s.name for s in specs] == ["typed_scenario", "bare"]
    for spec in specs:
        result = run_job(spec, spec.seed)
        assert result["passed"], (spec.name, result["error"], result["leaks"], result["violations"])


def test_the_typing_names_are_public():
    for name in ("ScenarioContext", "ScenarioFunction", "StreamHandler", "ConnectionHandler", "SendBuffers",
                 "AnyStreamEvent", "AnyConnectionEvent", "Transport", "Backend"):
        assert name in quicsim.__all__ and getattr(quicsim, name) is not None


def test_settings_declared_init_matches_its_fields():
    """Settings declares its __init__ for type checkers (faults: any iterable of names);
    it must name every field, in order, with the field's default."""
    import dataclasses

    tree = ast.parse((REPO / "quicsim" / "settings.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    init = next(f for node in cls.body if isinstance(node, ast.If) for f in node.body
                if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    params = [a.arg for a in init.args.args[1:]]
    defaults = [eval(compile(ast.Expression(d), "settings", "eval")) for d in init.args.defaults]
    fields = dataclasses.fields(quicsim.Settings)
    assert params == [f.name for f in fields]
    real = [f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in fields]
    assert defaults == real

"""The pytest plugin: a connected client/server pair over a lossy loopback link, with the
exactly-once check at teardown; and scenario files collected as tests.

Active once quicsim is installed (``pytest11`` entry point); ``-p no:quicsim`` turns it off.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generator, Iterator, NoReturn, TypeVar, cast

import pytest

pytest_asyncio: Any
try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures need it; scenario files do not
    pytest_asyncio = None

from .held import Buffers
from .ledger import Ledger
from .liveness import LIVENESS_SECONDS, VIRTUAL_LIVENESS_SECONDS, liveness_phase
from .errors import QuicsimError, UsageError
from .loader import load_scenarios
from .network import Network, NetworkError, NetworkProfile
from .pair import BACKENDS, TEARDOWN_SECONDS, TRANSPORTS, Pair, open_pair
from .qlog import QlogWriter
from .runner import RunOptions, run_job, seeds_for
from .scenario_spec import ScenarioSpec
from .send_order import send_name
from .settings import Settings, check_faults
from .trace import Tracer, record_findings

if TYPE_CHECKING:
    from .api import Listener


@dataclass
class _Traces:
    """What ``--quicsim-trace`` keeps of one test: its JSON Lines trace and its qlog."""

    tracer: Tracer
    path: Path
    qlog: QlogWriter | None = None
    recorded: bool = False  # the findings and the verdict are in

    def record(self, ledger: Ledger, expect: frozenset[str], passed: bool, errors: list[str]) -> None:
        """Write the ledger's findings and the verdict (once), as ``quicsim run --trace`` does."""
        if self.recorded:
            return
        self.recorded = True
        record_findings(ledger.report(), "+".join(sorted(expect)), passed, errors, self.tracer, self.qlog)

    def files(self) -> list[Path]:
        return [self.path, *(self.qlog.paths if self.qlog is not None else [])]

    def hint(self) -> str:
        """Where the trace is and the command that explains it (for the failure message)."""
        text = f"quicsim trace: {self.path}\n  explain it: quicsim explain {self.path}"
        if self.qlog is not None:  # (written with the findings, at the end of the test)
            qlogs = self.qlog.paths or [self.path.parent / f"{self.path.stem}-*.sqlog"]
            text += "\n  qlog (qvis): " + ", ".join(str(p) for p in qlogs)
        return text


_FIXTURE_LOOP = pytest.StashKey[asyncio.AbstractEventLoop]()
_LEDGER_FAILED = pytest.StashKey[str]()
_JUDGED = pytest.StashKey[bool]()
_TRACE = pytest.StashKey[_Traces]()
_EXPECTATIONS = frozenset({"ok", "leak", "violation", "handler_error"})
_MARKER_KEYS = {"loss", "delay_ms", "seed", "transport", "settings", "client_settings", "server_settings",
                "faults", "expect", "network", "backend", "peer", "peer_behaviour", "peer_client",
                "peer_client_behaviour", "server_handler"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quicsim", "quicsim: MsQuic-style QUIC pairs with an exactly-once check")
    group.addoption("--quicsim-seed", type=int, default=None, help="seed for quicsim's lossy link")
    group.addoption("--quicsim-loss", type=float, default=None, help="loss fraction for quicsim pairs and scenarios")
    group.addoption("--quicsim-transport", default=None, help=f"transport for quicsim pairs ({', '.join(TRANSPORTS)})")
    group.addoption("--quicsim-backend", default=None, choices=BACKENDS,
                    help="run quicsim pairs and scenario files on the simulator (default) or on the real "
                         "libmsquic ($QUICSIM_MSQUIC_LIB); what needs the simulator is skipped, saying why")
    group.addoption("--quicsim-trace", default=None, metavar="DIR",
                    help="keep a JSON Lines trace (with the ledger's findings: quicsim explain reads it) "
                         "and the qlog of each failing quicsim test in DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "quicsim(loss=, delay_ms=, seed=, transport='udp', settings=, faults=, network=, expect='ok', peer=, "
        "peer_behaviour=, peer_client=, peer_client_behaviour=, server_handler=): "
        "configure the quicsim_pair fixture for one test; expect='leak' passes only if a send leaked, "
        "expect='handler_error' only if an event handler raised (both: expect=('leak', 'handler_error')); "
        "peer='picoquic' puts a foreign server against quicsim's client, peer_client='quiche' a foreign "
        "client against quicsim's server (quicsim_peer: the running peer)",
    )
    loss = config.getoption("--quicsim-loss")
    if loss is not None and not 0.0 <= loss <= 1.0:
        raise pytest.UsageError(f"--quicsim-loss must be a fraction in [0, 1], got {loss}")
    transport = config.getoption("--quicsim-transport")
    if transport is not None and transport not in TRANSPORTS:
        raise pytest.UsageError(f"--quicsim-transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")


@dataclass
class QuicsimConfig:
    """What the marker and the command line ask for one test."""

    network: dict[str, Any]
    seed: int
    transport: str
    client_settings: Settings
    server_settings: Settings
    expect: frozenset[str]
    backend: str = "simulator"
    #: a foreign server (quicsim.peers.PEERS) and what it does with each client stream
    peer: str | None = None
    peer_behaviour: tuple[str, ...] = ("echo",)
    #: a foreign client (quicsim.peers.clients.CLIENT_PEERS) and what it does on each stream
    peer_client: str | None = None
    peer_client_behaviour: tuple[str, ...] = ("echo",)
    #: the server connection's handler (listen(handler=...)); None: quicsim's default
    server_handler: Any = None


def _config(request: pytest.FixtureRequest) -> QuicsimConfig:
    marker = request.node.get_closest_marker("quicsim")
    kw: dict[str, Any] = dict(marker.kwargs) if marker else {}
    unknown = sorted(kw.keys() - _MARKER_KEYS)
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.quicsim: unknown option {unknown[0]!r}")
    opt = request.config.getoption
    network = dict(kw.get("network") or {})
    for key in ("loss", "delay_ms"):
        if key in kw:
            network[key] = kw[key]
    if opt("--quicsim-loss") is not None:
        network["loss"] = opt("--quicsim-loss")
    try:
        NetworkProfile.from_dict(network)
    except NetworkError as exc:
        raise pytest.UsageError(f"@pytest.mark.quicsim: {exc}") from None
    base = kw.get("settings") or Settings()
    client = kw.get("client_settings") or base
    server = kw.get("server_settings") or base
    if kw.get("faults"):
        client = replace(client, faults=client.faults | check_faults(kw["faults"]))
    seed = opt("--quicsim-seed") if opt("--quicsim-seed") is not None else kw.get("seed", 1)
    transport = opt("--quicsim-transport") or kw.get("transport", "udp")
    if transport not in TRANSPORTS:
        raise pytest.UsageError(f"@pytest.mark.quicsim: transport must be one of {', '.join(TRANSPORTS)}, "
                                f"got {transport!r}")
    expect = kw.get("expect", "ok")
    outcomes = frozenset([expect] if isinstance(expect, str) else expect)
    if not outcomes or not outcomes <= _EXPECTATIONS:
        raise pytest.UsageError("@pytest.mark.quicsim: expect must be ok, leak, violation or handler_error "
                                f"(or a tuple of them), got {expect!r}")
    backend = opt("--quicsim-backend") or kw.get("backend", "simulator")
    if backend not in BACKENDS:
        raise pytest.UsageError(f"@pytest.mark.quicsim: backend must be one of {', '.join(BACKENDS)}, "
                                f"got {backend!r}")
    peers = _peer_options(kw)
    if (peers["peer"] or peers["peer_client"]) and (transport != "udp" or backend != "simulator"):
        raise pytest.UsageError("@pytest.mark.quicsim: a peer is a real process on loopback UDP: it needs "
                                "transport='udp' and the simulator backend")
    return QuicsimConfig(network, seed, transport, client, server, outcomes, backend, **peers)


def _peer_options(kw: dict[str, Any]) -> dict[str, Any]:
    """The marker's peer=, peer_behaviour=, peer_client=, peer_client_behaviour= and
    server_handler=, checked (UsageError naming the bad one)."""
    from .peers import PEERS, normalize_behaviours
    from .peers.clients import CLIENT_PEERS, normalize_actions

    peer, peer_client = kw.get("peer"), kw.get("peer_client")
    if peer is not None and peer not in PEERS:
        raise pytest.UsageError(f"@pytest.mark.quicsim: peer must be one of {', '.join(PEERS)}, got {peer!r}")
    if peer_client is not None and peer_client not in CLIENT_PEERS:
        raise pytest.UsageError(f"@pytest.mark.quicsim: peer_client must be one of {', '.join(CLIENT_PEERS)}, "
                                f"got {peer_client!r}")
    if peer is not None and peer_client is not None:
        raise pytest.UsageError("@pytest.mark.quicsim: peer= and peer_client= exclude each other")
    try:
        behaviours = normalize_behaviours(kw.get("peer_behaviour", "echo"))
        actions = normalize_actions(kw.get("peer_client_behaviour", "echo"))
    except ValueError as exc:
        raise pytest.UsageError(f"@pytest.mark.quicsim: {exc}") from None
    return {"peer": peer, "peer_behaviour": behaviours, "peer_client": peer_client,
            "peer_client_behaviour": actions, "server_handler": kw.get("server_handler")}


@pytest.fixture
def quicsim_config(request: pytest.FixtureRequest) -> QuicsimConfig:
    return _config(request)


@pytest.fixture
def quicsim_ledger(request: pytest.FixtureRequest, quicsim_config: QuicsimConfig) -> Iterator[Ledger]:
    """The ledger shared by both sides; checked when the test ends."""
    ledger = Ledger()
    yield ledger
    item = request.node
    traces = item.stash.get(_TRACE, None)
    if _JUDGED in item.stash:
        return  # judged at the end of the test body already
    if getattr(item, "_quicsim_call_failed", False):
        if traces is not None:  # the body failed: the trace still says what the ledger saw
            traces.record(ledger, quicsim_config.expect, False, ["the test body failed"])
        return
    handler_errors = _handler_errors(getattr(item, "funcargs", {}))
    failure = _verdict(ledger, quicsim_config.expect, handler_errors)
    if traces is not None:
        traces.record(ledger, quicsim_config.expect, failure is None, _error_texts(handler_errors))
    if failure:
        if traces is not None:
            failure += "\n" + traces.hint()
        item.stash[_LEDGER_FAILED] = failure
        pytest.fail(failure, pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Judge the ledger as part of the test itself: once an async test body using the
    quicsim fixtures returns, shut its pair down and fail the test on a leak."""
    funcargs = getattr(item, "funcargs", {})
    original = getattr(item, "obj", None)
    if "quicsim_ledger" not in funcargs or not inspect.iscoroutinefunction(original):
        yield
        return

    @functools.wraps(original)
    async def checked(*args: Any, **kwargs: Any) -> None:
        fixture_loop = item.stash.get(_FIXTURE_LOOP, None)
        if fixture_loop is not None and fixture_loop is not asyncio.get_running_loop():
            item.stash[_JUDGED] = True  # the body never ran: nothing for the ledger to judge
            pytest.fail(_loop_scope_mismatch(item), pytrace=False)
        await original(*args, **kwargs)
        pair = funcargs.get("quicsim_pair")
        if pair is not None:
            # The liveness phase (heal, deadline, stalled sends), then the teardown.
            await liveness_phase(pair.ledger, pair.network,
                                 VIRTUAL_LIVENESS_SECONDS if pair.transport == "memory" else LIVENESS_SECONDS)
            await pair.shutdown(TEARDOWN_SECONDS)
        item.stash[_JUDGED] = True
        ledger, expect, handler_errors = funcargs["quicsim_ledger"], funcargs["quicsim_config"].expect, \
            _handler_errors(funcargs)
        failure = _verdict(ledger, expect, handler_errors)
        traces = item.stash.get(_TRACE, None)
        if traces is not None:
            traces.record(ledger, expect, failure is None, _error_texts(handler_errors))
        if failure:
            if traces is not None:
                failure += "\n" + traces.hint()
            pytest.fail(failure, pytrace=False)

    item.obj = checked  # type: ignore[attr-defined]
    try:
        yield
    finally:
        item.obj = original  # type: ignore[attr-defined]


def _handler_errors(funcargs: dict[str, Any]) -> list[tuple[str, BaseException]]:
    """Exceptions raised by event handlers of the test's pair: quicsim keeps running (as
    MsQuic's worker must), so the test is where they surface."""
    pair = funcargs.get("quicsim_pair")
    if pair is None:
        return []
    conns = [pair.client, pair.server, *(pair.listener.connections if pair.listener is not None else ())]
    seen: set[int] = set()
    out = []
    for conn in conns:
        if conn is None or id(conn) in seen:
            continue
        seen.add(id(conn))
        out += [(conn.label, exc) for exc in conn.handler_errors]
    return out


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:  # (a pytest-asyncio without that setting)
        return None


def _loop_scope_mismatch(item: pytest.Item) -> str:
    """Why a test cannot use the quicsim fixtures: pytest-asyncio set them up on another
    event loop than the test's, so the pair's connections never run while the test waits
    (its streams would time out unstarted); and which setting to change."""
    marker = item.get_closest_marker("asyncio")
    test_scope = (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")) if marker else None
    source = "its asyncio marker"
    if not test_scope:
        test_scope = _ini(item.config, "asyncio_default_test_loop_scope") or "function"
        source = "asyncio_default_test_loop_scope"
    fixture_scope = _ini(item.config, "asyncio_default_fixture_loop_scope") or "function"
    return (f"quicsim: pytest-asyncio runs this test on another event loop than the quicsim fixtures "
            f"(the test's loop scope is {test_scope!r}, from {source}; the fixtures' {fixture_scope!r}, from "
            f"asyncio_default_fixture_loop_scope): the pair's connections would not run while the test "
            f"waits on them, and its streams would time out unstarted.\n"
            f"Give both the same loop scope: asyncio_default_fixture_loop_scope = \"{test_scope}\" in the "
            f"pytest configuration (the quicsim fixtures are function-scoped: \"function\" suits them), "
            f"or run the test on the fixtures' loop: asyncio_default_test_loop_scope = \"{fixture_scope}\" "
            f"or @pytest.mark.asyncio(loop_scope=\"{fixture_scope}\").")


def _error_texts(handler_errors: list[tuple[str, BaseException]]) -> list[str]:
    return [f"{label}: event handler raised {type(exc).__name__}: {exc}" for label, exc in handler_errors]


def _verdict(ledger: Ledger, expect: frozenset[str], handler_errors: list[tuple[str, BaseException]]) -> str | None:
    problems = []
    if "leak" in expect and not ledger.leaks:
        problems.append("expected a leaked send (expect='leak'), none was seen")
    if "violation" in expect and not ledger.violations:
        problems.append("expected a violation (expect='violation'), none was seen")
    if not expect & {"leak", "violation"} and not ledger.ok:
        problems.append("sends leaked or contract violated")
    if "handler_error" in expect:
        if not handler_errors:
            problems.append("expected an event handler to raise (expect='handler_error'), none did")
    elif handler_errors:
        problems.append(f"{len(handler_errors)} exception(s) raised in event handlers "
                        "(expect='handler_error' allows it)")
    if not problems:
        return None
    text = "quicsim: " + "; ".join(problems) + "\n" + ledger.summary()
    if "handler_error" not in expect:
        for label, exc in handler_errors[:5]:
            text += f"\n--- {label}: event handler raised\n" + "".join(traceback.format_exception(exc)).rstrip()
    return text


@pytest.fixture
def quicsim_buffers() -> Buffers:
    """Which ``client_context``s of the pair's sends are still held (no SEND_COMPLETE yet)
    and which completed: compare with your own buffer table (``assert_matches(table)``)."""
    return Buffers()


@pytest.fixture
def _quicsim_observers(request: pytest.FixtureRequest, quicsim_buffers: Buffers) -> tuple[Any, ...]:
    trace_dir = request.config.getoption("--quicsim-trace")
    if not trace_dir:
        return (quicsim_buffers,)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    path = (Path(trace_dir) / f"{name}.jsonl").resolve()
    tracer = Tracer(path)
    request.node.stash[_TRACE] = _Traces(tracer, path)
    return (quicsim_buffers, tracer)


_Fixture = TypeVar("_Fixture", bound=Callable[..., Any])


def _async_fixture(fn: _Fixture) -> _Fixture:
    if pytest_asyncio is None:
        def missing() -> NoReturn:
            raise pytest.UsageError("quicsim's async fixtures need pytest-asyncio: pip install pytest-asyncio")
        missing.__name__ = fn.__name__
        return cast(_Fixture, pytest.fixture(missing))
    return cast(_Fixture, pytest_asyncio.fixture(fn))


@_async_fixture
async def quicsim_network(request: pytest.FixtureRequest, quicsim_config: QuicsimConfig) -> Network:
    """The live impairment controls of the pair's link (``update(...)``, ``blackhole(...)``)."""
    # the loop every quicsim fixture runs on: the test must run on it too (checked as it starts)
    request.node.stash[_FIXTURE_LOOP] = asyncio.get_running_loop()
    return Network(quicsim_config.network, quicsim_config.seed, asyncio.get_running_loop().time)


@_async_fixture
async def quicsim_pair(request: pytest.FixtureRequest, quicsim_config: QuicsimConfig, quicsim_network: Network,
                       quicsim_ledger: Ledger, _quicsim_observers: tuple[Any, ...]) -> AsyncIterator[Pair]:
    """A connected client and server through the lossy link (UDP relay or in-memory),
    sharing ``quicsim_ledger``; shut down cleanly afterwards. On the msquic backend a
    test that needs the simulator (memory transport, faults, preemption) is skipped."""
    if quicsim_config.backend == "msquic":
        from .errors import BackendError
        from .backends.msquic.runtime import check_settings

        reason = "the memory transport is the simulator's" if quicsim_config.transport == "memory" else None
        try:
            check_settings(quicsim_config.client_settings, "client")
            check_settings(quicsim_config.server_settings, "server")
        except BackendError as exc:
            reason = reason or str(exc)
        if reason is not None:
            request.node.stash[_JUDGED] = True  # nothing ran: nothing for the ledger to judge
            pytest.skip(f"the msquic backend: {reason}")
    traces = request.node.stash.get(_TRACE, None)
    if traces is not None and quicsim_config.backend == "simulator":  # (the library's packets are its own)
        traces.qlog = QlogWriter(traces.path.parent, traces.path.stem, clock=asyncio.get_running_loop().time)
    if quicsim_config.peer is not None or quicsim_config.peer_client is not None:
        peer_pair = await _open_peer_pair(request, quicsim_config, quicsim_network, quicsim_ledger,
                                          _quicsim_observers, traces.qlog if traces is not None else None)
        try:
            yield peer_pair
        finally:
            await peer_pair.shutdown(TEARDOWN_SECONDS)
        return
    pair = await open_pair(transport=quicsim_config.transport, network=quicsim_network, seed=quicsim_config.seed,
                           client_settings=quicsim_config.client_settings,
                           server_settings=quicsim_config.server_settings, ledger=quicsim_ledger,
                           observers=_quicsim_observers, backend=quicsim_config.backend,
                           qlog=traces.qlog if traces is not None else None,
                           server_handler=quicsim_config.server_handler)
    try:
        yield pair
    finally:
        await pair.shutdown()


async def _open_peer_pair(request: pytest.FixtureRequest, config: QuicsimConfig, network: Network, ledger: Ledger,
                          observers: tuple[Any, ...], qlog: Any) -> Any:
    """The marker's peer started (PeerPair: its server, quicsim's client) or its client
    (PeerClientPair: quicsim's server); a peer not installed skips the test, saying how
    to install it."""
    from .peers import PeerNotInstalled, launcher
    from .peers.client_pair import open_peer_client_pair
    from .peers.clients import client_launcher
    from .peers.pair import open_peer_pair

    name = config.peer or config.peer_client or ""
    if config.peer is not None:  # (a peer's server that cannot play these behaviours skips too)
        missing = launcher(name).missing() or launcher(name).unsupported(config.peer_behaviour)
    else:
        missing = client_launcher(name).missing() or client_launcher(name).unsupported(config.peer_client_behaviour)
    try:
        if missing is not None:
            raise PeerNotInstalled(missing)
        if config.peer is not None:
            return await open_peer_pair(config.peer, config.peer_behaviour, network=network, seed=config.seed,
                                        client_settings=config.client_settings, ledger=ledger,
                                        observers=observers, qlog=qlog)
        return await open_peer_client_pair(name, config.peer_client_behaviour, network=network, seed=config.seed,
                                           server_settings=config.server_settings, ledger=ledger,
                                           server_handler=config.server_handler, observers=observers, qlog=qlog)
    except PeerNotInstalled as exc:
        request.node.stash[_JUDGED] = True  # nothing ran: nothing for the ledger to judge
        pytest.skip(str(exc))


@_async_fixture
async def quicsim_peer(request: pytest.FixtureRequest, quicsim_pair: Any) -> Any:
    """The running foreign peer of ``@pytest.mark.quicsim(peer=...)`` (its server) or
    ``(peer_client=...)`` (its client): a :class:`quicsim.peers.PeerHandle` (name, port,
    pid, ``events``, ``wait_event``); started before the test, stopped after it."""
    peer = getattr(quicsim_pair, "peer", None)
    if peer is None:
        raise pytest.UsageError("quicsim_peer needs @pytest.mark.quicsim(peer=...) or (peer_client=...)")
    return peer


@_async_fixture
async def quicsim_listener(quicsim_pair: Pair) -> Listener:
    """The pair's listener (its ``connections``, ``ledger``, ``port`` on UDP)."""
    return quicsim_pair.listener


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown" and report.failed and _LEDGER_FAILED in item.stash:
        report.quicsim_ledger = True  # counted as a failed test, not an error
    traces = item.stash.get(_TRACE, None)
    if report.when == "teardown":
        if traces is not None:
            traces.tracer.close()
            failed = report.failed or getattr(item, "_quicsim_call_failed", False)
            if not failed:
                for path in traces.files():
                    path.unlink(missing_ok=True)
            elif (report.failed and _LEDGER_FAILED not in item.stash
                  and not getattr(item, "_quicsim_call_failed", False)):  # (a ledger failure names it already)
                report.sections.append(("quicsim trace", traces.hint()))
    elif report.when == "call" and report.failed:
        item._quicsim_call_failed = True  # type: ignore[attr-defined]
        if traces is not None and "quicsim explain" not in str(report.longrepr):
            report.sections.append(("quicsim trace", traces.hint()))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    if getattr(report, "quicsim_ledger", False):
        return "failed", "F", "FAILED"
    return None


# -- scenario files as tests -------------------------------------------------------

def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix != ".py" or file_path.name == "conftest.py":
        return None
    patterns = parent.config.getini("python_files")
    if any(file_path.match(p) for p in patterns):
        return None  # pytest's own Python collection owns test files
    try:
        text = file_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if "@scenario" not in text or "quicsim" not in text:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        try:
            specs = load_scenarios([str(self.path)])
        except UsageError as exc:
            raise self.CollectError(str(exc)) from None
        options = _run_options(self.config)
        for spec in specs:
            for seed in seeds_for(spec, options):
                yield ScenarioItem.from_parent(self, name=f"{spec.name}[seed={seed}]", spec=spec, seed=seed)


def _run_options(config: pytest.Config) -> RunOptions:
    loss = config.getoption("--quicsim-loss")
    return RunOptions(network={"loss": loss} if loss is not None else {},
                      seed=config.getoption("--quicsim-seed"),
                      trace_dir=config.getoption("--quicsim-trace"),
                      transport=config.getoption("--quicsim-transport"),
                      backend=config.getoption("--quicsim-backend") or "simulator")


class ScenarioFailed(QuicsimError):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, spec: ScenarioSpec, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.seed = seed

    def runtest(self) -> None:
        result = run_job(self.spec, self.seed, _run_options(self.config))
        if result.get("skipped"):
            pytest.skip(f"{result.get('peer') or result.get('peer_client') or result['backend']}: {result['skipped']}")
        if not result["passed"]:
            lines = [f"scenario {self.spec.name} (seed {self.seed}, expect {self.spec.expect}) failed"]
            if result["error"]:
                lines.append(f"error: {result['error']}")
            for leak in result["leaks"]:
                lines.append(f"LEAK send {send_name(leak['connection'], leak['send_id'])} client_context={leak['client_context']} "
                             f"on {leak['connection']} stream {leak['stream_id']} {leak['detected']}")
            lines += [f"VIOLATION {v}" for v in result["violations"]]
            raise ScenarioFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.spec.line - 1, f"scenario {self.name}"

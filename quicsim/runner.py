"""Run one scenario: a real client and server over a lossy loopback relay, the scenario
body, the settling after it, and the ledger's verdict against the expectation."""

from __future__ import annotations

import asyncio
import time
import traceback
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Any

from . import api
from .ledger import Ledger
from .network import Network, NetworkProfile
from .scenario_spec import ScenarioContext, ScenarioSpec
from .settings import check_faults
from .trace import Tracer
from .transport.relay import Relay

TEARDOWN_SECONDS = 3.0


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides applied to every scenario."""

    network: dict = field(default_factory=dict)  # merged over the scenario's own
    faults: frozenset[str] = frozenset()
    seed: int | None = None
    repeat: int | None = None
    trace_dir: str | None = None  # one JSON Lines trace per run when set


def seeds_for(spec: ScenarioSpec, options: RunOptions) -> list[int]:
    first = spec.seed if options.seed is None else options.seed
    return list(range(first, first + (options.repeat or spec.repeat)))


def _error_text(exc: BaseException, spec: ScenarioSpec) -> str:
    """The exception, and where in the scenario file it was raised."""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == spec.file:
            where = f" at {spec.file}:{frame.lineno}"
            break
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}{where}"


def _pending_text(ledger: Ledger, conns: list) -> str:
    pending = ledger.pending_sends()
    parts = []
    if pending:
        shown = ", ".join(f"send {p['send_id']} ({p['client_context']}) on {p['connection']} "
                          f"stream {p['stream_id']}" for p in pending[:5])
        parts.append(f"{len(pending)} sends pending: {shown}{' ...' if len(pending) > 5 else ''}")
    open_streams = [f"{c.label} stream {s.id}" for c in conns for s in c.streams.values()]
    if open_streams:
        parts.append(f"streams not shut down: {', '.join(open_streams[:5])}")
    return "; ".join(parts)


async def _settle(conns: list, deadline: float) -> None:
    """Let started streams on both sides reach SHUTDOWN_COMPLETE, until the deadline."""
    while any(c.streams for c in conns if not c.shutdown_initiated) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def run_scenario(spec: ScenarioSpec, seed: int, options: RunOptions | None = None) -> dict:
    """Run ``spec`` once with ``seed``; returns the result as a JSON-ready dict."""
    options = options or RunOptions()
    started = time.monotonic()
    deadline = started + spec.timeout
    faults = check_faults(options.faults)
    client_settings = spec.client_settings
    if faults:
        client_settings = replace(client_settings, faults=client_settings.faults | faults)
    network_spec = {**spec.network, **options.network}
    ledger = Ledger()
    loop = asyncio.get_running_loop()
    network = Network(NetworkProfile.from_dict(network_spec), seed, loop.time)
    tracer = None
    observers: tuple = ()
    if options.trace_dir:
        tracer = Tracer(Path(options.trace_dir) / f"{spec.name}-seed{seed}.jsonl", clock=loop.time)
        network.listeners.append(tracer.network)
        observers = (tracer,)
    listener = relay = client = server = None
    error: str | None = None
    context: ScenarioContext | None = None
    try:
        listener = await api.listen(handler=spec.server, settings=spec.server_settings, ledger=ledger,
                                    observers=observers)
        relay = await Relay(("127.0.0.1", listener.port), network).start()
        client = await api.connect("127.0.0.1", relay.port, settings=client_settings, ledger=ledger,
                                   observers=observers)
        server = await listener.accept(timeout=max(0.1, deadline - time.monotonic()))
        context = ScenarioContext(client=client, server=server, listener=listener, seed=seed,
                                  network=network, ledger=ledger, spec=spec)
        try:
            await asyncio.wait_for(spec.fn(context), max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            error = (f"timed out after {spec.timeout:g} s in the scenario body"
                     f"{'; ' + _pending_text(ledger, [client, server]) if _pending_text(ledger, [client, server]) else ''}")
        except Exception as exc:
            error = _error_text(exc, spec)
        await _settle([client, server], deadline)
    except asyncio.TimeoutError as exc:
        error = error or f"TimeoutError: {exc}"
    except (ConnectionError, OSError) as exc:
        error = error or f"{type(exc).__name__}: {exc}"
    finally:
        await _teardown(client, server, listener, relay)
    conns = [c for c in (client, server) if c is not None]
    handler_errors = [f"{c.label}: {type(e).__name__}: {e}" for c in conns for e in c.handler_errors]
    if handler_errors and error is None:
        error = "handler raised: " + "; ".join(handler_errors[:3])
    report = ledger.report()
    if tracer is not None:
        for leak in report["leaks"]:
            tracer.finding("leak", leak)
        for violation in report["violations"]:
            tracer.finding("violation", {"text": violation})
        if error:
            tracer.finding("error", {"text": error})
        tracer.close()
    if spec.expect == "ok":
        passed = error is None and report["ok"]
    elif spec.expect == "leak":
        passed = error is None and bool(report["leaks"])
    else:
        passed = error is None and bool(report["violations"])
    return {
        "scenario": spec.name,
        "file": spec.file,
        "seed": seed,
        "expect": spec.expect,
        "passed": passed,
        "error": error,
        **report,
        "network": network_spec,
        "faults": sorted(client_settings.faults),
        "datagrams": {d: dict(s) for d, s in network.stats.items()},
        "notes": context.notes if context else [],
        "wall_time": round(time.monotonic() - started, 3),
        "trace": str(tracer.path) if tracer is not None else None,
    }


async def _teardown(client: Any, server: Any, listener: Any, relay: Any) -> None:
    """Shut both connections down (client first, as an application would), wait boundedly
    for their SHUTDOWN_COMPLETE, then close everything."""
    try:
        if client is not None and not client.shutdown_complete:
            if not client.shutdown_initiated:
                client.shutdown()
            try:
                await client.wait_shutdown_complete(timeout=TEARDOWN_SECONDS)
            except asyncio.TimeoutError:
                pass
        if server is not None and not server.shutdown_complete:
            try:
                await server.wait_shutdown_complete(timeout=TEARDOWN_SECONDS)
            except asyncio.TimeoutError:
                pass
    finally:
        for conn in (client, server):
            if conn is not None:
                for stream in list(conn.unstarted):
                    stream.close()
                conn.close()
        if listener is not None:
            listener.close()
        if relay is not None:
            relay.close()
        await asyncio.sleep(0)

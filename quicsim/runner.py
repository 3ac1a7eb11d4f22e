"""Run one scenario: a real client and server over a lossy link (the loopback relay, or
the in-memory link on virtual time), the scenario body, the settling after it, and the
ledger's verdict against the expectation."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import interrupt
from .errors import BackendError
from .contexts import with_context_values
from .ledger import Ledger
from .loop_watchdog import BodyBlocked, LoopWatchdog
from .liveness import LIVENESS_SECONDS, VIRTUAL_LIVENESS_SECONDS, liveness_phase
from .network import Network, NetworkProfile
from .probes import ProbeObserver
from .qlog import QlogWriter
from .peers import PeerNotInstalled, launcher, normalize_behaviours
from .peers.client_pair import PeerClientPair, open_peer_client_pair
from .peers.clients import client_launcher
from .peers.pair import PeerPair, open_peer_pair
from .peers.silence import PeerSilence
from .settings import Settings
from .pair import TEARDOWN_SECONDS, VIRTUAL_TEARDOWN_SECONDS, Pair, open_pair
from .run_options import RunOptions as RunOptions  # (its home before run_options: still importable here)
from .scenario_spec import NotQuicsims, ScenarioContext, ScenarioSpec
from .send_order import send_name
from .core.state import StateError
from .settings import check_faults
from .trace import Tracer, record_findings
from .errors import VirtualTimeExceeded
from .transport.virtual_loop import run_virtual

#: How long, at most, the runner lets streams left open by a scenario body finish on
#: their own before it shuts the connections down (what was still open goes in the row).
SETTLE_SECONDS = 2.0


def result_json(result: dict[str, Any]) -> str:
    """One run's result as the line ``quicsim run --json`` prints: the findings'
    ``client_context`` as its value (``{"repr": ...}`` when JSON cannot hold it)."""
    out = dict(result)
    for key in ("leaks", "stalled", "datagram_leaks"):
        if out.get(key):
            out[key] = [with_context_values(finding) for finding in out[key]]
    return json.dumps(out, default=str)


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


def _pending_text(ledger: Ledger, conns: list[Any], pair: Any = None, name_half_open: bool = True) -> str:
    """What is still pending; a stream a peer left half-open is named as the peer's doing
    (unless the caller names it itself: ``name_half_open=False``)."""
    pending = ledger.pending_sends()
    parts = []
    if pending:
        shown = ", ".join(f"send {send_name(p['connection'], p['send_id'])} ({p['client_context']}) on "
                          f"{p['connection']} stream "
                          + (f"{p['stream_id']}" if p['stream_id'] is not None
                             else f"handle={p['stream_handle']} (unstarted)") for p in pending[:5])
        parts.append(f"{len(pending)} sends pending: {shown}{' ...' if len(pending) > 5 else ''}")
    peer_pair = pair if isinstance(pair, PeerPair) else None
    half_open = peer_pair.half_open() if peer_pair is not None else []
    open_streams = [f"{c.label} stream {s.id}" for c in conns for s in c.core.streams.values()
                    if not _peer_owned(pair, c, s.id, half_open)]
    if peer_pair is not None and half_open and name_half_open:
        parts.append(peer_pair.half_open_text())
    if open_streams:
        parts.append(f"streams not shut down: {', '.join(open_streams[:5])}")
    return "; ".join(parts)


def _peer_owned(pair: Any, conn: Any, stream_id: int | None, half_open: list[int]) -> bool:
    """A stream of quicsim's connection that a peer keeps open: its HTTP/3 plumbing, or one it
    left half-open (reported as the peer's, not as a stream quicsim did not shut down)."""
    if isinstance(pair, PeerClientPair):  # an HTTP/3 client's plumbing, on the server's side
        return conn is pair.server and pair.is_plumbing(stream_id)
    return (isinstance(pair, PeerPair) and conn is pair.client
            and (pair.is_plumbing(stream_id) or stream_id in half_open))


async def _settle(conns: list[Any], deadline: float, pair: Any = None) -> None:
    """Let started streams on both sides reach SHUTDOWN_COMPLETE, until the deadline
    (event-driven: it wakes when a stream or connection finishes, never polls); a peer's
    HTTP/3 plumbing streams and the streams it left half-open are not waited for."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        half_open = pair.half_open() if isinstance(pair, PeerPair) else []
        waits = [s.owner.wait_shutdown_complete() for c in conns if not c.shutdown_initiated
                 for s in list(c.core.streams.values()) if not _peer_owned(pair, c, s.id, half_open)]
        if not waits:
            return
        waits += [c.wait_shutdown_complete() for c in conns if not c.shutdown_complete]
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(tasks, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _watch_core_errors(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Collect StateErrors raised in the loop's callbacks (the worker, datagrams, timers):
    the loop only logs those, and a run must not pass over a broken core rule. Cancelled
    futures nobody awaited are dropped, not logged."""
    found: list[str] = []
    previous = loop.get_exception_handler()

    def on_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, StateError):
            found.append(str(exc))
        if isinstance(exc, asyncio.CancelledError):
            # a future a cancelled wait left behind (wait_for around a gather, on Ctrl-C or
            # a body's timeout): it holds nothing to report, the loop would print a traceback
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(on_exception)
    return found


def transport_for(spec: ScenarioSpec, options: RunOptions) -> str:
    return options.transport or spec.transport


def needs_simulator(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """Why ``spec`` cannot run on the real library (None when it can)."""
    from .backends.msquic.runtime import simulator_faults

    if "msquic" not in spec.backends:
        return "the scenario runs on the simulator only (backends=)"
    if transport_for(spec, options) == "memory":
        return "it runs on the in-memory link (virtual time is the simulator's)"
    faults = simulator_faults(spec.client_settings.faults | spec.server_settings.faults | options.faults)
    if faults:
        return f"it injects {', '.join(faults)} (faults are the simulator's)"
    if options.preempt or spec.client_settings.preempt or spec.server_settings.preempt:
        return "it sets preempt (preemption points are the simulator's)"
    return None


def peer_for(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """The foreign stack serving this run (--peer, else @scenario(peer=...) unless
    --peer-client puts a foreign client in); None: quicsim's."""
    if options.peer is not None or options.peer_client is not None:
        return options.peer
    return spec.peer


def peer_client_for(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """The foreign stack connecting to quicsim's server in this run (--peer-client, else
    @scenario(peer_client=...) unless --peer puts a foreign server in); None: quicsim's client."""
    if options.peer is not None or options.peer_client is not None:
        return options.peer_client
    return spec.peer_client


def needs_quicsim_client(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """Why ``spec`` cannot run with a foreign client (None when it can)."""
    if options.backend == "msquic":
        return "--backend msquic runs the library on both ends; a peer's client replaces quicsim's client"
    if _uses_names(spec.fn.__code__, {"client"}, spec.fn.__globals__):
        return "its body uses ctx.client (quicsim's client)"
    if transport_for(spec, options) == "memory":
        return "it runs on the in-memory link (a peer is a real process on loopback UDP)"
    if spec.client_settings.faults or options.faults:
        return "it injects faults into quicsim's client"
    if spec.server_settings != spec.client_settings and spec.client_settings != Settings():
        return "it sets the client's settings (quicsim's client)"
    return None


def needs_quicsim_server(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """Why ``spec`` cannot run against a foreign server (None when it can)."""
    if options.backend == "msquic":
        return "--backend msquic runs the library on both ends; a peer replaces the server"
    if spec.server is not None:
        return "it answers with quicsim's server handler (server=)"
    if _uses_names(spec.fn.__code__, {"server", "listener"}, spec.fn.__globals__):
        return "its body uses ctx.server or ctx.listener (quicsim's server)"
    if transport_for(spec, options) == "memory":
        return "it runs on the in-memory link (a peer is a real process on loopback UDP)"
    if spec.server_settings != spec.client_settings and spec.server_settings != Settings():
        return "it sets the server's settings (quicsim's server)"
    return None


def _uses_names(code: Any, names: set[str], module: dict[str, Any] | None = None,
                seen: set[Any] | None = None) -> bool:
    """Whether a function (or one defined in it, or a function of its own module it calls:
    ``module`` is its globals) reads an attribute or global of ``names``."""
    seen = set() if seen is None else seen
    if code in seen:
        return False
    seen.add(code)
    if names & set(code.co_names):
        return True
    inner = [const for const in code.co_consts if hasattr(const, "co_names")]
    if module is not None:  # helpers of the scenario's file (``await _story(ctx, ...)``)
        inner += [obj.__code__ for name in code.co_names if callable(obj := module.get(name))
                  and getattr(obj, "__globals__", None) is module and hasattr(obj, "__code__")]
    return any(_uses_names(c, names, module, seen) for c in inner)


def not_its_peer(spec: ScenarioSpec, options: RunOptions) -> str | None:
    """Why a scenario written for one peer (``peer_only``) does not run here: the run names
    another stack, or puts it on the other end. None when it runs."""
    if not spec.peer_only:
        return None
    side, ours = ("server", spec.peer) if spec.peer is not None else ("client", spec.peer_client)
    chosen = peer_for(spec, options) if side == "server" else peer_client_for(spec, options)
    if chosen == ours:
        return None
    named = (f"--peer {options.peer}" if options.peer is not None
             else f"--peer-client {options.peer_client}" if options.peer_client is not None else "another end")
    return f"it is written for {ours}'s {side} (peer_only); this run names {named}"


def run_job(spec: ScenarioSpec, seed: int, options: RunOptions | None = None) -> dict[str, Any]:
    """Run one scenario run on a fresh event loop: a virtual-time one for the memory
    transport, so the run is deterministic and idle time is free."""
    options = options or RunOptions()
    reason = not_its_peer(spec, options)
    if reason is not None:
        return _stopped_result(spec, seed, options, None, 0.0, skipped=reason)
    if options.backend == "msquic" and peer_for(spec, options) is None:
        reason = needs_simulator(spec, options)
        if reason is not None:
            return _stopped_result(spec, seed, options, None, 0.0, skipped=reason)
    peer = peer_for(spec, options)
    if peer is not None:
        peers = launcher(peer)
        reason = (needs_quicsim_server(spec, options) or peers.missing()
                  or peers.unsupported(normalize_behaviours(spec.peer_behaviour)))
        if reason is not None:
            return _stopped_result(spec, seed, options, None, 0.0, skipped=reason)
    peer_client = peer_client_for(spec, options)
    if peer_client is not None:
        clients = client_launcher(peer_client)
        reason = (needs_quicsim_client(spec, options) or clients.missing()
                  or clients.unsupported(spec.peer_client_behaviour))
        if reason is not None:
            return _stopped_result(spec, seed, options, None, 0.0, skipped=reason)
    run = interrupt.cancellable(run_scenario(spec, seed, options))  # Ctrl-C cancels it cleanly
    if transport_for(spec, options) == "memory":
        budget = options.virtual_budget or virtual_budget(spec)
        wall_start = time.monotonic()
        try:
            return run_virtual(run, seed=seed, budget=budget)
        except VirtualTimeExceeded as exc:
            return _stopped_result(spec, seed, options, f"hang: {exc}", time.monotonic() - wall_start)
    return asyncio.run(run)


def virtual_budget(spec: ScenarioSpec) -> float:
    """Virtual seconds a memory run may last: its body, the liveness phase and two
    teardown waits, with a margin. Past it the run is stuck and reported as a hang."""
    return spec.timeout + VIRTUAL_LIVENESS_SECONDS + 2 * VIRTUAL_TEARDOWN_SECONDS + 60.0


def _stopped_result(spec: ScenarioSpec, seed: int, options: RunOptions, error: str | None, wall: float,
                    skipped: str | None = None) -> dict[str, Any]:
    """The result of a run stopped from outside (nothing of its ledger survives), or of
    one skipped because its backend cannot run it (``skipped``: why)."""
    return {
        "scenario": spec.name, "file": spec.file, "seed": seed, "expect": spec.expect, "passed": skipped is not None,
        "error": error, **Ledger().report(), "network": {**spec.network, **options.network},
        "faults": sorted(spec.client_settings.faults | options.faults), "send_buffering": None,
        "preempt": options.preempt, "preempt_window_ms": options.preempt_window_ms, "link": {}, "notes": [],
        "transport": transport_for(spec, options),
        "connected": None, "wall_time": round(wall, 3), "trace": None, "backend": options.backend,
        "peer": peer_for(spec, options), "peer_client": peer_client_for(spec, options),
        **({"skipped": skipped} if skipped is not None else {}),
    }


async def run_scenario(spec: ScenarioSpec, seed: int, options: RunOptions | None = None) -> dict[str, Any]:
    """Run ``spec`` once with ``seed``; returns the result as a JSON-ready dict."""
    options = options or RunOptions()
    msquic = options.backend == "msquic"
    loop = asyncio.get_running_loop()
    wall_start = time.monotonic()
    deadline = loop.time() + spec.timeout
    transport = transport_for(spec, options)
    faults = check_faults(options.faults)
    client_settings, server_settings = replace(options, faults=faults).settings_for(spec.client_settings,
                                                                                   spec.server_settings)
    applied_faults = client_settings.faults
    if msquic:  # what is left (needs_simulator let it through) the library does by itself
        client_settings = replace(client_settings, faults=frozenset())
        server_settings = replace(server_settings, faults=frozenset())
    network_spec = {**spec.network, **options.network}
    ledger = Ledger()
    network = Network(NetworkProfile.from_dict(network_spec), seed, loop.time)
    tracer = qlog = None
    observers: tuple[Any, ...] = ()
    if options.trace_dir:
        if not msquic:  # (the library's packets are its own: no qlog of them here)
            qlog = QlogWriter(options.trace_dir, f"{spec.name}-seed{seed}", clock=loop.time)
        tracer = Tracer(Path(options.trace_dir) / f"{spec.name}-seed{seed}.jsonl", clock=loop.time,
                        include_cids=transport != "memory" and not msquic)
        observers = (tracer,)
    observers = (*observers, *options.observers)
    recorder = None
    if spec.expect_outcomes is not None:
        from .outcomes import OutcomeRecorder

        # one recorder per run: the caller's (quicsim outcomes, diff) when it brought one
        recorder = next((o for o in options.observers if isinstance(o, OutcomeRecorder)), None)
        if recorder is None:
            recorder = OutcomeRecorder()
            observers = (*observers, recorder)
    probes = ProbeObserver() if options.probes else None
    if probes is not None:
        observers = (*observers, probes)
    wire: list[str] | None = [] if options.wire_log and options.trace_dir and transport == "memory" else None
    core_errors = _watch_core_errors(loop)
    pair: Pair | PeerPair | PeerClientPair | None = None
    error: str | None = None
    unsettled: str | None = None
    context: ScenarioContext | None = None
    peer = peer_for(spec, options)
    peer_client = peer_client_for(spec, options)
    silence: PeerSilence | None = None
    if peer is not None or peer_client is not None:
        # when the peer last sent (its direction of the relay): a timeout may be its doing
        silence = PeerSilence(peer or peer_client or "", "to_client" if peer is not None else "to_server",
                              loop.time)
        network.listeners.append(silence.on_network)
    peer_silence: dict[str, Any] | None = None
    skipped: str | None = None
    try:
        if peer is not None:
            pair = await open_peer_pair(peer, spec.peer_behaviour, network=network, seed=seed,
                                        client_settings=client_settings, ledger=ledger, observers=observers,
                                        qlog=qlog)
        elif peer_client is not None:
            pair = await open_peer_client_pair(peer_client, spec.peer_client_behaviour, network=network,
                                               seed=seed, server_settings=server_settings, ledger=ledger,
                                               server_handler=spec.server, observers=observers, qlog=qlog,
                                               accept_timeout=max(0.1, deadline - loop.time()))
        else:
            pair = await open_pair(transport=transport, network=network, seed=seed, client_settings=client_settings,
                               server_settings=server_settings, ledger=ledger, server_handler=spec.server,
                               observers=observers, accept_timeout=max(0.1, deadline - loop.time()),
                                   qlog=qlog, wire_log=wire, backend=options.backend,
                                   msquic_lib=options.msquic_lib)
        conns = [c for c in (pair.client, pair.server) if c is not None]
        if recorder is not None and isinstance(pair, PeerPair) and pair.framing is not None:
            recorder.ignore = pair.framing.is_plumbing_stream
        if recorder is not None and isinstance(pair, PeerClientPair) and pair.launcher.alpn == "h3":
            recorder.ignore = pair.is_plumbing_stream
        if options.check_invariants and not msquic:
            for conn in conns:
                conn.core.check_invariants = True
        context = ScenarioContext(client=pair.client, server=pair.server, listener=pair.listener, seed=seed,
                                  network=network, ledger=ledger, spec=spec, backend=options.backend,
                                  peer=pair.peer if isinstance(pair, (PeerPair, PeerClientPair)) else None)
        timed_out = named_half_open = False
        with LoopWatchdog(loop, spec.timeout) as watchdog, interrupt.watching(watchdog):
            try:
                await asyncio.wait_for(spec.fn(context), max(0.01, deadline - loop.time()))
            except asyncio.TimeoutError as exc:
                timed_out = True
                # a stream the peer left half-open is the peer's doing, not a stall of quicsim's
                peers_doing = pair.half_open_text() if isinstance(pair, PeerPair) else ""
                pending = _pending_text(ledger, conns, pair, name_half_open=False)
                if peers_doing:
                    named_half_open = True
                    error = f"{peers_doing} (the scenario body waited {spec.timeout:g} s for it)"
                elif loop.time() < deadline:  # the body's own wait gave up, not the scenario's timeout
                    error = _error_text(exc, spec)
                else:
                    error = f"timed out after {spec.timeout:g} s in the scenario body"
                error += f"; {pending}" if pending else ""
            except BodyBlocked:
                if watchdog.blocked is None:  # stopped by Ctrl-C: the cancellation it could not see
                    raise asyncio.CancelledError() from None
            except NotQuicsims as exc:  # reached through a function the checks above did not see
                skipped = f"its body uses ctx.{exc.what} (quicsim's {exc.side}), which this run's peer replaces"
            except Exception as exc:
                error = _error_text(exc, spec)
        if watchdog.blocked is not None:
            # Its timeout could not fire while the loop stood still: not a pass, whatever it returned.
            error = (f"hang: the scenario body kept the event loop from turning for longer than its "
                     f"timeout ({spec.timeout:g} s){watchdog.blocked}")
        if timed_out and silence is not None and not named_half_open:
            # the peer went quiet, or left its stream unfinished, while quicsim waited on it
            ours = conns[0]
            peer_silence = silence.judge(ours, sum(1 for p in ledger.pending_sends() if p["connection"] == ours.label),
                                         ignore=pair.is_plumbing if isinstance(pair, (PeerPair, PeerClientPair))
                                         else None)
            if peer_silence is not None and error is not None:
                error += f"; the peer's doing: {peer_silence['text']}"
        if error is None and skipped is None:  # a body that failed is judged at once: nothing to wait for
            # Liveness first (heal the network, give every send a deadline, report what is
            # still pending as stalled), then a bounded settle before the teardown.
            await liveness_phase(ledger, network,
                                 VIRTUAL_LIVENESS_SECONDS if transport == "memory" else LIVENESS_SECONDS)
            await _settle(conns, min(deadline, loop.time() + SETTLE_SECONDS), pair)
            pair.judge_left()  # before the teardown closes anything: one finding per send
            unsettled = _pending_text(ledger, conns, pair) or None
    except asyncio.TimeoutError as exc:
        error = error or f"TimeoutError: {exc}"
    except (ConnectionError, OSError, BackendError, PeerNotInstalled) as exc:
        error = error or f"{type(exc).__name__}: {exc}"
    except BaseException:
        if tracer is not None:
            tracer.close()  # Ctrl-C keeps what was traced
        raise
    finally:
        if pair is not None:
            virtual = transport == "memory"
            clean = await pair.shutdown(VIRTUAL_TEARDOWN_SECONDS if virtual else TEARDOWN_SECONDS)
            if virtual and not clean and error is None:
                error = (f"hang: a connection did not reach SHUTDOWN_COMPLETE within "
                         f"{VIRTUAL_TEARDOWN_SECONDS:g} s of virtual time after the teardown began")
        await asyncio.sleep(0)
    conns = [c for c in ((pair.client, pair.server) if pair else ()) if c is not None]
    core_errors += [text for c in conns for text in c.core.state_errors]
    if core_errors and error is None:
        # A broken rule of the core itself (an illegal state move, the exactly-once
        # bookkeeping): a quicsim bug, reported as the run's error.
        error = f"core state error: {core_errors[0]}"
    handler_errors = [f"{c.label}: {type(e).__name__}: {e}" for c in conns for e in c.handler_errors]
    if handler_errors and error is None:
        error = "handler raised: " + "; ".join(handler_errors[:3])
    # What observers and output files could not do (a full disk, say): the verdict stands,
    # unless the ledger itself is what failed (a quicsim bug: nothing judged the run).
    failed_observers = [(o, text) for c in conns for o, _exc, text in getattr(c.core, "observer_errors", ())]
    ledger_failed = [text for o, text in failed_observers if o is ledger]
    if ledger_failed and error is None:
        error = f"the ledger failed: {ledger_failed[0]}"
    # (the tracer says its own below, once for both sides)
    output_errors = list(dict.fromkeys(text for o, text in failed_observers if o is not ledger and o is not tracer))
    report = ledger.report()
    outcome = None
    if recorder is not None and spec.expect_outcomes is not None:
        outcome = recorder.outcome({"leaks": report["leaks"], "error": error})
        if outcome not in spec.expect_outcomes and error is None:
            error = f"outcome not in expect_outcomes: {outcome}"
    if skipped is not None:
        passed = error is None
    elif spec.expect == "ok":
        passed = error is None and report["ok"]
    elif spec.expect == "leak":
        passed = error is None and bool(report["leaks"])
    else:
        passed = error is None and bool(report["violations"])
    output_errors += record_findings(report, spec.expect, passed, [error] if error else [], tracer, qlog)
    if tracer is not None:
        tracer.close()
        failed = tracer.failed
        text = f"the trace {tracer.path}: {type(failed).__name__}: {failed}"
        if failed is not None and text not in output_errors:
            output_errors.append(text)
    if wire is not None and options.trace_dir:
        (Path(options.trace_dir) / f"{spec.name}-seed{seed}.wire").write_text("".join(f"{w}\n" for w in wire))
    return {
        "scenario": spec.name,
        "file": spec.file,
        "seed": seed,
        "expect": spec.expect,
        "passed": passed,
        "error": error,
        "unsettled": unsettled,
        **report,
        "network": network_spec,
        "faults": sorted(applied_faults),
        "send_buffering": client_settings.send_buffering,
        "preempt": client_settings.preempt,
        "preempt_window_ms": client_settings.preempt_window_ms,
        "link": {d: dict(s) for d, s in network.stats.items()},  # per direction: what the link did
        "notes": context.notes if context else [],
        "transport": transport,
        "backend": options.backend,
        "peer": peer,
        "peer_client": peer_client,
        **({"peer_silence": peer_silence} if peer_silence is not None else {}),
        **({"skipped": skipped} if skipped is not None else {}),
        **({"peer_events": context.peer.events} if context is not None and context.peer is not None else {}),
        "connected": pair is not None,  # False: the handshake never completed (no body ran)
        **({"outcome": outcome} if outcome is not None else {}),
        **({"probes": dict(probes.hits)} if probes is not None else {}),
        "wall_time": round(time.monotonic() - wall_start, 3),
        "trace": str(tracer.path) if tracer is not None else None,
        "output_errors": output_errors,
    }



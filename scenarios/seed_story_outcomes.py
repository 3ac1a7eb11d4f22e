"""The seed story and its variants, each with every outcome MsQuic's code allows.

Race: StreamStart, sends 1-3, StreamShutdown(GRACEFUL), then one or two late sends, with
no waits; in two variants the handler calls StreamClose inside the first canceled
SEND_COMPLETE (MsQuic issue 4307). On the library (msquic-observed §1, §2) MsQuic's worker
runs between any two statements, applying queued calls and processing the peer's ACKs:
a late send is acknowledged (the FIN goes after it), refused with INVALID_STATE (the
shutdown was applied first), or canceled when it is flushed after the FIN, before, among
or after the acknowledgements of 1-3. A close in the first canceled completion aborts the
stream: what is still outstanding completes canceled inside the close, then
SEND_SHUTDOWN_COMPLETE(graceful=0) and SHUTDOWN_COMPLETE. quicsim keeps every completion;
MsQuic itself loses the late send still queued at the close (``--inject reentrant-close``).

``quicsim outcomes scenarios/seed_story_outcomes.py -k seed_story_close`` counts the
outcomes over 200 seeds with the preemption model calibrated on the library.
"""

from __future__ import annotations

from itertools import combinations

from quicsim import AnyStreamEvent, ScenarioContext, Stream, StreamEventType, StreamShutdownFlags, scenario

ACKED = ["1a", "2a", "3a"]


def _interleave(acks: list[str], canceled: list[str]) -> list[list[str]]:
    """Every order of ``acks`` with ``canceled`` placed among them, each list in its order."""
    n = len(acks) + len(canceled)
    orders = []
    for places in combinations(range(n), len(canceled)):
        a, c, order = iter(acks), iter(canceled), []
        for i in range(n):
            order.append(next(c) if i in places else next(a))
        orders.append(order)
    return orders


def _peer_fin_placed(order: list[str]) -> list[list[str]]:
    """``order`` then SEND_SHUTDOWN_COMPLETE, with the peer's FIN (PEER_SEND_SHUTDOWN, raised by
    QuicStreamRecvFlush when the FIN is read, whatever our send side is doing) put
    everywhere it can arrive: the peer ends its direction once it has our FIN, but the ACKs
    of our data may reach us after it (a lost ACK, or a peer that sends its FIN in an
    earlier packet than the ACK). The cancels come first: they happen at the flush, in
    the worker's pass that applies the shutdown, before the FIN has even left."""
    events = order + ["SSC(g=1)"]
    last_cancel = max((i + 1 for i, e in enumerate(order) if e.endswith("c")), default=0)
    return [events[:i] + ["PEER_FIN"] + events[i:] for i in range(last_cancel, len(events) + 1)]


def allowed_outcomes(late: int, close: bool) -> frozenset[str]:
    """What MsQuic's code allows for sends 1-3, GRACEFUL, ``late`` late sends (4, 5..),
    with or without StreamClose in the first canceled completion, every send completed."""
    outcomes = set()
    lates = [str(4 + i) for i in range(late)]
    # The shutdown is applied after the first `before` late sends were queued: those go
    # before the FIN (acknowledged, or canceled by an abort); the rest are either all
    # refused (the call came after the shutdown was applied) or all canceled at their
    # flush (called before, flushed after); a refusal is final, so refused ones are a suffix.
    for before in range(late + 1):
        data = ACKED + [f"{n}a" for n in lates[:before]]
        rest = lates[before:]
        for refused_count in range(len(rest) + 1):
            canceled = rest[:len(rest) - refused_count]
            refused = rest[len(rest) - refused_count:]
            head = "s1: " + (f"refused {' '.join(f'{n}=INVALID_STATE' for n in refused)}; " if refused else "")
            if not canceled:
                for events in _peer_fin_placed(data):
                    outcomes.add(head + "START " + " ".join(events) + " SC")
            elif not close:
                for order in _interleave(data, [f"{n}c" for n in canceled]):
                    for events in _peer_fin_placed(order):
                        outcomes.add(head + "START " + " ".join(events) + " SC")
            else:
                # acknowledged: a prefix of the data; then the first canceled completion,
                # inside which the close cancels the rest, in send order
                for j in range(len(data) + 1):
                    tail = [f"{d[:-1]}c" for d in data[j:]] + [f"{n}c" for n in canceled[1:]]
                    outcomes.add(head + "START " + " ".join(data[:j] + [f"{canceled[0]}c"] + tail)
                                 + " SSC(g=0) SC")
    return frozenset(outcomes)


async def _story(ctx: ScenarioContext, late: int, close: bool) -> None:
    closed: list[bool] = []

    def handler(stream: Stream, event: AnyStreamEvent) -> None:
        # MsQuic 4307: StreamClose inside the first canceled SEND_COMPLETE
        if close and event.type is StreamEventType.SEND_COMPLETE and event.canceled and not closed:
            closed.append(True)
            stream.close()

    stream = ctx.client.open_stream(handler=handler)
    stream.start()
    for n in (1, 2, 3):
        stream.send(b"x" * 1000, client_context=n)
    stream.shutdown(StreamShutdownFlags.GRACEFUL)
    for n in range(4, 4 + late):
        stream.send(b"y" * 10, client_context=n)
    await stream.wait_shutdown_complete(timeout=10)


@scenario(expect_outcomes=allowed_outcomes(1, False))
async def seed_story(ctx: ScenarioContext) -> None:
    await _story(ctx, 1, False)


@scenario(expect_outcomes=allowed_outcomes(2, False))
async def seed_story_two_late(ctx: ScenarioContext) -> None:
    await _story(ctx, 2, False)


@scenario(expect_outcomes=allowed_outcomes(1, True))
async def seed_story_one_late_close(ctx: ScenarioContext) -> None:
    await _story(ctx, 1, True)


@scenario(expect_outcomes=allowed_outcomes(2, True))
async def seed_story_close(ctx: ScenarioContext) -> None:
    await _story(ctx, 2, True)

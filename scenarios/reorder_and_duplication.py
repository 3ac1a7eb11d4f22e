"""Heavy reordering and duplication in both directions.

Race: ACK ranges arrive out of order and twice; duplicated STREAM frames and ACKs
must never complete a send twice or before its bytes are all acknowledged (MsQuic
completes a send only once its whole range is below UnAckedOffset).
"""

from quicsim import ScenarioContext, SendFlags, scenario


@scenario(network={"reorder": 0.3, "reorder_delay_ms": 15, "duplicate": 0.2, "jitter_ms": 5,
                   "delay_ms": 10}, timeout=30, repeat=2)
async def reorder_and_duplication(ctx: ScenarioContext) -> None:
    streams = []
    for n in range(4):
        s = ctx.client.open_stream()
        s.start()
        for i in range(20):
            s.send(bytes(3000), client_context=(n, i))
        s.send(b"end", SendFlags.FIN, client_context=(n, "fin"))
        streams.append(s)
    await ctx.wait_all_shutdown_complete(streams, timeout=25)
    assert ctx.ledger.completions == 4 * 21

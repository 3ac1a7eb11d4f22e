"""Many streams times many sends under 10% loss, each stream ending with a FIN.

Race: retransmissions, out-of-order ACKs and FINs acknowledged before the data in
front of them; as in MsQuic, completions must still come once each, in send order
per stream.
"""

from quicsim import ScenarioContext, SendFlags, Settings, scenario

ROOMY = Settings(peer_bidi_stream_count=200)


@scenario(network={"loss": 0.1, "delay_ms": 5}, timeout=40, settings=ROOMY)
async def many_streams_lossy(ctx: ScenarioContext) -> None:
    streams = []
    for n in range(20):
        s = ctx.client.open_stream()
        s.start()
        for i in range(25):
            s.send(bytes(ctx.random.randint(0, 3000)), client_context=(n, i))
        s.send(b"", SendFlags.FIN, client_context=(n, "fin"))
        streams.append(s)
    await ctx.wait_all_shutdown_complete(streams, timeout=35)
    assert ctx.ledger.completions == 20 * 26 and ctx.ledger.canceled == 0

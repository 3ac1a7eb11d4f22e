"""``quicsim demo``: a client and server on 127.0.0.1 race sends against a graceful
shutdown over a lossy link, printing every call and event of both sides live."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

from . import api
from . import events as ev
from .enums import SendFlags, Status, StreamEventType, StreamShutdownFlags
from .ledger import Ledger
from .network import Network
from .observer import Observer
from .settings import Settings
from .transport.relay import Relay

_SIDE_STYLE = {"client": "cyan", "server": "magenta"}


def _fields(event: object) -> str:
    if not is_dataclass(event):
        return ""
    parts = []
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name == "buffers" or (f.default is not MISSING and value == f.default and f.name != "canceled"):
            continue  # defaults say nothing: keep lines short
        if f.name == "stream":
            parts.append(f"stream={value.id}")
        else:
            parts.append(f"{f.name}={value.name if hasattr(value, 'name') and not isinstance(value, str) else value!r}")
    return " ".join(parts)


#: What the demo's columns and colours mean (printed above its first line).
LEGEND = (
    "time: seconds since the start   side: client or server   stream: its id (hN: not started yet, "
    "its handle; -: the connection)",
    "what: call NAME = an API call (-> the status it returned), NAME = a stream event, conn NAME = a "
    "connection event,",
    "      FAULT = an injected fault acting; then the call's arguments or the event's fields",
    "SEND_COMPLETE in green: acknowledged; in yellow: canceled (every accepted send gets exactly one)",
)


class EventPrinter(Observer):
    """Prints one line per call and event: time, side, stream, what, fields."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.start = time.monotonic()

    def legend(self) -> None:
        """The legend, then a header over the columns :meth:`_line` prints."""
        for line in LEGEND:
            self.console.print(line, style="dim", markup=False)
        self.console.print(Text(f"{'time':>8} {'side':<7} {'stream':>6} {'what':<36}fields", style="bold"))

    def _line(self, conn: Any, stream: Any, what: str, detail: str, style: str = "") -> None:
        side = conn.label.split("#")[0]
        t = Text(f"{time.monotonic() - self.start:8.3f} ", style="dim")
        t.append(f"{conn.label:<7}", style=_SIDE_STYLE.get(side, ""))
        sid = "-" if stream is None else (str(stream.id) if stream.id is not None else f"h{stream.handle}")
        t.append(f" {sid:>6} ")
        t.append(f"{what:<36}", style=style)
        t.append(detail)
        self.console.print(t)

    def api_call(self, conn: Any, stream: Any, name: str, status: Any, args: dict[str, Any]) -> None:
        shown: dict[str, Any] = {k: (v.name if isinstance(v, enum.Flag) else v) for k, v in args.items()
                                 if v is not None and k != "reason"}
        if "flags" in shown and name == "send":
            shown["flags"] = SendFlags(int(shown["flags"])).name or "NONE"
        elif "flags" in shown and name == "shutdown":
            shown["flags"] = StreamShutdownFlags(int(shown["flags"])).name
        status_text = f" -> {status.name}" if isinstance(status, Status) else ""
        detail = " ".join(f"{k}={v!r}" for k, v in shown.items()) + status_text
        self._line(conn, stream, f"call {name}", detail, "dim" if status is None or not status.failed else "yellow")

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        style = "bold"
        if event.type.name == "SEND_COMPLETE":
            style = "yellow" if event.canceled else "green"
        self._line(conn, stream, event.type.name, _fields(event), style)

    def connection_event(self, conn: Any, event: Any) -> None:
        self._line(conn, None, f"conn {event.type.name}", _fields(event), "bold blue")

    def fault_hit(self, conn: Any, stream: Any, fault: str, what: str) -> None:
        self._line(conn, stream, f"FAULT {fault}", what, "bold red")


async def run_demo(console: Console, *, faults: tuple[str, ...] = (), loss: float = 0.05, seed: int = 1,
                   ledger: Ledger | None = None) -> Ledger:
    ledger = ledger if ledger is not None else Ledger()
    printer = EventPrinter(console)
    loop = asyncio.get_running_loop()
    listener = await api.listen(ledger=ledger, observers=(printer,))
    network = Network({"loss": loss, "delay_ms": 5}, seed, loop.time)
    relay = await Relay(("127.0.0.1", listener.port), network).start()
    console.print(f"server on 127.0.0.1:{listener.port}, client through a relay on 127.0.0.1:{relay.port} "
                  f"({loss:.0%} loss, 5 ms delay, seed {seed})" + (f", faults: {', '.join(faults)}" if faults else ""))
    printer.legend()
    try:
        client = await api.connect("127.0.0.1", relay.port, settings=Settings(faults=frozenset(faults)),
                                   ledger=ledger, observers=(printer,))
    except BaseException:
        listener.close()
        relay.close()
        raise
    try:
        acked = asyncio.Event()
        completed: list[str] = []

        def close_on_cancel(stream: api.Stream, event: ev.AnyStreamEvent) -> None:
            # A common MsQuic pattern: give up on the stream at its first canceled send.
            # Closing from inside the worker's cancel loop is where MsQuic itself loses the
            # rest of the loop's completions (--inject reentrant-close shows it).
            if event.type is StreamEventType.SEND_COMPLETE:
                completed.append(event.client_context)
                if len(completed) == 3:
                    acked.set()
                if event.canceled:
                    stream.close()

        stream = client.open_stream(handler=close_on_cancel)
        stream.start()
        for i in range(3):
            stream.send(b"x" * 4000, client_context=f"req-{i}")
        try:
            await asyncio.wait_for(acked.wait(), 10)  # the first three are acknowledged
        except asyncio.TimeoutError:
            console.print("the first sends were not acknowledged within 10 s", style="red")
        stream.shutdown(StreamShutdownFlags.GRACEFUL)
        stream.send(b"late", client_context="req-late")  # accepted: the shutdown is not applied yet
        stream.send(b"late", client_context="req-late-2")
        try:
            await stream.wait_shutdown_complete(timeout=10)
        except asyncio.TimeoutError:
            console.print("stream did not finish within 10 s", style="red")
        client.shutdown()
        await client.wait_shutdown_complete(timeout=5)
    finally:
        client.close()
        listener.close()
        relay.close()
        await asyncio.sleep(0)
    return ledger

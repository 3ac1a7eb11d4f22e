"""``quicsim run``'s options, declared once in :data:`RUN_OPTIONS`: each one's flag, help
and parser, the :class:`RunOptions` field it sets, the Settings field it overrides on both
sides, and whether the "reproduce:" line must carry it. The parser, RunOptions, both
sides' settings and the reproduce line are all made from that table, so an option cannot
be left out of one of them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .peers import PEERS
from .peers.clients import CLIENT_PEERS
from .settings import FAULTS, MAX_WINDOW_MS, Settings, check_faults

__all__ = ["RUN_OPTIONS", "RunOption", "RunOptions", "add_run_options", "fault", "number"]


def number(kind: type, ok: Callable[[Any], bool], need: str) -> Callable[[str], Any]:
    """An argparse type: parse the text as ``kind``, then require ``ok(value)``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {need}, got {text}")
        return value

    return parse


def fault(text: str) -> str:
    """An argparse type: one of :data:`FAULTS`."""
    try:
        check_faults([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


fraction = number(float, lambda v: 0.0 <= v <= 1.0, "a fraction in [0, 1]")
chance = number(float, lambda v: 0 <= v <= 1, "from 0 to 1")
window_ms = number(float, lambda v: 0 <= v <= MAX_WINDOW_MS, f"from 0 to {MAX_WINDOW_MS:g}")
non_negative = number(float, lambda v: v >= 0, ">= 0")
positive_int = number(int, lambda v: v >= 1, ">= 1")


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides applied to every scenario (those of ``quicsim run`` are
    declared in :data:`RUN_OPTIONS`; the rest are for in-process callers)."""

    network: dict[str, Any] = field(default_factory=dict)  # merged over the scenario's own
    faults: frozenset[str] = frozenset()
    seed: int | None = None
    repeat: int | None = None
    trace_dir: str | None = None  # one JSON Lines trace per run when set
    transport: str | None = None  # overrides the scenarios' own
    send_buffering: bool | None = None  # overrides both sides' Settings.send_buffering
    preempt: float | None = None  # overrides both sides' Settings.preempt
    preempt_window_ms: float | None = None  # overrides both sides' Settings.preempt_window_ms
    wire_log: bool = False  # memory transport with trace_dir: also write <run>.wire (one line per datagram)
    virtual_budget: float | None = None  # memory transport: virtual seconds before a run is a hang
    probes: bool = False  # count state-coverage probe hits (result["probes"])
    #: check the core's exactly-once bookkeeping after every operation (the fuzzer does)
    check_invariants: bool = False
    #: run each seed twice and compare (quicsim run --check-determinism; the caller does it)
    check_determinism: bool = False
    #: "simulator", or "msquic": the real libmsquic on both ends (msquic_lib, else
    #: $QUICSIM_MSQUIC_LIB, else the system's)
    backend: str = "simulator"
    msquic_lib: str | None = None
    #: a foreign stack as the server (quicsim.peers.PEERS), overriding the scenarios' own
    #: @scenario(peer=...); None: quicsim's server
    peer: str | None = None
    #: a foreign stack as the client (quicsim.peers.clients.CLIENT_PEERS), quicsim's server
    #: its peer, overriding the scenarios' own @scenario(peer_client=...); None: quicsim's client
    peer_client: str | None = None
    #: more observers for every run (in-process callers: quicsim diff's outcome recorder)
    observers: tuple[Any, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunOptions":
        """The options :func:`add_run_options` parsed into ``args``."""
        values: dict[str, Any] = {}
        network: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            value = option.to_field(getattr(args, option.dest))
            if option.network_key is not None:
                if value is not None:
                    network[option.network_key] = value
            elif value is not None:  # (None: the field's default)
                values[option.attr] = value
        return cls(network=network, **values)

    def settings_for(self, client: Settings, server: Settings) -> tuple[Settings, Settings]:
        """Both sides' settings under these options: the faults go to the client, each
        option that names a Settings field overrides it on both sides."""
        if self.faults:
            client = replace(client, faults=client.faults | self.faults)
        for option in RUN_OPTIONS:
            value = option.value_in(self)
            if option.settings is not None and value is not None:
                client = replace(client, **{option.settings: value})
                server = replace(server, **{option.settings: value})
        return client, server

    def command_args(self) -> list[str]:
        """The options that change what a run does, as ``quicsim run`` arguments: what the
        "reproduce:" line adds to the run's own file, scenario and seed."""
        args: list[str] = []
        for option in RUN_OPTIONS:
            if option.reproduce:
                args += option.command_args(option.value_in(self))
        return args


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: a float parses back exactly


@dataclass(frozen=True)
class RunOption:
    """One option of ``quicsim run``."""

    flag: str
    #: the RunOptions field it sets ("network" with ``network_key``: one key of it)
    attr: str
    help: str
    example: str  # a value it accepts, as typed (every option is tested with it)
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    action: str = "store"  # or "store_true", "append"
    network_key: str | None = None
    #: the Settings field it overrides on both sides
    settings: str | None = None
    #: False: it changes what is written or counted, not what a run does
    reproduce: bool = True
    #: typed text (after ``type``) -> field value, and back
    parse: Callable[[Any], Any] = lambda value: value
    unparse: Callable[[Any], Any] = lambda value: value

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help}
        if self.action == "store_true":
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=self.type, choices=self.choices, metavar=self.metavar)
            if self.action == "append":
                kwargs.update(action="append", default=[])
        parser.add_argument(self.flag, **kwargs)

    def to_field(self, value: Any) -> Any:
        if self.action == "append":
            return frozenset(value)
        if self.action == "store_true":
            return bool(value)
        return None if value is None else self.parse(value)

    def value_in(self, options: RunOptions) -> Any:
        if self.network_key is not None:
            return options.network.get(self.network_key)
        return getattr(options, self.attr)

    def command_args(self, value: Any) -> list[str]:
        if self.action == "append":
            return [arg for item in sorted(value) for arg in (self.flag, _text(item))]
        if self.action == "store_true":
            return [self.flag] if value else []
        default = None if self.network_key else RunOptions.__dataclass_fields__[self.attr].default
        if value is None or value == default:
            return []
        return [self.flag, _text(self.unparse(value))]


#: Every option of ``quicsim run`` but the paths, -k, --json and --report.
RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("--seed", "seed", "first seed (overrides the scenarios' own)", "7", type=int,
              reproduce=False),  # the reproduce line names the run's own seed
    RunOption("--repeat", "repeat", "seeds per scenario (overrides repeat=)", "3", type=positive_int,
              reproduce=False),  # ... and --repeat 1
    RunOption("--loss", "network", "loss fraction for both directions, overriding the files'", "0.25",
              type=fraction, network_key="loss"),
    RunOption("--delay-ms", "network", "one-way delay, overriding the files'", "12.5", type=non_negative,
              network_key="delay_ms"),
    RunOption("--inject", "faults", f"switch a fault on in every client ({', '.join(FAULTS)})",
              "drop-send-after-shutdown", type=fault, metavar="FAULT", action="append"),
    RunOption("--trace", "trace_dir", "write a JSON Lines trace and two qlog files of every run into DIR",
              "traces", metavar="DIR", reproduce=False),
    RunOption("--send-buffering", "send_buffering",
              "force MsQuic's SendBufferingEnabled on or off on both sides of every scenario", "on",
              choices=("on", "off"), settings="send_buffering",
              parse=lambda text: text == "on", unparse=lambda on: "on" if on else "off"),
    RunOption("--preempt", "preempt",
              "after each API call the worker runs at once with probability P (drawn from the seed), as "
              "MsQuic's worker thread may; 0 (default): only when the loop runs it", "0.3",
              type=chance, metavar="P", settings="preempt"),
    RunOption("--preempt-window", "preempt_window_ms",
              "at a preemption point the network moves too: virtual time jumps by up to MS ms and the "
              "datagrams, handlers and timers due in it run (memory transport)", "2.5",
              type=window_ms, metavar="MS", settings="preempt_window_ms"),
    RunOption("--transport", "transport",
              "udp: loopback sockets through the relay; memory: in-memory link on virtual time", "memory",
              choices=("udp", "memory")),
    RunOption("--check-determinism", "check_determinism",
              "run each seed twice (memory transport) and compare trace, qlog and datagrams", "",
              action="store_true"),
    RunOption("--probes", "probes", "count state-coverage probe hits and list the probes no run reached", "",
              action="store_true", reproduce=False),
    RunOption("--backend", "backend",
              "simulator (default): quicsim's core on aioquic; msquic: the real libmsquic on both ends "
              "(scenarios that need the simulator are skipped, saying why)", "msquic",
              choices=("simulator", "msquic")),
    RunOption("--msquic-lib", "msquic_lib",
              "the libmsquic for --backend msquic (default: $QUICSIM_MSQUIC_LIB, else the system's)",
              "/opt/msquic/libmsquic.so", metavar="PATH"),
    RunOption("--peer", "peer",
              "a foreign QUIC stack as the server, quicsim's client against it (scenarios that need quicsim's "
              "server or the memory transport are skipped, saying why; see docs/peers.md)", "picoquic",
              choices=PEERS),
    RunOption("--peer-client", "peer_client",
              "a foreign QUIC stack as the client, quicsim's server its peer (scenarios that need quicsim's "
              "client or the memory transport are skipped, saying why; see docs/peers.md)", "quiche",
              choices=CLIENT_PEERS),
)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add every option of :data:`RUN_OPTIONS` to ``parser`` (quicsim run's)."""
    for option in RUN_OPTIONS:
        option.add_to(parser)

"""The worker's operations and their queue (MsQuic's QUIC_OPERATION and QuicConnQueueOper).

A call that changes state checks what it can at once, then queues one of these; the
connection's worker applies them later, in call order, except that ConnectionShutdown
goes before everything already queued and PRIORITY_WORK goes after earlier priority
work. That gap between the call and the worker is the race window quicsim exists for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Union

from ..enums import ConnectionShutdownFlags, StreamShutdownFlags, StreamStartFlags

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ConnectionCore
    from .stream import StreamCore


@dataclass(frozen=True, slots=True)
class StreamStart:
    """QUIC_OPER_TYPE_API_CALL / STRM_START."""

    kind: ClassVar[str] = "start"
    stream: StreamCore
    flags: StreamStartFlags

    def apply(self) -> None:
        self.stream.apply_start(self.flags)


@dataclass(frozen=True, slots=True)
class StreamSendFlush:
    """STRM_SEND: flush every send accepted since the last flush (one per batch)."""

    kind: ClassVar[str] = "send"
    stream: StreamCore

    def apply(self) -> None:
        self.stream.apply_send_flush()


@dataclass(frozen=True, slots=True)
class StreamShutdown:
    """STRM_SHUTDOWN."""

    kind: ClassVar[str] = "shutdown"
    stream: StreamCore
    flags: StreamShutdownFlags
    error_code: int

    def apply(self) -> None:
        self.stream.apply_shutdown(self.flags, self.error_code)


@dataclass(frozen=True, slots=True)
class StreamReceiveComplete:
    """STRM_RECV_COMPLETE: the application took ``length`` bytes of the RECEIVE it held."""

    kind: ClassVar[str] = "receive_complete"
    stream: StreamCore
    length: int

    def apply(self) -> None:
        self.stream.recv.apply_complete(self.length)


@dataclass(frozen=True, slots=True)
class StreamReceiveSetEnabled:
    """STRM_RECV_SET_ENABLED: pause or resume RECEIVE indications."""

    kind: ClassVar[str] = "receive_set_enabled"
    stream: StreamCore
    enabled: bool

    def apply(self) -> None:
        self.stream.recv.apply_set_enabled(self.enabled)


@dataclass(frozen=True, slots=True)
class ConnectionShutdown:
    """CONN_SHUTDOWN: queued ahead of every operation already queued."""

    kind: ClassVar[str] = "conn_shutdown"
    connection: ConnectionCore
    flags: ConnectionShutdownFlags
    error_code: int
    stream: ClassVar[None] = None

    def apply(self) -> None:
        self.connection.apply_shutdown(self.flags, self.error_code)


Operation = Union[StreamStart, StreamSendFlush, StreamShutdown, StreamReceiveComplete, StreamReceiveSetEnabled,
                  ConnectionShutdown]


class OperationQueue:
    """The connection's operation queue. Callers hold the connection's lock."""

    __slots__ = ("_ops", "_priority")

    def __init__(self) -> None:
        self._ops: deque[Operation] = deque()
        self._priority = 0  # how many operations at the head are priority work

    def __bool__(self) -> bool:
        return bool(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def push(self, op: Operation, priority: bool = False) -> None:
        """QuicConnQueueOper / QueuePriorityOper / QueueHighestPriorityOper."""
        if isinstance(op, ConnectionShutdown):
            self._ops.appendleft(op)
            self._priority += 1
        elif priority:
            self._ops.insert(self._priority, op)
            self._priority += 1
        else:
            self._ops.append(op)

    def pop(self) -> Operation | None:
        if not self._ops:
            return None
        if self._priority:
            self._priority -= 1
        return self._ops.popleft()


__all__: list[Any] = ["ConnectionShutdown", "Operation", "OperationQueue", "StreamReceiveComplete",
                      "StreamReceiveSetEnabled", "StreamSendFlush", "StreamShutdown", "StreamStart"]

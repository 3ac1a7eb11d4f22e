"""Which send buffers an application may still hold: each accepted send's
``client_context`` until its SEND_COMPLETE was delivered.

The ledger proves quicsim kept its side of the contract (one completion per accepted
send). Whether the application freed each buffer on that completion is the
application's own bookkeeping; :class:`Buffers` lets a test compare the two::

    buffers = Buffers()                     # an observer: open_pair(observers=(buffers,))
    ...                                     # or the quicsim_buffers fixture
    buffers.assert_matches(my_wrapper.outstanding)   # what the wrapper still holds
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from .enums import Status, StreamEventType
from .observer import Observer


class Buffers(Observer):
    """Accepted sends by ``client_context``: still held, or completed (acked or canceled).

    Contexts are kept as the objects passed to ``stream.send`` (compared with ``==``), so
    a test can match them against its own table. Only delivered completions count: one
    discarded by a fault leaves its buffer held, exactly as the application sees it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[int, int], Any] = {}  # (id(conn), send_id) -> client_context
        self._keep: dict[int, Any] = {}  # connections stay alive so their ids stay unique
        self._completed: list[tuple[Any, bool]] = []

    # -- observer hooks
    def send_call(self, conn: Any, stream: Any, send_id: int, status: Any, length: int, flags: int,
                  client_context: Any) -> None:
        if status is Status.PENDING:
            with self._lock:
                self._keep[id(conn)] = conn
                self._held[(id(conn), send_id)] = client_context

    def stream_event(self, conn: Any, stream: Any, event: Any) -> None:
        if event.type is StreamEventType.SEND_COMPLETE:
            with self._lock:
                self._held.pop((id(conn), event.send_id), None)
                self._completed.append((event.client_context, bool(event.canceled)))

    # -- queries
    def held(self) -> list[Any]:
        """Contexts of accepted sends whose SEND_COMPLETE has not been delivered, oldest first."""
        with self._lock:
            return list(self._held.values())

    def completed(self) -> list[tuple[Any, bool]]:
        """``(client_context, canceled)`` for each delivered SEND_COMPLETE, in order."""
        with self._lock:
            return list(self._completed)

    def mismatches(self, app_held: Iterable[Any]) -> list[str]:
        """How the application's table of outstanding contexts differs from the truth:
        buffers it still holds though their send completed (never freed), and buffers it
        let go though their send has not completed (freed too early)."""
        app = list(app_held)
        truth = self.held()
        problems = []
        for context in app:
            if context in truth:
                truth.remove(context)
            else:
                problems.append(f"still held by the application, but its send completed: {context!r}")
        problems += [f"released by the application before its SEND_COMPLETE: {c!r}" for c in truth]
        return problems

    def assert_matches(self, app_held: Iterable[Any]) -> None:
        """Raise AssertionError naming each context where ``app_held`` and quicsim disagree."""
        problems = self.mismatches(app_held)
        if problems:
            raise AssertionError("buffers: the application's table disagrees with the completions\n  "
                                 + "\n  ".join(problems))

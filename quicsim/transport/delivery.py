"""Datagrams scheduled for delivery in one direction, handed over in time order (FIFO
for equal times), with a single timer. Shared by the UDP relay and the in-memory link."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Callable


class DeliveryQueue:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[bytes], None], name: str = "") -> None:
        self.loop = loop
        self.deliver = deliver
        #: the direction it carries (a network window counts its deliveries under it)
        self.name = name
        self.heap: list[tuple[float, int, bytes]] = []
        self.seq = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    def schedule(self, data: bytes, delay: float) -> None:
        if delay <= 0 and not self.heap:
            self.loop.call_soon(self.deliver, data)  # nothing ahead of it: no timer needed
            return
        heapq.heappush(self.heap, (self.loop.time() + delay, next(self.seq), data))
        self._arm()

    def _arm(self) -> None:
        if not self.heap:
            return
        first = self.heap[0][0]
        if self.timer is not None:
            if self._armed_at is not None and self._armed_at <= first:
                return
            self.timer.cancel()
        self._armed_at = first
        self.timer = self.loop.call_at(first, self._flush)

    def _flush(self) -> None:
        self.timer = None
        self._armed_at = None
        now = self.loop.time()
        while self.heap and self.heap[0][0] <= now:
            _, _, data = heapq.heappop(self.heap)
            self.deliver(data)
        self._arm()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.heap.clear()

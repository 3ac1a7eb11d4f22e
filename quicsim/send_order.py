"""Rule 5 as the application sees it: which accepted send a SEND_COMPLETE answers, and
whether that send may complete now.

A completion carries only ``canceled`` and ``client_context``, so the book matches it to
a send by its context where that is unique among the stream's pending sends, and by
send order otherwise. Sends are kept in *runs*: a FIN send or a graceful shutdown call
starts a new run for the sends accepted after it. Within a run completions are FIFO;
the head of a later run may overtake older runs only when it is canceled (a send that
raced with the FIN or shutdown and was canceled when the worker applied it). An INLINE
graceful shutdown takes effect during the call, so it may cancel a tail of the sends
accepted before it: once, the book splits that tail into a run of its own.

Everything here is O(1) amortized per send and completion; the identities are the
book's own (``seq``), never the stack's.

Most streams never need more than FIFO: one run, each completion for the oldest pending
send. Until something else happens a book keeps its sends in a *lane* of plain tuples
(:data:`Entry`), cheap to make and to match; the first call or completion that needs the
general rules turns the lane into :class:`Send` objects, once, and the book stays general.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .enums import SendFlags

_FIN = int(SendFlags.FIN)
_DELAY_SEND = int(SendFlags.DELAY_SEND)


#: client contexts of these types are their own dict key (the usual case, kept inline)
_PLAIN = frozenset({int, str, bytes, float, type(None)})


def context_key(client_context: Any) -> Any:
    """A dict key for a client context: the value itself, or its identity if unhashable."""
    try:
        hash(client_context)
    except TypeError:
        return ("<unhashable>", id(client_context))
    return client_context


def send_name(connection: str, send_id: Any) -> str:
    """How every message names a send: its connection and the stack's send id
    (``client:4``), the form ``quicsim explain --send`` takes."""
    return f"{connection}:{send_id}"


class Send:
    """One accepted StreamSend as the application made it."""

    __slots__ = ("seq", "send_id", "length", "flags", "client_context", "key", "offset", "end", "fin",
                 "run", "done", "late", "leaked")

    def __init__(self, seq: int, send_id: Any, length: int, flags: int, client_context: Any) -> None:
        self.seq = seq  # the ledger's own number for this send call on its connection
        self.send_id = send_id  # the stack's id: printed, never used to match
        self.length = length
        self.flags = flags
        self.client_context = client_context
        self.key = client_context if type(client_context) in _PLAIN else context_key(client_context)
        self.offset = self.end = 0  # the stream bytes it occupies if it is ever queued
        self.fin = bool(flags & _FIN)
        self.run: Run | None = None
        self.done = False
        self.late = False  # accepted after a FIN or graceful shutdown call
        self.leaked = False  # reported as a leak (drop_pending)

    def label(self, connection: str) -> str:
        return f"{send_name(connection, self.send_id)} (client_context={self.client_context!r})"


class Run(deque[Send]):
    """Sends that complete in order among themselves (a deque of :class:`Send`)."""

    #: a split made this run (its head part or its canceled tail): with send buffering a
    #: late run splits at most once, where the shutdown's detached tail begins
    split = False


#: a send in the lane: (seq, send_id, length, flags, client_context, key, offset, end)
Entry = tuple[int, Any, int, int, Any, Any, int, int]


def send_of(entry: Entry) -> Send:
    """The :class:`Send` a lane entry stands for."""
    send = Send(entry[0], entry[1], entry[2], entry[3], entry[4])
    send.offset = entry[6]
    send.end = entry[7]
    return send


class SendBook:
    """The accepted, not yet completed sends of one stream, and the judging of completions."""

    __slots__ = ("runs", "by_key", "done_keys", "rejected_keys", "next_offset", "new_run", "inline_split",
                 "unqueued", "flushed_seq", "concurrent", "lane", "lane_done", "buffering", "after_shutdown")

    def __init__(self) -> None:
        #: pending sends, oldest first, while the book is plain FIFO (None once general):
        #: then ``runs`` holds one empty run and ``unqueued`` holds entries
        self.lane: deque[Entry] | None = deque()
        #: the seq of the last send completed from the lane (they complete in seq order)
        self.lane_done = 0
        self.runs: deque[Run] = deque([Run()])
        #: pending sends by client context, oldest first; built the first time a completion
        #: is not for the oldest pending send (in-order completions never need it)
        self.by_key: dict[Any, deque[Send]] | None = None
        #: the last completed send of each context (a lane entry until the book is general)
        self.done_keys: dict[Any, Send | Entry] = {}
        self.rejected_keys: dict[Any, int] = {}  # contexts of rejected sends -> their call number
        self.next_offset = 0
        self.new_run = False
        self.inline_split = False
        #: accepted sends whose ``send_queued`` notification has not come yet, oldest first
        self.unqueued: deque[Any] = deque()  # Send objects, or entries in the lane
        #: the call number of the last send that flushes DELAY_SEND data (or of the FIN)
        self.flushed_seq = 0
        #: sends came from a thread other than the worker's: the worker may have flushed
        #: part of a run between two of them, so a run may split where a cancel starts
        self.concurrent = False
        #: the stream's connection buffers sends (SendBufferingEnabled): see _overtaken
        self.buffering = False
        #: a FIN or graceful shutdown call was made: later sends are late
        self.after_shutdown = False

    # ------------------------------------------------------------ calls

    def add(self, seq: int, send_id: Any, length: int, flags: int, client_context: Any) -> None:
        """An accepted send: into the lane while the book is plain FIFO, else :meth:`accept`."""
        lane = self.lane
        if lane is None or self.new_run:
            # A send after a FIN or graceful shutdown call starts a second run: general rules.
            self.accept(Send(seq, send_id, length, flags, client_context))
            return
        offset = self.next_offset
        end = self.next_offset = offset + length
        entry = (seq, send_id, length, flags, client_context,
                 client_context if type(client_context) in _PLAIN else context_key(client_context), offset, end)
        lane.append(entry)
        self.unqueued.append(entry)
        # (as in accept)
        if flags & _FIN:
            self.flushed_seq = seq
            self.new_run = True
        elif not flags & _DELAY_SEND:
            self.flushed_seq = seq

    def _leave_lane(self) -> None:
        """Turn the lane into Send objects in the first run: the book is general from now on."""
        lane = self.lane
        if lane is None:
            return
        self.lane = None
        run = self.runs[0]
        made: dict[int, Send] = {}
        for entry in lane:
            send = send_of(entry)
            send.run = run
            run.append(send)
            made[id(entry)] = send
        # Entries no longer in the lane completed before they were queued: dropped, as
        # queued() would skip them.
        self.unqueued = deque(made[id(e)] for e in self.unqueued if id(e) in made)
        for key, done in self.done_keys.items():
            if type(done) is tuple:
                send = send_of(done)
                send.done = True
                self.done_keys[key] = send

    def accept(self, send: Send) -> None:
        self._leave_lane()
        if self.new_run:
            self.runs.append(Run())
            self.new_run = False
            self.after_shutdown = True
        run = self.runs[-1]
        send.run = run
        send.late = self.after_shutdown
        run.append(send)
        # Queued sends are a prefix of the accepted ones (a late send is canceled, and
        # nothing is queued after it), so a send's range follows from the sizes alone.
        send.offset = self.next_offset
        self.next_offset += send.length
        send.end = self.next_offset
        by_key = self.by_key
        if by_key is not None:
            same = by_key.get(send.key)
            if same is None:
                by_key[send.key] = deque((send,))
            else:
                same.append(send)
        self.unqueued.append(send)
        if send.fin or not send.flags & _DELAY_SEND:
            self.flushed_seq = send.seq
        if send.fin:
            self.new_run = True

    def reject(self, key: Any, seq: int) -> None:
        self.rejected_keys[key] = seq

    def shutdown_requested(self, graceful: bool, inline: bool, seq: int) -> None:
        """A StreamShutdown call that succeeded."""
        if graceful:
            self.new_run = True
            self.flushed_seq = seq  # the FIN writes what DELAY_SEND held back
            if inline:
                self.inline_split = True

    def lane_queued(self, offset: int, end: int, fin: bool) -> bool:
        """In the lane: a ``send_queued`` notification for exactly the range the oldest
        unqueued send should have (consumed, True). False, consuming nothing, when the
        book is general or the range differs: :meth:`queued` judges then."""
        if self.lane is None:
            return False
        unqueued = self.unqueued
        done = self.lane_done
        while unqueued and unqueued[0][0] <= done:
            unqueued.popleft()  # completed before it was queued (canceled)
        if unqueued:
            entry = unqueued[0]
            if entry[6] == offset and entry[7] == end and bool(entry[3] & _FIN) == bool(fin):
                unqueued.popleft()
                return True
        return False

    def queued(self) -> Send | None:
        """The send a ``send_queued`` notification is about: the oldest not yet queued
        that has not already completed (late sends are canceled without being queued)."""
        self._leave_lane()
        unqueued = self.unqueued
        while unqueued:
            send: Send = unqueued.popleft()  # Send objects once out of the lane
            if not send.done:
                return send
        return None

    # ------------------------------------------------------------ completions

    def front(self) -> Send | None:
        """The oldest pending send."""
        self._leave_lane()
        runs = self.runs
        while True:
            run = runs[0]
            while run and run[0].done:
                run.popleft()
            if run:
                return run[0]
            if len(runs) == 1:
                return None
            runs.popleft()

    def complete_front(self, canceled: bool, client_context: Any) -> Send | Entry | None:
        """The usual completion in one step: the oldest pending send carries this context
        (and, when canceled, no later run could claim it), so :meth:`complete` would pick it
        with no problem. Finishes and returns it (a lane entry while the book is plain
        FIFO); None when :meth:`complete` must judge."""
        lane = self.lane
        if lane is not None:
            # One run, so even a canceled completion may only be the front's.
            if not lane:
                return None
            entry = lane[0]
            key = client_context if type(client_context) in _PLAIN else context_key(client_context)
            if entry[5] != key:
                return None
            lane.popleft()
            self.lane_done = entry[0]
            self.done_keys[key] = entry
            return entry
        runs = self.runs
        run = runs[0]
        if not run or (canceled and len(runs) > 1):
            return None
        send = run[0]
        key = client_context if type(client_context) in _PLAIN else context_key(client_context)
        if send.done or send.key != key:
            return None
        run.popleft()
        self._finish(send)
        return send

    def complete(self, canceled: bool, client_context: Any) -> tuple[Send | None, str | None, Send | None]:
        """Match a SEND_COMPLETE; returns (send, problem, older). ``problem`` is None when
        the completion is allowed, else one of ``duplicate``, ``after_leak`` (the send was
        already reported leaked), ``rejected``, ``unknown``,
        ``context`` (matched to the oldest pending send despite another context) or
        ``order`` (``older`` is the pending send it overtook)."""
        self._leave_lane()
        key = client_context if type(client_context) in _PLAIN else context_key(client_context)
        by_key = self.by_key
        if by_key is None:
            by_key = self.by_key = {}
            for pending in self.pending():  # once per book: O(1) amortized per send
                same = by_key.get(pending.key)
                if same is None:
                    by_key[pending.key] = deque((pending,))
                else:
                    same.append(pending)
        candidates = by_key.get(key)
        problem = None
        if not candidates:
            done = self.done_keys.get(key)
            if done is not None:
                assert isinstance(done, Send)  # the lane was left above
                # (a completion that comes after its send was reported leaked is no second
                # finding: the teardown closed what the application left)
                return done, "after_leak" if done.leaked else "duplicate", None
            if key in self.rejected_keys:
                return None, "rejected", None
            send = self.front()
            if send is None:
                return None, "unknown", None
            problem = "context"
        elif len(candidates) == 1:
            send = candidates[0]
        else:
            send = self._pick(key, canceled, candidates)
        older = self._overtaken(send, canceled)
        self._finish(send)
        if problem is None and older is not None:
            problem = "order"
        return send, problem, older

    def _pick(self, key: Any, canceled: bool, candidates: deque[Send]) -> Send:
        """Several pending sends share this context: the one allowed to complete now.

        A canceled completion goes to the head of the latest run that matches: a send
        accepted after a FIN or graceful shutdown call and canceled when the worker
        applied it, while older sends of the same context may still be acknowledged.
        (When everything is being canceled, which of two equal contexts is which does
        not matter; matching the front instead would make a later acknowledgement look
        like one for a send that never reached the peer.)"""
        front = self.front()
        if canceled:
            late = None
            for run in self.runs:
                for send in run:
                    if not send.done:
                        if send.key == key:
                            late = send
                        break  # only the head of a run may overtake
            if late is not None:
                return late
        if front is not None and front.key == key:
            return front
        return candidates[0]

    def _overtaken(self, send: Send, canceled: bool) -> Send | None:
        """The older pending send that ``send`` may not overtake, or None."""
        run = send.run
        assert run is not None  # every accepted send belongs to a run
        while run[0].done:
            run.popleft()
        if run[0] is send and run is self.runs[0]:
            return None  # the oldest pending send: the usual, in-order case
        if run[0] is not send:
            # With send buffering a late run may split too: a flush that ran ahead of the
            # shutdown (a batch queued before the call, or PRIORITY_WORK) queued its first
            # sends, which wait for room in the buffer, while a send made from a completion
            # raised inside that flush was left to the shutdown to cancel (seen on the
            # library: s4a, s7 PENDING, s5a, s7c, s6a).
            if not (canceled and (self.inline_split or self.concurrent
                                  or (self.buffering and send.late and not run.split))):
                return run[0]
            self._split(send)
        front = self.front()
        if front is not send and not canceled:
            return front
        return None

    def _split(self, send: Send) -> None:
        """An INLINE graceful shutdown canceled ``send`` and the sends after it, which
        were accepted but not yet applied: they become a run of their own (once)."""
        self.inline_split = False  # the INLINE case splits once; concurrent calls may split each run
        run = send.run
        assert run is not None
        tail = Run()
        while run[-1] is not send:
            tail.appendleft(run.pop())
        tail.appendleft(run.pop())
        for moved in tail:
            moved.run = tail
        run.split = tail.split = True
        runs = self.runs
        for i, other in enumerate(runs):
            if other is run:
                runs.insert(i + 1, tail)
                break

    def _finish(self, send: Send) -> None:
        send.done = True
        by_key = self.by_key
        if by_key is not None:
            same = by_key[send.key]
            if same[0] is send:
                same.popleft()
            else:
                same.remove(send)
            if not same:
                del by_key[send.key]
        self.done_keys[send.key] = send

    # ------------------------------------------------------------ the end of a stream

    def pending(self) -> list[Send]:
        """Pending sends in send order."""
        self._leave_lane()
        return [send for run in self.runs for send in run if not send.done]

    def drop_pending(self) -> list[Send]:
        """Mark every pending send done (it is being reported) and return them."""
        out = self.pending()
        for send in out:
            send.leaked = True
            self._finish(send)
        self.runs = deque([Run()])
        self.unqueued.clear()
        return out

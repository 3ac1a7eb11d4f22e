"""The child process of a peer's server: spawn it, wait for its ``listening`` line (the
port is bound), keep reading its reports, stop it by process id; and the UDP sockets a
child has bound, read from /proc."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterable

from .handle import PeerHandle, PeerNotInstalled, normalize_behaviours

#: seconds a server has to print its listening line, and to exit after SIGTERM
START_SECONDS = 20.0
STOP_SECONDS = 3.0


class PeerProcess:
    """One server process and the task reading its JSON lines."""

    def __init__(self, name: str, behaviours: tuple[str, ...], argv: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.name, self.behaviours, self.argv, self.env = name, behaviours, argv, env
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None
        self.stderr: asyncio.Task[bytes] | None = None

    async def start(self) -> PeerHandle:
        """Spawn, then wait (on the child's own line, bounded) until it listens on 127.0.0.1."""
        self.proc = await asyncio.create_subprocess_exec(
            # stdin held open: a server ends when it reads its end (this process is gone)
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stderr = asyncio.ensure_future(self.proc.stderr.read())
        try:
            listening = await asyncio.wait_for(self._listening_line(), START_SECONDS)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, asyncio.TimeoutError):
                raise ConnectionError(f"the {self.name} peer did not listen within {START_SECONDS:g} s") from None
            raise
        if listening.get("host") != "127.0.0.1":
            await self.stop()
            raise ConnectionError(f"the {self.name} peer listens on {listening.get('host')}, not 127.0.0.1")
        handle = PeerHandle(self.name, self.behaviours, "127.0.0.1", int(listening["port"]), self.proc.pid,
                            bound=list(listening.get("bound", [])))
        self.reader = asyncio.ensure_future(self._read_reports(handle))
        return handle

    async def _listening_line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:  # it exited before listening: say what it said
                err = (await self.stderr).decode(errors="replace").strip() if self.stderr else ""
                last = err.splitlines()[-1] if err else f"exit status {await self.proc.wait()}"
                raise ConnectionError(f"the {self.name} peer exited before listening: {last}")
            record = _parse(line)
            if "error" in record:
                raise ConnectionError(f"the {self.name} peer refused to run: {record['error']} "
                                      f"{json.dumps(record.get('bound', ''))}")
            if "listening" in record:
                listening: dict[str, Any] = record["listening"]
                return listening

    async def _read_reports(self, handle: PeerHandle) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            record = _parse(line)
            if record:
                handle.record(record)

    async def stop(self) -> None:
        """SIGTERM to the process id, wait (bounded), SIGKILL if it is still there."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            await self._drain()
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
                break
            except asyncio.TimeoutError:
                continue
        await self._drain()

    async def _drain(self) -> None:
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        for task in (self.reader, self.stderr):
            if task is not None and not task.done():
                try:
                    await asyncio.wait_for(task, STOP_SECONDS)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    pass


def _parse(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def udp_sockets(pid: int) -> list[str]:
    """The local addresses (``0100007F:1F90``, as the kernel writes them) of ``pid``'s UDP sockets."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        found = []
        for table in ("udp", "udp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    found.append(fields[1])
    except OSError:
        return []
    return found


class ChildLauncher:
    """What every peer's launcher shares: run ``argv(behaviours)`` as a :class:`PeerProcess`
    and stop it by pid. A peer's module says how it is found, installed and started."""

    name = ""

    def __init__(self) -> None:
        self._processes: dict[int, PeerProcess] = {}

    def missing(self) -> str | None:  # pragma: no cover - each peer says
        raise NotImplementedError

    def argv(self, behaviours: tuple[str, ...]) -> list[str]:  # pragma: no cover - each peer says
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {**os.environ}

    def install_command(self) -> str:  # pragma: no cover - each peer says
        raise NotImplementedError

    def run_install(self) -> str | None:
        """Run :meth:`install_command` (a shell line); None when the peer runs afterwards,
        else why not, in one line."""
        done = subprocess.run(self.install_command(), shell=True, capture_output=True, text=True, timeout=600)
        self.forget_found()
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            return f"{self.install_command()} failed: {last}"
        return self.missing()

    def unsupported(self, behaviours: tuple[str, ...]) -> str | None:
        """Why the server cannot play ``behaviours`` (each peer that cannot says)."""
        return None

    def forget_found(self) -> None:
        """Whatever :meth:`missing` cached is out of date after an install."""

    async def start(self, behaviours: Iterable[str]) -> PeerHandle:
        chosen = normalize_behaviours(tuple(behaviours))
        reason = self.missing()
        if reason is not None:
            raise PeerNotInstalled(reason)
        process = PeerProcess(self.name, chosen, self.argv(chosen), self.env())
        handle = await process.start()
        self._processes[handle.pid] = process
        return handle

    async def stop(self, handle: PeerHandle) -> None:
        process = self._processes.pop(handle.pid, None)
        if process is not None:
            await process.stop()

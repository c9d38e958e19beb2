"""An in-memory Sandbox for unit tests of the core (tools, controller, sessions). End-to-end tests
use the real Docker sandbox; this fake only keeps files in a dict and answers commands from a
handler, so core tests run in milliseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path, PurePosixPath

from core.changes import md5
from core.errors import CommandRunningError, FileTooLargeError
from core.host_watch import HostFile, HostWatch
from core.output import OutputFile
from core.protocols import WORKDIR, CommandResult, PathKind, RunningCommand, Wait

CommandHandler = Callable[[str], Awaitable[CommandResult] | CommandResult]


def _abs(path: str) -> str:
    pure = PurePosixPath(path)
    return str(pure if pure.is_absolute() else PurePosixPath(WORKDIR) / pure)


def _in_workspace(path: str) -> bool:
    return path.startswith(WORKDIR + "/")


def _rel(path: str) -> str:
    return path[len(WORKDIR) + 1 :]


class FakeSandboxFactory:
    """A SandboxFactory over a function that makes (or hands back) in-memory sandboxes."""

    def __init__(self, make: Callable[[Path, str], Awaitable[InMemorySandbox]]) -> None:
        self._make = make
        self.reaped = 0
        self.prewarmed: list[Path] = []
        self.closed = False

    async def __call__(self, workspace: Path, session_id: str) -> InMemorySandbox:
        return await self._make(workspace, session_id)

    async def reap(self) -> int:
        self.reaped += 1
        return 0

    async def prewarm(self, workspace: Path, watch: HostWatch) -> None:
        self.prewarmed.append(workspace)

    async def aclose(self) -> None:
        self.closed = True


class InMemorySandbox:
    def __init__(self, files: dict[str, bytes] | None = None, handler: CommandHandler | None = None) -> None:
        self.files: dict[str, bytes] = {_abs(k): v for k, v in (files or {}).items()}
        self.baseline = dict(self.files)  # as copied in
        self._known = dict(self.files)  # as collect_changes last saw them
        self.handler = handler
        self.commands: list[str] = []
        self.interrupts = 0
        self.closed = False
        self.closed_event = asyncio.Event()
        self.running = asyncio.Event()  # set while a long command (`sleep ...`) runs
        self.inputs: list[bytes] = []  # what send_input was given
        self._interrupted = asyncio.Event()
        self._long: asyncio.Task[CommandResult] | None = None  # a `sleep` command still running
        self._long_command = ""
        self._long_started = 0.0

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        output_file: OutputFile | None = None,
        wait: Wait | None = None,
    ) -> CommandResult:
        if (running := self.running_command()) is not None:
            raise CommandRunningError("a command is running", running.command, running.elapsed)
        self.commands.append(command)
        if command.startswith("sleep "):  # a long command that only interrupt() or the timeout ends
            self._interrupted.clear()
            self.running.set()
            self._long_command, self._long_started = command, time.monotonic()
            self._long = asyncio.ensure_future(self._sleep(timeout))
            return await self._await_long(wait)
        if self.handler is None:
            return CommandResult(f"ran: {command}\n", 0)
        result = self.handler(command)
        return await result if not isinstance(result, CommandResult) else result

    async def _sleep(self, timeout: float | None) -> CommandResult:
        try:
            await asyncio.wait_for(self._interrupted.wait(), timeout)
        except TimeoutError:
            return CommandResult("", None, timed_out=True)
        finally:
            self.running.clear()
        return CommandResult("", None, interrupted=True)

    async def _await_long(self, wait: Wait | None) -> CommandResult:
        assert self._long is not None
        limit = None if wait is None else min(x for x in (wait.at_most, wait.quiet, 3600.0) if x is not None)
        done, _ = await asyncio.wait({self._long}, timeout=limit)
        if not done:
            return CommandResult("", None, running=True, elapsed=time.monotonic() - self._long_started)
        result, self._long = self._long.result(), None
        return result

    def running_command(self) -> RunningCommand | None:
        if self._long is None or self._long.done():
            return None
        return RunningCommand(self._long_command, time.monotonic() - self._long_started)

    async def wait_for_command(
        self, *, wait: Wait | None = None, output_file: OutputFile | None = None
    ) -> CommandResult:
        if self._long is None:
            raise CommandRunningError("no command is running")
        return await self._await_long(wait)

    async def send_input(self, data: bytes) -> None:
        if self.running_command() is None:
            raise CommandRunningError("no command is running")
        self.inputs.append(data)

    async def interrupt(self) -> None:
        self.interrupts += 1
        self._interrupted.set()
        if self._long is not None:
            await asyncio.wait({self._long})

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        path = _abs(path)
        if path in self.files:
            if max_bytes is not None and len(self.files[path]) > max_bytes:
                raise FileTooLargeError(path, len(self.files[path]), max_bytes)
            return self.files[path]
        if self._is_dir(path):
            raise IsADirectoryError(21, "Is a directory", path)
        raise FileNotFoundError(2, "No such file or directory", path)

    async def write_file(self, path: str, data: bytes) -> None:
        self.files[_abs(path)] = data

    async def delete_file(self, path: str) -> None:
        path = _abs(path)
        if path not in self.files:
            if self._is_dir(path):
                raise IsADirectoryError(21, "Is a directory", path)
            raise FileNotFoundError(2, "No such file or directory", path)
        del self.files[path]

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path == WORKDIR or any(f.startswith(prefix) for f in self.files)

    async def path_kind(self, path: str) -> PathKind | None:
        path = _abs(path)
        if path in self.files:
            return "file"
        return "dir" if self._is_dir(path) else None

    async def list_dir(self, path: str, max_depth: int = 2, *, hidden: bool = False) -> list[str]:
        root = _abs(path).rstrip("/") + "/"
        entries: set[str] = set()
        for name in self.files:
            if not name.startswith(root):
                continue
            parts = name[len(root) :].split("/")
            dot = next((i for i, p in enumerate(parts) if p.startswith(".")), None)
            if dot is not None:
                if hidden and dot < max_depth:  # listed, not descended into
                    entries.add("/".join(parts[: dot + 1]) + ("/" if dot + 1 < len(parts) else ""))
                continue
            for depth in range(1, min(len(parts), max_depth) + 1):
                is_dir = depth < len(parts)
                entries.add("/".join(parts[:depth]) + ("/" if is_dir else ""))
        return sorted(entries)

    @property
    def copied(self) -> Mapping[str, str]:
        return {_rel(p): md5(data) for p, data in self.baseline.items() if _in_workspace(p)}

    async def collect_changes(self) -> dict[str, bytes | None]:
        """Compares every file with what was known (a fake may: a real sandbox must not)."""
        changed = {
            _rel(p): self.files.get(p)
            for p in sorted(set(self.files) | set(self._known))
            if _in_workspace(p) and self.files.get(p) != self._known.get(p)
        }
        self._known = dict(self.files)
        return changed

    @property
    def left_out(self) -> Mapping[str, str]:
        return {}

    async def follow_host(self, files: Mapping[str, HostFile], expect: Mapping[str, str | None]) -> set[str]:
        taken = set()
        for rel, host in files.items():
            path = _abs(rel)
            held = self.files.get(path)
            if (None if held is None else md5(held)) != expect.get(rel):
                continue
            taken.add(rel)
            if host.content is None:
                for table in (self.files, self._known, self.baseline):
                    table.pop(path, None)
            else:
                self.files[path] = self._known[path] = self.baseline[path] = host.content
        return taken

    def take_refilled(self) -> bool:
        return False  # its files live as long as it does

    async def put_files(self, files: Mapping[str, bytes | None]) -> None:
        for rel, data in files.items():
            path = _abs(rel)
            if data is None:
                self.files.pop(path, None)
                self._known.pop(path, None)
            else:
                self.files[path] = self._known[path] = data

    async def close(self) -> None:
        self.closed = True
        self.closed_event.set()

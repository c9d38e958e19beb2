"""The persistent-shell protocol over a local `bash` subprocess: the baseline the Docker sandbox's
shell is benchmarked against (and a container-free shell for tests). Linux only (kills via /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from core.config import DEFAULT_OUTPUT_LIMIT
from sandbox.persistent_shell import KILL_TREE_SCRIPT, PersistentShell


class LocalShellProcess:
    """A `bash` child process with pipes; implements sandbox.persistent_shell.ShellProcess."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def spawn(cls, cwd: Path, env: Mapping[str, str] | None = None) -> LocalShellProcess:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "--noprofile",
            "--norc",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # a Ctrl-C in the host terminal must not reach the shell
        )
        return cls(process)

    async def send(self, data: bytes) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(data)
        await self._process.stdin.drain()

    async def receive(self) -> bytes:
        assert self._process.stdout is not None
        return await self._process.stdout.read(65536)  # cancel-safe: unread bytes stay buffered

    async def stop_command(self, shell_pid: int) -> None:
        await self._kill_tree(shell_pid, "command")

    async def kill_shell(self, shell_pid: int) -> None:
        await self._kill_tree(shell_pid, "shell")

    async def _kill_tree(self, shell_pid: int, mode: str) -> None:
        killer = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            KILL_TREE_SCRIPT,
            "sidehand-kill",
            str(shell_pid),
            mode,
            stdin=asyncio.subprocess.DEVNULL,
        )
        await killer.wait()

    async def exit_code(self) -> int | None:
        return await self._process.wait()

    async def close(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        await self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._process.stdin.wait_closed()


class HostShell(PersistentShell):
    """A persistent bash on the host, started in `cwd`. No isolation at all: baseline and tests only."""

    def __init__(
        self, cwd: Path, *, env: Mapping[str, str] | None = None, output_limit: int = DEFAULT_OUTPUT_LIMIT
    ) -> None:
        environment = dict(os.environ if env is None else env)

        async def spawn() -> LocalShellProcess:
            return await LocalShellProcess.spawn(cwd, environment)

        super().__init__(spawn, output_limit=output_limit)

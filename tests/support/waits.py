"""Waiting on a sandbox, bounded in time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from core.protocols import Sandbox


async def wait_for_path(sandbox: Sandbox, path: str, timeout: float = 10) -> None:
    """Until `path` exists in the sandbox, asked over its file channel (which a running command
    does not block): how a test knows a command it started has got that far."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if await sandbox.path_kind(path) is not None:
                return
            await asyncio.sleep(0.01)


async def wait_for_command_end(sandbox: Sandbox, timeout: float = 10) -> None:
    """Until the command a call left running in the sandbox has ended (its end not yet reported)."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if sandbox.running_command() is None:
                return
            await asyncio.sleep(0.01)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until `check()` holds: for what another thread (a file watcher) makes true, bounded in time."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110  (set from a watcher thread: no event to wait on)
            await asyncio.sleep(0.005)

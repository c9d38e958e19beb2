"""Ready sandboxes, per workspace folder: made ahead (container started, workspace copied, shells
open), following the host's changes while they wait, handed out at once, and replaced in the
background. The servers ask for them (`SandboxFactory.prewarm`) for the folders they serve, so a
new session or a code action runs its first command without waiting for a container."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from core.host_watch import HostWatch
from core.mirror import Follower, fresh_follower
from core.protocols import Sandbox

log = logging.getLogger(__name__)

Make = Callable[[Path, str], Awaitable[Sandbox]]  # (workspace, name) -> a new sandbox


@dataclass
class _Ready:
    sandbox: Sandbox
    follower: Follower


class SandboxPool:
    def __init__(self, make: Make, size: int) -> None:
        self._make = make
        self.size = size
        self._ready: dict[Path, list[_Ready]] = {}
        self._watches: dict[Path, HostWatch] = {}
        self._filling: set[asyncio.Task[None]] = set()
        self._closed = False

    def prewarm(self, workspace: Path, watch: HostWatch) -> None:
        """Keep `size` ready sandboxes of `workspace` from now on (made in the background)."""
        root = workspace.resolve()
        if self.size <= 0 or self._closed or root in self._watches:
            return
        self._watches[root] = watch
        self._ready.setdefault(root, [])
        for _ in range(self.size):
            self._fill(root)

    def _fill(self, root: Path) -> None:
        task = asyncio.create_task(self._make_one(root))
        self._filling.add(task)
        task.add_done_callback(self._filling.discard)

    async def _make_one(self, root: Path) -> None:
        watch = self._watches[root]
        follower = fresh_follower(watch)  # subscribed before the copy: no change falls between
        try:
            sandbox = await self._make(root, f"pool-{secrets.token_hex(3)}")
        except Exception as exc:
            await follower.close()
            log.warning("could not make a ready sandbox for %s: %s", root, exc)
            return
        except asyncio.CancelledError:
            await follower.close()
            raise
        follower.attach(sandbox)
        if self._closed:
            await follower.close()
            await sandbox.close()
            return
        self._ready[root].append(_Ready(sandbox, follower))
        log.debug("a ready sandbox for %s", root)

    async def claim(self, workspace: Path) -> Sandbox | None:
        """A ready sandbox of `workspace` holding the host's files as they are now (None: none is
        ready); another is made in its place."""
        root = workspace.resolve()
        ready = self._ready.get(root)
        if not ready:
            return None
        entry = ready.pop(0)
        self._fill(root)
        await entry.follower.idle.wait()  # every change reported so far is in it
        await entry.follower.close()
        return entry.sandbox

    @property
    def ready(self) -> int:
        return sum(len(entries) for entries in self._ready.values())

    async def aclose(self) -> None:
        """Remove every ready sandbox (and stop making more)."""
        self._closed = True
        for task in list(self._filling):
            task.cancel()
        await asyncio.gather(*self._filling, return_exceptions=True)
        entries = [entry for entries in self._ready.values() for entry in entries]
        self._ready.clear()
        for entry in entries:
            await entry.follower.close()
            with contextlib.suppress(Exception):
                await entry.sandbox.close()

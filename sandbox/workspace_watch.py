"""The host's side of `watch_workspace.py`: which workspace files the sandbox may have changed, known
as they change (inotify in the container), so recording a step's changes costs what changed, not
the size of the workspace.

`WorkspaceWatch.start` runs the watcher in its own exec; `sync()` returns every path reported
since the last `sync()` (a round trip on that exec: no file is written). When the image has no
python3, inotify is unavailable, or events were lost (overflow, the watch limit), `sync()` says
so and the sandbox scans the workspace instead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

WATCHER_SOURCE = (Path(__file__).with_name("watch_workspace.py")).read_text()
READY_TIMEOUT = 10.0  # the initial walk of a large workspace (adding a watch per folder)
SYNC_TIMEOUT = 10.0


class WatcherProcess(Protocol):
    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    async def close(self) -> None: ...


@dataclass
class Dirty:
    """What may have changed since the last sync: paths, folders removed (every known file below
    them), or `unknown` (events were lost, or there is no watcher: scan everything)."""

    paths: set[str] = field(default_factory=set)
    folders_gone: set[str] = field(default_factory=set)
    unknown: bool = False


def watcher_argv(workdir: str, excluded: tuple[str, ...]) -> list[str]:
    """The exec that runs the watcher with the image's python3 (exit 127 when it has none)."""
    script = 'command -v python3 >/dev/null 2>&1 || exit 127; exec python3 -c "$0" "$@" 2>/dev/null'
    return ["/bin/sh", "-c", script, WATCHER_SOURCE, workdir, *excluded]


class WorkspaceWatch:
    def __init__(self, process: WatcherProcess) -> None:
        self._process = process
        self._dirty = Dirty()
        self._buffer = bytearray()
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._counter = 0
        self._ended = False
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, process: WatcherProcess) -> WorkspaceWatch | None:
        """A running watch, or None (after closing `process`) when the watcher cannot run."""
        watch = cls(process)
        ready = watch._expect("ready")
        watch._reader = asyncio.create_task(watch._read())
        try:
            await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT)
        except (TimeoutError, ConnectionError) as exc:
            log.info(
                "no inotify watcher in the sandbox (%s): changes are found by scanning", exc or "timeout"
            )
            await watch.close()
            return None
        except BaseException:  # cancelled (the sandbox closes while the watcher starts)
            await asyncio.shield(watch.close())
            raise
        return watch

    async def sync(self) -> Dirty:
        """Everything reported up to now, and a fresh start."""
        if self._ended:
            return Dirty(unknown=True)
        self._counter += 1
        token = f"sync {self._counter}"
        ack = self._expect(token)
        try:
            await self._process.send(token.encode() + b"\n")
            await asyncio.wait_for(asyncio.shield(ack), SYNC_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.warning("the sandbox's file watcher stopped answering (%s): scanning from now on", exc)
            self._ended = True
            return Dirty(unknown=True)
        finally:
            self._acks.pop(token, None)
        dirty, self._dirty = self._dirty, Dirty()
        return dirty

    def _expect(self, word: str) -> asyncio.Future[None]:
        """A future the reader resolves when the watcher says `word` (or fails if it ends first).
        Its failure may have no reader left (a start or a sync given up): marked seen, not lost."""
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._acks[word] = ack
        return ack

    async def _read(self) -> None:
        try:
            while chunk := await self._process.receive():
                self._buffer += chunk
                *tokens, rest = bytes(self._buffer).split(b"\0")
                self._buffer = bytearray(rest)
                for token in tokens:
                    self._take(token)
        finally:
            self._ended = True
            for ack in self._acks.values():
                if not ack.done():
                    ack.set_exception(ConnectionError("the watcher ended"))

    def _take(self, token: bytes) -> None:
        if not token.startswith(b"\x01"):
            self._dirty.paths.add(token.decode("utf-8", "surrogateescape"))
            return
        word = token[1:].decode("utf-8", "surrogateescape")
        if word == "overflow":
            self._dirty.unknown = True
        elif word.startswith("gone "):
            self._dirty.folders_gone.add(word[5:])
        elif (ack := self._acks.get(word)) is not None and not ack.done():
            ack.set_result(None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._process.close()

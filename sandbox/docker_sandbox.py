"""The Docker sandbox: one hardened container per session, working on its own copy of the workspace,
with a persistent shell for commands, a second one for file operations, and an inotify watcher
that says which workspace files changed (so recording a step's changes costs what changed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from core.changes import md5
from core.errors import CommandRunningError, SandboxCrowdedError, SandboxError
from core.host_watch import HostFile, HostWatch
from core.ignore import IgnoreRules
from core.output import OutputFile
from core.owner import Owner
from core.protocols import WORKDIR, CommandResult, PathKind, RunningCommand, Wait
from sandbox.container import (
    SandboxSettings,
    connect_engine,
    container_labels,
    create_container,
    docker_errors,
    docker_executor,
    reap_orphans,
    remove_container,
)
from sandbox.docker_exec import POSIX_SH, PREFER_BASH, DockerExec, ExecShellProcess
from sandbox.file_channel import TOO_LARGE, UNREADABLE, FileChannel, parse_md5sum
from sandbox.persistent_shell import PersistentShell
from sandbox.pool import SandboxPool
from sandbox.shell_scripts import OUTPUT_DIR
from sandbox.workspace_copy import files_archive
from sandbox.workspace_fill import (
    copy_into_tmpfs,
    copy_sparse_files,
    left_out_notes,
    put_archive,
    size_text,
    workspace_archive,
)
from sandbox.workspace_watch import Dirty, WorkspaceWatch, watcher_argv

__all__ = ["DockerSandbox", "DockerSandboxFactory", "reap_orphans"]

PUT_ONE_BY_ONE = 4  # up to this many files go through the file channel; more, as one archive
# While a command runs, the process count is checked this often; at the limit twice in a row, the
# sandbox is restarted (a fork bomb would hold it until the command's hard limit).
WATCHDOG_INTERVAL = 0.5

log = logging.getLogger(__name__)
T = TypeVar("T")


class DockerSandbox:
    """Implements core.protocols.Sandbox. Made by `DockerSandboxFactory` (or `DockerSandbox.start`)."""

    def __init__(
        self,
        docker: DockerExec,
        workspace: Path,
        copied: dict[str, str],
        shell: PersistentShell,
        files: FileChannel,
        settings: SandboxSettings,
        rules: IgnoreRules,
        left_out: dict[str, str],
    ) -> None:
        self._docker = docker
        self._workspace = workspace
        self._copied = copied  # md5 by path, as copied in (or followed from the host since)
        self._known = dict(copied)  # md5 by path, as collect_changes last saw them
        self._shell = shell
        self._files = files
        self._settings = settings
        self._rules = rules
        self._left_out = left_out
        self._watch: asyncio.Task[WorkspaceWatch | None] | None = None
        # A change made before the watcher was watching is not in its reports: scan once then.
        self._scan_next = False
        self._closed = False
        self._restarted_unsaid = False  # restarted at its process limit; the next command says so
        self._refilled = False  # its tmpfs /workspace was filled from the host again (take_refilled)
        self._recovering: asyncio.Lock = asyncio.Lock()
        self.restarts = 0  # times the sandbox was restarted at its process limit
        self._watchdog: asyncio.Task[None] | None = None
        self._calls = 0  # shell calls in progress
        self.startup_seconds: dict[str, float] = {}  # where the start-up time went, by step

    @property
    def container_id(self) -> str:
        return self._docker.container_id

    @classmethod
    async def start(
        cls, client: Any, settings: SandboxSettings, workspace: Path, session_id: str
    ) -> DockerSandbox:
        """Create and start the container, copy the workspace in, and open both shells."""
        if not workspace.is_dir():
            raise SandboxError(f"the workspace {workspace} does not exist or is not a folder: check the path")
        docker = DockerExec(client.api, "", docker_executor())
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        name = _container_name(session_id)
        labels = container_labels(Owner.current(), session_id)
        docker.container_id = await docker.call(create_container, client.api, settings, name, labels)
        timings["create"] = time.perf_counter() - clock
        try:
            return await cls._boot(docker, settings, workspace, timings)
        except BaseException:
            await asyncio.shield(docker.call(remove_container, client.api, docker.container_id))
            raise

    @classmethod
    async def _boot(
        cls, docker: DockerExec, settings: SandboxSettings, workspace: Path, timings: dict[str, float]
    ) -> DockerSandbox:
        started = time.perf_counter()
        root = workspace.resolve()
        rules = IgnoreRules(root, settings.excludes, gitignore=settings.gitignore, private=settings.private)
        archive = workspace_archive(root, settings, rules)

        async def start_container() -> None:
            with docker_errors("start the sandbox container"):
                await docker.call(docker.api.start, docker.container_id)

        if settings.tmpfs:  # a tmpfs exists only once the container runs: start, then copy
            await _timed_all(timings, start=start_container())
            await _timed_all(timings, copy_workspace=copy_into_tmpfs(docker, archive, settings))
        else:
            # The copy goes into the container's filesystem, which exists before it runs: both at
            # once (the engine serialises them partly, but it is never slower than one after the other).
            await _timed_all(timings, copy_workspace=put_archive(docker, archive), start=start_container())
        files = FileChannel(lambda: ExecShellProcess.open(docker, POSIX_SH, workdir=WORKDIR))
        shell = PersistentShell(
            lambda: ExecShellProcess.open(docker, PREFER_BASH, workdir=WORKDIR),
            output_limit=settings.output_limit,
            kill_grace=settings.kill_grace,
            put_file=files.write_file,  # long commands
            feed_fifo=files.feed_fifo,  # input to a running command
        )
        with docker_errors("attach to the sandbox's shell"):
            await _timed_all(timings, shell=shell.start())
        files.start_soon()
        watch = asyncio.create_task(_start_watch(docker, rules))
        left_out = left_out_notes(archive, settings)
        try:
            copied = await copy_sparse_files(files, archive, settings)
        except BaseException:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await shell.close()
            await files.close()
            raise
        log.info(
            "sandbox %s ready in %.2f s (%d files, %d bytes copied)",
            docker.container_id[:12],
            time.perf_counter() - started,
            len(archive.baseline),
            archive.sent_bytes,
        )
        sandbox = cls(docker, workspace, copied, shell, files, settings, rules, left_out)
        sandbox._watch = watch
        sandbox.startup_seconds = timings
        return sandbox

    # ---- commands ---------------------------------------------------------------------------
    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        output_file: OutputFile | None = None,
        wait: Wait | None = None,
    ) -> CommandResult:
        self._check_open()
        self._note_use()
        async with self._shell_call():
            try:
                result = await self._shell.run(command, timeout=timeout, output_file=output_file, wait=wait)
            except SandboxCrowdedError:  # at the limit before it ran: restart, then run it
                await self._recover()
                result = await self._shell.run(command, timeout=timeout, output_file=output_file, wait=wait)
        return await self._after_command(result)

    def running_command(self) -> RunningCommand | None:
        return self._shell.running()

    async def wait_for_command(
        self, *, wait: Wait | None = None, output_file: OutputFile | None = None
    ) -> CommandResult:
        self._check_open()
        self._note_use()
        async with self._shell_call():
            result = await self._shell.wait(wait=wait, output_file=output_file)
        return await self._after_command(result)

    async def send_input(self, data: bytes) -> None:
        self._check_open()
        await self._guarded(lambda: self._shell.send_input(data))

    async def interrupt(self) -> None:
        await self._shell.interrupt()

    @contextlib.asynccontextmanager
    async def _shell_call(self) -> AsyncIterator[None]:
        """A call to the shell: the watchdog runs while it does, and while its command runs on."""
        self._calls += 1
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch_processes())
        try:
            yield
        finally:
            self._calls -= 1

    async def _watch_processes(self) -> None:
        strikes = 0
        while not self._closed and (self._calls or self._shell.running() is not None):
            await asyncio.sleep(WATCHDOG_INTERVAL)
            strikes = strikes + 1 if await self._crowded() else 0
            if strikes >= 2:
                await self._recover()
                strikes = 0

    async def _after_command(self, result: CommandResult) -> CommandResult:
        """Restart a sandbox its command left at the process limit; keep a cut output readable."""
        if self._shell.take_crowded() or (result.shell_restarted and await self._crowded()):
            await self._recover()
        if self._restarted_unsaid:
            self._restarted_unsaid = False
            result = replace(result, sandbox_restarted=True)
        if result.truncated and result.full_output_path is not None:
            result = replace(result, sandbox_output_path=await self._copy_output(result.full_output_path))
        return result

    async def _copy_output(self, host_file: Path) -> str | None:
        """Put a cut command's full output (as kept on the host) where the model can read it."""
        target = f"{OUTPUT_DIR}/{_safe_name(host_file.stem)}.txt"
        try:
            data = await asyncio.to_thread(host_file.read_bytes)
            await self._guarded(lambda: self._files.write_file(target, data))
        except (OSError, SandboxError) as exc:
            log.warning("could not copy a command's full output into the sandbox: %s", exc)
            return None
        return target

    # ---- files -------------------------------------------------------------------------------
    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        self._check_open()
        return await self._guarded(lambda: self._files.read_file(path, max_bytes))

    async def write_file(self, path: str, data: bytes) -> None:
        self._check_open()
        self._note_use()
        await self._guarded(lambda: self._files.write_file(path, data))

    async def delete_file(self, path: str) -> None:
        self._check_open()
        self._note_use()
        await self._guarded(lambda: self._files.delete_file(path))

    async def path_kind(self, path: str) -> PathKind | None:
        self._check_open()
        return await self._guarded(lambda: self._files.path_kind(path))

    async def list_dir(self, path: str, max_depth: int = 2, *, hidden: bool = False) -> list[str]:
        self._check_open()
        return await self._guarded(lambda: self._files.list_dir(path, max_depth, hidden=hidden))

    # ---- the process limit -------------------------------------------------------------------
    async def _guarded(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a file-channel operation; if the sandbox is at its process limit (or its channel
        cannot even start), restart the sandbox and run it again, once."""
        try:
            return await operation()
        except SandboxCrowdedError:
            pass
        except CommandRunningError:
            raise
        except SandboxError:
            if not await self._crowded():
                raise
        await self._recover()
        return await operation()

    async def _crowded(self) -> bool:
        try:
            return await self._files.crowded()
        except SandboxError:  # not even a builtin-only request gets through
            return True

    async def _recover(self) -> None:
        """Kill every process in the sandbox by restarting its container (a fork bomb keeps the
        process table full, so nothing inside can do it), then start its shells and its watcher
        again. The files stay: the container's filesystem survives a restart. The change set is
        in the session's log; the next collect_changes scans, in case a change was not reported.
        A tmpfs /workspace does not survive it: it is filled from the host again, and
        `take_refilled` tells the session to put its change set back."""
        async with self._recovering:
            if await self._files_ok():
                return  # another call recovered it meanwhile
            self.restarts += 1
            log.warning("sandbox %s is at its process limit: restarting it", self.container_id[:12])
            await self._stop_watch()
            with docker_errors("restart the sandbox container"):
                await self._docker.call(self._docker.api.restart, self.container_id, timeout=0)
            await self._shell.reset()
            await self._files.close()
            if self._settings.tmpfs:
                await self._refill()
            self._scan_next = True
            self._restarted_unsaid = True
            self._watch = asyncio.create_task(_start_watch(self._docker, self._rules))

    async def _refill(self) -> None:
        """Fill an emptied tmpfs /workspace from the host, as a new sandbox is filled."""
        archive = await asyncio.to_thread(
            workspace_archive, self._workspace.resolve(), self._settings, self._rules
        )
        await copy_into_tmpfs(self._docker, archive, self._settings)
        copied = await copy_sparse_files(self._files, archive, self._settings)
        self._copied, self._known = copied, dict(copied)
        self._left_out = left_out_notes(archive, self._settings)
        self._refilled = True

    def take_refilled(self) -> bool:
        refilled, self._refilled = self._refilled, False
        return refilled

    async def _files_ok(self) -> bool:
        """The file channel answers and the sandbox has room (another caller recovered it)."""
        try:
            return not await self._files.crowded()
        except SandboxError:
            return False

    async def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            watch = await asyncio.gather(self._watch, return_exceptions=True)
            if isinstance(watch[0], WorkspaceWatch):
                await watch[0].close()
            self._watch = None

    @property
    def copied(self) -> Mapping[str, str]:
        return self._copied

    @property
    def left_out(self) -> Mapping[str, str]:
        return self._left_out

    async def collect_changes(self) -> dict[str, bytes | None]:
        self._check_open()
        watch = await self._watch if self._watch is not None else None
        dirty = await watch.sync() if watch is not None else Dirty(unknown=True)
        if self._scan_next:
            self._scan_next, dirty = False, Dirty(unknown=True)
        if dirty.unknown:  # no watcher, or it lost events: compare every file's checksum
            names = self._rules.plain_names()
            current = parse_md5sum(await self._guarded(lambda: self._files.checksums(WORKDIR, names)))
            candidates = {p for p in set(current) | set(self._known) if current.get(p) != self._known.get(p)}
        else:
            candidates = dirty.paths | {
                p for p in self._known for gone in dirty.folders_gone if p.startswith(gone + "/")
            }
        # What the host's rules leave out of the sandbox is never part of its change set.
        wanted = sorted(p for p in candidates if not self._rules.ignored(p))
        limit = self._settings.max_file_size
        contents = (
            await self._guarded(lambda: self._files.read_files(WORKDIR, wanted, limit)) if wanted else {}
        )
        changed: dict[str, bytes | None] = {}
        for path, data in contents.items():
            if data is UNREADABLE:  # never reported gone: applying that would delete the user's file
                log.warning("leaving %s out of the changes: the sandbox user cannot read it", path)
                continue
            if data is TOO_LARGE:
                self._left_out[path] = f"over the {size_text(limit)} limit: not part of the change set"
                continue
            assert data is None or isinstance(data, bytes)
            digest = None if data is None else md5(data)
            if digest == self._known.get(path):
                continue  # touched, not changed (or changed back)
            changed[path] = data
            if digest is None:
                self._known.pop(path, None)
            else:
                self._known[path] = digest
        return changed

    async def follow_host(self, files: Mapping[str, HostFile], expect: Mapping[str, str | None]) -> set[str]:
        self._check_open()
        self._note_use()
        if len(files) <= PUT_ONE_BY_ONE:  # compare-and-set in the container, file by file
            wanted = {p: (f.content, expect.get(p), f.executable) for p, f in files.items()}
            taken = await self._guarded(lambda: self._files.write_files_if(WORKDIR, wanted))
        else:  # many (a branch switched): compare in one request, then one archive
            held = await self._guarded(lambda: self._files.checksums_of(WORKDIR, sorted(files)))
            taken = {p for p in files if held.get(p) == expect.get(p)}
            await self._put({p: files[p].content for p in taken})
        for path in taken:
            content = files[path].content
            if content is None:
                self._copied.pop(path, None)
                self._known.pop(path, None)
            else:
                self._copied[path] = self._known[path] = md5(content)
        return taken

    async def put_files(self, files: Mapping[str, bytes | None]) -> None:
        self._check_open()
        self._note_use()
        await self._put(files)
        for path, data in files.items():
            if data is None:
                self._known.pop(path, None)
            else:
                self._known[path] = md5(data)

    async def _put(self, files: Mapping[str, bytes | None]) -> None:
        writes = {p: d for p, d in files.items() if d is not None}
        if len(writes) > PUT_ONE_BY_ONE:  # many (a session restored): one archive, one request
            archive = files_archive(writes, WORKDIR, self._settings.uid, self._settings.gid, self._workspace)
            with docker_errors("put files into the sandbox"):
                await self._docker.call(self._docker.api.put_archive, self._docker.container_id, "/", archive)
        else:
            for path, content in writes.items():
                await self._files.write_file(path, content)
        for path, data in files.items():
            if data is None:
                with contextlib.suppress(FileNotFoundError):
                    await self._files.delete_file(path)

    async def rename(self, name: str) -> None:
        """Give the container another name (a ready sandbox taken by a session)."""
        try:
            with docker_errors("rename the sandbox container"):
                await self._docker.call(self._docker.api.rename, self.container_id, name)
        except SandboxError as exc:
            log.info("%s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._watchdog is not None:
                self._watchdog.cancel()
                await asyncio.gather(self._watchdog, return_exceptions=True)
            await self._stop_watch()
            await self._shell.close()
            await self._files.close()
        finally:
            with docker_errors("remove the sandbox container"):
                removal = self._docker.call(remove_container, self._docker.api, self.container_id)
                await asyncio.shield(removal)

    def _note_use(self) -> None:
        """Something may change the workspace now: if the watcher is not watching yet, the next
        collect_changes scans instead of trusting its reports."""
        if self._watch is None or not self._watch.done():
            self._scan_next = True

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("this sandbox is closed: start a new session")


class DockerSandboxFactory:
    """Makes a `DockerSandbox` per session; implements core.protocols.SandboxFactory.

    The engine is contacted on the first call (not at construction), and orphaned containers of dead
    Sidehand processes on this machine are removed then, once per process."""

    def __init__(self, settings: SandboxSettings | None = None, *, docker_client: Any = None) -> None:
        """`settings.environment`: the sandbox's non-interactive defaults and the variables the user
        asked to pass in (nothing from the host's environment gets in otherwise)."""
        self.settings = settings or SandboxSettings()
        self._client = docker_client
        self._owns_client = docker_client is None
        self._client_lock = asyncio.Lock()
        self.pool = SandboxPool(self._new, self.settings.pool)
        self._renames: set[asyncio.Task[None]] = set()

    async def __call__(self, workspace: Path, session_id: str) -> DockerSandbox:
        ready = await self.pool.claim(workspace)
        if ready is not None:
            assert isinstance(ready, DockerSandbox)
            # Named after its session (for `docker ps`), in the background: the first command waits
            # for nothing.
            rename = asyncio.create_task(ready.rename(_container_name(session_id)))
            self._renames.add(rename)
            rename.add_done_callback(self._renames.discard)
            log.debug("session %s uses the ready sandbox %s", session_id, ready.container_id[:12])
            return ready
        sandbox = await self._new(workspace, session_id)
        log.debug("session %s uses sandbox %s", session_id, sandbox.container_id[:12])
        return sandbox

    async def _new(self, workspace: Path, session_id: str) -> DockerSandbox:
        client = await self._connect()
        return await DockerSandbox.start(client, self.settings, workspace, session_id)

    async def prewarm(self, workspace: Path, watch: HostWatch) -> None:
        """Keep `settings.pool` ready sandboxes of `workspace`, following the host through `watch`."""
        self.pool.prewarm(workspace, watch)

    async def aclose(self) -> None:
        """Remove the ready sandboxes and close the engine connection this factory opened."""
        await self.pool.aclose()
        await asyncio.gather(*self._renames, return_exceptions=True)
        self.close()

    async def reap(self) -> int:
        """Remove this machine's sandbox containers whose owning process is gone (a process that was
        killed could not remove its own). The fronts call this as they start."""
        client = await self._connect()
        return await _reap(client)

    def close(self) -> None:
        """Close the engine connection this factory opened (a client passed in is the caller's)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def _connect(self) -> Any:
        async with self._client_lock:
            if self._client is None:
                self._client = await _in_docker_pool(connect_engine)
            await _reap_once(self._client)
            return self._client


_reaped = False


async def _reap_once(client: Any) -> None:
    global _reaped
    if not _reaped:
        _reaped = True
        await _reap(client)


async def _reap(client: Any) -> int:
    try:
        with docker_errors("list old sandbox containers"):
            removed = await _in_docker_pool(reap_orphans, client)
    except SandboxError as exc:
        log.warning("could not remove orphaned sandbox containers: %s", exc)
        return 0
    if removed:
        log.info("removed %d orphaned sandbox container(s)", len(removed))
    return len(removed)


async def _start_watch(docker: DockerExec, rules: IgnoreRules) -> WorkspaceWatch | None:
    """The inotify watcher, in its own exec (None when the image cannot run it: then changes are
    found by scanning)."""
    try:
        process = await ExecShellProcess.open(
            docker, watcher_argv(WORKDIR, rules.plain_names()), workdir=WORKDIR
        )
    except SandboxError as exc:
        log.info("no file watcher in the sandbox (%s): changes are found by scanning", exc)
        return None
    return await WorkspaceWatch.start(process)


async def _in_docker_pool(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(docker_executor(), fn, *args)


async def _timed_all(timings: dict[str, float], **steps: Awaitable[None]) -> None:
    """Run the steps concurrently, record how long each took, and raise the first failure only
    after all have ended (so nothing is left running against a container about to be removed)."""

    async def timed(name: str, step: Awaitable[None]) -> None:
        clock = time.perf_counter()
        await step
        timings[name] = time.perf_counter() - clock

    results = await asyncio.gather(*(timed(n, s) for n, s in steps.items()), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _safe_name(name: str) -> str:
    """`name` as a container name or file name may hold it."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", name)[:40] or "session"


def _container_name(session_id: str) -> str:
    return f"sidehand-{_safe_name(session_id)}-{secrets.token_hex(3)}"

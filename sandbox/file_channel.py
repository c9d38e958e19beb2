"""File operations over a second long-lived shell in the container, one request at a time.

Each operation is one round trip on an already-open exec socket, instead of a docker exec or an
archive call (each of those costs an HTTP request and a process start in the engine). The shell is
the image's /bin/sh on purpose: dash reads a heredoc in blocks, bash one byte per syscall, which
makes writing a megabyte ten times slower. Reads are raw `cat` output (the exec stream is binary
safe, and the random marker ends it); writes are base64 in a quoted heredoc.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import io
import itertools
import logging
import posixpath
import tarfile
from collections.abc import Iterable, Mapping, Sequence

from core.errors import FileTooLargeError, SandboxCrowdedError, SandboxError
from core.protocols import WORKDIR, PathKind
from sandbox.marker_protocol import MarkerReader, ShellEndedError, framed, new_nonce, shell_quote
from sandbox.persistent_shell import ShellProcess, SpawnShell
from sandbox.shell_scripts import guarded

log = logging.getLogger(__name__)

# Each script leaves its outcome in $st: OK, a kind word, or an errno name (every one is run
# behind shell_scripts.guarded: "crowded" while the sandbox is at its process limit).
_READ = """p={path}
if [ -d "$p" ]; then st=EISDIR
elif [ ! -e "$p" ]; then st=ENOENT
elif [ ! -r "$p" ]; then st=EACCES
elif cat "$p" 2>/dev/null </dev/null; then st=OK
else st=EIO; fi"""

# The size first (the file's own, not its content: `wc -c` of a regular file only seeks).
_READ_AT_MOST = """p={path}
if [ -d "$p" ]; then st=EISDIR
elif [ ! -e "$p" ]; then st=ENOENT
elif [ ! -r "$p" ]; then st=EACCES
else
  n=$(wc -c <"$p" 2>/dev/null) || n=-1
  if [ "$n" -gt {limit} ]; then st=EFBIG; printf %s "$n"
  elif cat "$p" 2>/dev/null </dev/null; then st=OK
  else st=EIO; fi
fi"""

_WRITE = """p={path}; d={parent}; st=OK
if [ -d "$p" ]; then st=EISDIR
elif ! mkdir -p "$d" 2>/dev/null; then st=EACCES; [ -d "$d" ] || [ ! -e "$d" ] || st=ENOTDIR
elif [ -e "$p" ] && [ ! -w "$p" ]; then st=EACCES
elif [ ! -e "$p" ] && [ ! -w "$d" ]; then st=EACCES
elif [ -p "$p" ]; then st=EIO
elif base64 -d 2>/dev/null >"$p" <<'{eof}'
{payload}{eof}
then :
else st=EIO; fi"""

# Input for a running command: only into its fifo, opened read-write (never waits for a reader);
# anything else at that path (the model replaced it) is refused.
_FEED = """p={path}; st=OK
if [ -p "$p" ]; then
  base64 -d 2>/dev/null 1<>"$p" <<'{eof}' || st=EIO
{payload}{eof}
else st=ENOENT; fi"""

_DELETE = """p={path}
if [ -d "$p" ]; then st=EISDIR
elif [ ! -e "$p" ] && [ ! -L "$p" ]; then st=ENOENT
elif rm -f -- "$p" 2>/dev/null; then st=OK
else st=EACCES; fi"""

_KIND = """p={path}
if [ -f "$p" ]; then st=file; elif [ -d "$p" ]; then st=dir
elif [ -e "$p" ] || [ -L "$p" ]; then st=other; else st=none; fi"""

# Folders come out with a '/' appended, hidden entries (not descended into) with a leading NUL
# marker; NUL-separated, so any name survives. -L: a symlinked folder is listed like a folder (find
# notices loops).
_LIST = """p={path}; st=OK
if [ -d "$p" ]; then
  find -L "$p" -mindepth 1 -maxdepth {depth} -name '.*' -prune -exec printf '\\001%s\\0' {{}} + \\
    -o -type d -exec printf '%s/\\0' {{}} + -o -print0 2>/dev/null </dev/null
elif [ -e "$p" ]; then st=ENOTDIR; else st=ENOENT; fi"""

# md5 of every regular file under the workspace; the pruned names are never reported as changes.
_CHECKSUMS = """st=OK
if cd {root} 2>/dev/null; then
  find . \\( {prune} \\) -prune -o -type f -exec md5sum {{}} + 2>/dev/null </dev/null
else st=ENOENT; fi"""

# md5 of the named files that are regular files (not symlinks), by one md5sum.
_CHECKSUMS_OF = """st=OK
if cd {root} 2>/dev/null; then
  set --
  for p in {paths}; do if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; fi; done
  [ $# -eq 0 ] || md5sum -- "$@" 2>/dev/null </dev/null
else st=ENOENT; fi"""

# Several files in two requests, whatever their number (a process costs a millisecond or more in
# a container): first what each path is (F: a regular file, U: one the sandbox user cannot read,
# G: gone, or not a regular file: a symlink counts as gone, so a link's target is never read as the
# file) and which readable ones are over the size limit (one find); then one tar of the rest.
_READ_STATUS = """st=OK
if cd {root} 2>/dev/null; then
  set --
  for p in {paths}; do
    if [ -f "$p" ] && [ ! -L "$p" ]; then
      if [ -r "$p" ]; then printf F; set -- "$@" "$p"; else printf U; fi
    else printf G; fi
  done
  printf '\\n'
  if [ {limit} -gt 0 ] && [ $# -gt 0 ]; then find "$@" -prune -type f -size +{limit}c -print0 2>/dev/null </dev/null; fi
else st=ENOENT; fi"""
_READ_TAR = """st=OK
if cd {root} 2>/dev/null; then tar -cf - -- {paths} 2>/dev/null </dev/null; else st=ENOENT; fi"""
UNREADABLE = object()  # what read_files gives for a file the sandbox user cannot read
TOO_LARGE = object()  # what read_files gives for a file over its size limit

# Compare-and-set: each file is written (or deleted) only if its md5 is the expected one ("absent":
# no file there), so a change the agent made since is never overwritten. One line per file:
# T taken, N not taken (its content differed), E taken but the write failed.
_WRITE_IF = """st=OK
if cd {root} 2>/dev/null; then
{entries}
else st=ENOENT; fi"""
_IF_PREFIX = """p={path}; d={parent}
if [ -L "$p" ] || [ -d "$p" ]; then c=other
elif [ -e "$p" ]; then c=$(md5sum <"$p" 2>/dev/null); c=${{c%% *}}
else c=absent; fi
if [ "$c" != {expect} ]; then echo N
"""
_IF_WRITE = (
    _IF_PREFIX
    + """elif {{ [ -d "$d" ] || mkdir -p "$d" 2>/dev/null; }} && base64 -d 2>/dev/null >"$p" <<'{eof}'
{payload}{eof}
then {chmod}echo T; else echo E; fi"""
)
_IF_DELETE = _IF_PREFIX + """elif rm -f -- "$p" 2>/dev/null; then echo T; else echo E; fi"""

# One piece of a sparse file: the file is made `size` bytes long (holes), then the piece written
# at its offset in blocks of `block` bytes, the rest of the file left as it is.
_SPARSE = """p={path}; st=OK
{create}base64 -d 2>/dev/null <<'{eof}' | dd of="$p" bs={block} seek={seek} conv=notrunc 2>/dev/null || st=EIO
{payload}{eof}
"""
_SPARSE_CREATE = """dd of="$p" bs=1 seek={size} count=0 2>/dev/null && chmod {mode:o} "$p" || st=EIO
"""
PAYLOAD_BATCH = 4 << 20  # bytes of file content per request when writing many files

_ERRORS: dict[str, tuple[type[OSError], int, str]] = {
    "ENOENT": (FileNotFoundError, errno.ENOENT, "no such file or folder"),
    "EISDIR": (IsADirectoryError, errno.EISDIR, "is a folder, not a file"),
    "ENOTDIR": (NotADirectoryError, errno.ENOTDIR, "a part of the path is not a folder"),
    "EACCES": (PermissionError, errno.EACCES, "permission denied to the sandbox user"),
    "EIO": (OSError, errno.EIO, "the sandbox could not read or write it"),
}
_CROWDED = "crowded"


def sandbox_path(path: str) -> str:
    """An absolute, normalised POSIX path in the sandbox; relative paths are under WORKDIR."""
    return posixpath.normpath(posixpath.join(WORKDIR, path))


class FileChannel:
    """Reads, writes and inspects files in the sandbox over one persistent /bin/sh."""

    def __init__(self, spawn: SpawnShell) -> None:
        self._spawn = spawn
        self._process: ShellProcess | None = None
        self._reader: MarkerReader | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self._lock:
            await self._open()

    def start_soon(self) -> None:
        """Open the channel in the background, so it neither delays the session's first command nor
        slows it down by starting at the same time; the first operation waits for it (or opens the
        channel itself if this failed)."""
        self._warming = asyncio.create_task(self._warm_up())

    async def _warm_up(self) -> None:
        try:
            await self.start()
        except Exception as exc:  # the first real operation will report it
            log.debug("opening the file channel in the background failed: %s", exc)

    async def _open(self) -> ShellProcess:
        if self._process is None:
            self._process = await self._spawn()
            self._reader = MarkerReader(self._process.receive)
        return self._process

    async def request(self, script: str) -> tuple[str, bytes]:
        """Run `script` (which sets $st); return $st and what it printed. Retried once on a new
        shell if the channel died (every script here is safe to repeat)."""
        async with self._lock:
            for attempt in (1, 2):
                process = await self._open()
                assert self._reader is not None
                output = bytearray()
                nonce = new_nonce()
                try:
                    await process.send(framed(guarded(script), nonce, '"$st"'))
                    status = await self._reader.read_until(nonce, output.extend)
                except (ShellEndedError, ConnectionError) as exc:
                    self._process = self._reader = None
                    await process.close()
                    if attempt == 2:
                        raise SandboxError(
                            "the sandbox's file channel keeps closing; the container may have run "
                            "out of memory or been stopped: start a new session"
                        ) from exc
                    log.warning("file channel ended (%s); reopening it", exc)
                    continue
                except BaseException:
                    # Cancelled mid-request: the rest of the reply would confuse the next one.
                    self._process = self._reader = None
                    await process.close()
                    raise
                if status == _CROWDED:
                    raise SandboxCrowdedError("the sandbox is at its process limit")
                return status, bytes(output)
        raise AssertionError("unreachable")

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        full = sandbox_path(path)
        if max_bytes is None:
            status, data = await self.request(_READ.format(path=shell_quote(full)))
        else:
            script = _READ_AT_MOST.format(path=shell_quote(full), limit=int(max_bytes))
            status, data = await self.request(script)
            if status == "EFBIG":
                raise FileTooLargeError(full, int(data.decode("ascii", "replace") or 0), max_bytes)
        _raise_for(status, full)
        return data

    async def crowded(self) -> bool:
        """Whether the sandbox is at its process limit (asked with builtins only)."""
        try:
            status, _ = await self.request("st=OK")
        except SandboxCrowdedError:
            return True
        return status != "OK"

    async def write_file(self, path: str, data: bytes) -> None:
        full = sandbox_path(path)
        script = _WRITE.format(
            path=shell_quote(full),
            parent=shell_quote(posixpath.dirname(full)),
            eof=new_nonce(),
            payload=base64.encodebytes(data).decode("ascii"),
        )
        status, _ = await self.request(script)
        _raise_for(status, full)

    async def feed_fifo(self, path: str, data: bytes) -> None:
        """Write `data` into the fifo at `path` (a running command's stdin)."""
        script = _FEED.format(
            path=shell_quote(path), eof=new_nonce(), payload=base64.encodebytes(data).decode("ascii")
        )
        status, _ = await self.request(script)
        _raise_for(status, path)

    async def delete_file(self, path: str) -> None:
        full = sandbox_path(path)
        status, _ = await self.request(_DELETE.format(path=shell_quote(full)))
        _raise_for(status, full)

    async def path_kind(self, path: str) -> PathKind | None:
        status, _ = await self.request(_KIND.format(path=shell_quote(sandbox_path(path))))
        if status == "none":
            return None
        if status in ("file", "dir", "other"):
            return status  # type: ignore[return-value]  # narrowed by the check above
        raise SandboxError(f"unexpected answer {status!r} from the sandbox's file channel")

    async def list_dir(self, path: str, max_depth: int = 2, *, hidden: bool = False) -> list[str]:
        full = sandbox_path(path)
        depth = max(int(max_depth), 1)
        status, data = await self.request(_LIST.format(path=shell_quote(full), depth=depth))
        _raise_for(status, full)
        prefix = full.rstrip("/") + "/"
        entries = []
        for name in data.split(b"\0"):
            if not name or (name.startswith(b"\1") and not hidden):
                continue
            entries.append(name.removeprefix(b"\1").decode("utf-8", "surrogateescape").removeprefix(prefix))
        return sorted(entries)

    async def checksums(self, root: str, prune_names: Sequence[str]) -> bytes:
        """`md5sum` lines for every regular file under `root`, skipping .git and the
        folders named in `prune_names`."""
        prune = " -o ".join(f"-name {shell_quote(name)}" for name in (".git", *prune_names))
        status, data = await self.request(_CHECKSUMS.format(root=shell_quote(root), prune=prune))
        _raise_for(status, root)
        return data

    async def checksums_of(self, root: str, paths: Sequence[str]) -> dict[str, str]:
        """The md5 of each of `paths` (relative to `root`) that is a regular file, in one request
        per batch (one md5sum process each)."""
        sums: dict[str, str] = {}
        for start in range(0, len(paths), 200):
            batch = " ".join(shell_quote(p) for p in paths[start : start + 200])
            status, data = await self.request(_CHECKSUMS_OF.format(root=shell_quote(root), paths=batch))
            _raise_for(status, root)
            sums.update(parse_md5sum(data))
        return sums

    async def read_files(
        self, root: str, paths: Sequence[str], limit: int = 0
    ) -> dict[str, bytes | object | None]:
        """The content of each of `paths` (relative to `root`): None for one that is gone or not a
        regular file, UNREADABLE for one the user cannot read, TOO_LARGE for one of more than
        `limit` bytes (0: no limit). Two round trips and two processes per batch."""
        found: dict[str, bytes | object | None] = {}
        for start in range(0, len(paths), 200):
            batch = paths[start : start + 200]
            dotted = ["./" + p for p in batch]  # never an option, whatever the name
            status, data = await self.request(
                _READ_STATUS.format(
                    root=shell_quote(root), paths=" ".join(map(shell_quote, dotted)), limit=int(limit)
                )
            )
            _raise_for(status, root)
            kinds, _, large_list = data.partition(b"\n")
            if len(kinds) != len(batch):
                raise SandboxError(f"unexpected answer from the sandbox's file channel ({kinds[:80]!r})")
            large = {name.decode("utf-8", "surrogateescape") for name in large_list.split(b"\0") if name}
            wanted = []
            for path, dot, kind in zip(batch, dotted, kinds.decode("ascii"), strict=True):
                if kind == "F" and dot in large:
                    found[path] = TOO_LARGE
                elif kind == "F":
                    wanted.append(dot)
                else:
                    found[path] = UNREADABLE if kind == "U" else None
            if wanted:
                status, data = await self.request(
                    _READ_TAR.format(root=shell_quote(root), paths=" ".join(map(shell_quote, wanted)))
                )
                _raise_for(status, root)
                contents = _untar(data)
                for dot in wanted:  # gone meanwhile: not in the archive
                    found[dot[2:]] = contents.get(dot[2:])
        return found

    async def write_files_if(
        self, root: str, files: Mapping[str, tuple[bytes | None, str | None, bool]]
    ) -> set[str]:
        """Compare-and-set: each of `files` (path relative to `root` -> (content or None to delete,
        the md5 it must have now or None for absent, executable)) is written only if the file holds
        what is expected. Returns the paths written."""
        taken: set[str] = set()
        batch: list[tuple[str, str]] = []
        size = 0

        async def send() -> None:
            script = _WRITE_IF.format(root=shell_quote(root), entries="\n".join(e for _, e in batch))
            status, output = await self.request(script)
            _raise_for(status, root)
            answers = output.split()
            if len(answers) != len(batch):
                raise SandboxError(f"unexpected answer from the sandbox's file channel ({output[:80]!r})")
            for (path, _), answer in zip(batch, answers, strict=True):
                if answer == b"T":
                    taken.add(path)
                elif answer == b"E":
                    log.warning("could not write %s in the sandbox (the sandbox user may not own it)", path)
            batch.clear()

        for path, (content, expect, executable) in files.items():
            quoted = shell_quote(path)
            fields = {
                "path": quoted,
                "parent": shell_quote(posixpath.dirname(path) or "."),
                "expect": expect or "absent",
            }
            if content is None:
                entry = _IF_DELETE.format(**fields)
            else:
                payload = base64.encodebytes(content).decode("ascii")
                chmod = f"chmod 755 {quoted} 2>/dev/null; " if executable else ""
                entry = _IF_WRITE.format(**fields, eof=new_nonce(), payload=payload, chmod=chmod)
                size += len(payload)
            batch.append((path, entry))
            if size >= PAYLOAD_BATCH:
                await send()
                size = 0
        if batch:
            await send()
        return taken

    async def write_sparse(
        self, path: str, size: int, mode: int, pieces: Iterable[tuple[int, bytes]]
    ) -> None:
        """Make `path` a file of `size` bytes holding `pieces` (offset, data) and holes elsewhere,
        so it takes no more room than its data."""
        full = sandbox_path(path)
        create = _SPARSE_CREATE.format(size=int(size), mode=mode & 0o777)
        for offset, data in itertools.chain([(0, b"")], pieces):
            block = min(offset & -offset, 1 << 16) if offset else 1 << 16  # a power of two dividing it
            script = _SPARSE.format(
                path=shell_quote(full),
                create=create,
                eof=new_nonce(),
                payload=base64.encodebytes(data).decode("ascii"),
                block=block,
                seek=offset // block,
            )
            create = ""
            status, _ = await self.request(script)
            _raise_for(status, full)

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        async with self._lock:
            process, self._process, self._reader = self._process, None, None
            if process is not None:
                await process.close()


def _untar(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar stream, by path (without a leading ./)."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(
            fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape"
        ) as archive:
            for member in archive:
                if member.isreg() and (handle := archive.extractfile(member)) is not None:
                    files[member.name.removeprefix("./")] = handle.read()
    except tarfile.TarError as exc:
        raise SandboxError(f"unreadable archive from the sandbox's file channel: {exc}") from exc
    return files


def parse_md5sum(output: bytes) -> dict[str, str]:
    """`md5sum` lines (`<md5>  ./path`) to {relative path: md5}.

    GNU md5sum marks a line whose name has a backslash, newline or CR with a leading backslash and
    escapes those characters as \\\\, \\n and \\r. Lines are split on newline only, which such names
    never contain once escaped."""
    sums: dict[str, str] = {}
    for line in output.split(b"\n"):
        if not line:
            continue
        escaped = line.startswith(b"\\")
        if escaped:
            line = line[1:]
        digest, name = line[:32].decode("ascii"), line[34:]
        if escaped:
            name = _unescape(name)
        path = name.decode("utf-8", "surrogateescape")
        sums[path.removeprefix("./")] = digest
    return sums


def _unescape(name: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(name):
        if name[i : i + 1] == b"\\" and i + 1 < len(name):
            out += {b"n": b"\n", b"r": b"\r", b"\\": b"\\"}.get(name[i + 1 : i + 2], name[i : i + 2])
            i += 2
        else:
            out += name[i : i + 1]
            i += 1
    return bytes(out)


def _raise_for(status: str, path: str) -> None:
    if status == "OK":
        return
    kind, code, reason = _ERRORS.get(status, (OSError, errno.EIO, f"unexpected status {status!r}"))
    raise kind(code, reason, path)

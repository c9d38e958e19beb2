"""The sandbox's copy of the workspace: one tar stream, built while it is sent, with a baseline.

The tar is written by hand (a ustar/pax header per entry, file bytes, padding) rather than through
`tarfile`, so it can be produced lazily as an iterator of chunks: the engine receives it while the
workspace is walked, and memory stays at one chunk however large the repository is. Each regular
file's md5 is computed from the very bytes sent, so the baseline matches the sandbox's copy exactly.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tarfile
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.ignore import IgnoreRules

log = logging.getLogger(__name__)

_BLOCK = 512
_CHUNK = 1 << 16


def files_archive(files: Mapping[str, bytes], workdir: str, uid: int, gid: int, host_root: Path) -> bytes:
    """A tar of `files` (workspace-relative paths) to extract at `/`, owned by uid:gid, with the
    folders on the way (so none is made root-owned by the extraction). A file keeps the mode the
    host's file has (an agent's edit of a script keeps it executable), else 0644."""
    top = workdir.strip("/")
    out = io.BytesIO()
    folders: set[str] = set()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for rel in sorted(files):
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    info = tarfile.TarInfo(f"{top}/{folder}")
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
                    tar.addfile(info)
            data = files[rel]
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.uid, info.gid, info.mtime = len(data), uid, gid, int(time.time())
            try:
                info.mode = stat.S_IMODE(os.lstat(host_root / rel).st_mode) & 0o777
            except OSError:
                info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def folders_archive(folders: Sequence[str], uid: int, gid: int) -> bytes:
    """A tar of empty folders (absolute paths), owned by uid:gid."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder.strip("/"))
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            tar.addfile(info)
    return out.getvalue()


SPARSE_SLACK = 1 << 20  # a file with more than this many bytes of holes is copied sparse


@dataclass(frozen=True)
class SparseFile:
    rel: str
    path: Path
    size: int
    mode: int

    def pieces(self, most: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
        """(offset, data) of the file's data, in pieces of at most `most` bytes, holes skipped
        (found with SEEK_DATA / SEEK_HOLE)."""
        with self.path.open("rb") as handle:
            fd, offset = handle.fileno(), 0
            while offset < self.size:
                try:
                    start = os.lseek(fd, offset, os.SEEK_DATA)
                except OSError:  # ENXIO: no data past offset
                    return
                end = min(os.lseek(fd, start, os.SEEK_HOLE), self.size)
                while start < end:
                    data = os.pread(fd, min(most, end - start), start)
                    if not data:
                        return  # shrank while read
                    yield start, data
                    start += len(data)
                offset = end


@dataclass
class WorkspaceArchive:
    """A tar of `root`, to extract at the container's `/`: the workspace lands at `workdir`, owned by
    uid:gid. `extra_dirs` are empty folders to create too (the sandbox user's home).

    Iterating `chunks()` fills `baseline` (md5 by relative POSIX path of every regular file sent,
    except under .git: the repository is copied for the agent's use, its changes are not reported)."""

    root: Path
    workdir: str
    uid: int
    gid: int
    rules: IgnoreRules | None = None  # what not to copy (.gitignore, configured excludes)
    max_file_size: int = 0  # bytes of data a file may hold to be copied (0: no limit)
    extra_dirs: Sequence[str] = ()
    baseline: dict[str, str] = field(default_factory=dict)
    sent_bytes: int = 0
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (path, size) too large to copy
    sparse: list[SparseFile] = field(default_factory=list)  # copied afterwards, holes kept

    def chunks(self) -> Iterator[bytes]:
        """The tar stream in pieces of about 64 KiB (one HTTP chunk each, not one per tar block)."""
        pending = bytearray()
        for piece in self._entries():
            pending += piece
            if len(pending) >= _CHUNK:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)

    def _entries(self) -> Iterator[bytes]:
        self.baseline.clear()
        now = time.time()
        for directory in self.extra_dirs:
            yield self._header(directory.strip("/"), tarfile.DIRTYPE, 0o755, mtime=now)
        top, root = self.workdir.strip("/"), self.root.stat()
        yield self._header(top, tarfile.DIRTYPE, stat.S_IMODE(root.st_mode) | 0o700, mtime=root.st_mtime)
        yield from self._walk(self.root, "", tracked=True)
        yield b"\0" * (2 * _BLOCK)

    def _walk(self, folder: Path, rel: str, *, tracked: bool) -> Iterator[bytes]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            log.warning("not copying %s into the sandbox: %s", folder, exc)
            return
        top = self.workdir.strip("/")
        for entry in entries:
            entry_rel = f"{rel}{entry.name}"
            name = f"{top}/{entry_rel}"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while walking
            # Inside .git (not tracked) everything is copied: the repository is the agent's to use.
            if (
                tracked
                and self.rules is not None
                and self.rules.ignored(entry_rel, stat.S_ISDIR(info.st_mode))
            ):
                continue
            mode = stat.S_IMODE(info.st_mode) & 0o1777  # no setuid/setgid in the sandbox
            if stat.S_ISLNK(info.st_mode):
                link = os.readlink(entry.path)
                yield self._header(name, tarfile.SYMTYPE, 0o777, mtime=info.st_mtime, linkname=link)
            elif stat.S_ISDIR(info.st_mode):
                yield self._header(name, tarfile.DIRTYPE, mode | 0o700, mtime=info.st_mtime)
                inner_tracked = tracked and entry.name != ".git"
                yield from self._walk(Path(entry.path), entry_rel + "/", tracked=inner_tracked)
            elif stat.S_ISREG(info.st_mode):
                stored = min(info.st_size, info.st_blocks * 512)
                if self.max_file_size and stored > self.max_file_size:
                    self.skipped.append((entry_rel, info.st_size))
                elif info.st_size - stored > SPARSE_SLACK:
                    # Mostly holes (a disk image, a preallocated file): copied with its holes kept
                    # after the archive, and not tracked (hashing it would read every hole).
                    self.sparse.append(SparseFile(entry_rel, Path(entry.path), info.st_size, mode))
                else:
                    digest = yield from self._file(Path(entry.path), name, info.st_size, mode, info.st_mtime)
                    if digest is not None and tracked:
                        self.baseline[entry_rel] = digest
            # devices, fifos and sockets are not copied: they mean nothing in the container

    def _file(
        self, path: Path, name: str, size: int, mode: int, mtime: float
    ) -> Generator[bytes, None, str | None]:
        """Yield the file's tar entry; return the md5 of the bytes sent (None: not copied)."""
        try:
            handle = path.open("rb")
        except OSError as exc:
            log.warning("not copying %s into the sandbox: %s", path, exc)
            return None
        with handle:
            yield self._header(name, tarfile.REGTYPE, mode, size=size, mtime=mtime)
            digest = hashlib.md5(usedforsecurity=False)  # as core.changes.md5
            left = size
            while left:
                data = handle.read(min(_CHUNK, left)) or b"\0" * min(_CHUNK, left)  # shrank: pad
                data = data[:left]
                digest.update(data)
                left -= len(data)
                self.sent_bytes += len(data)
                yield data
        if size % _BLOCK:
            yield b"\0" * (_BLOCK - size % _BLOCK)
        return digest.hexdigest()

    def _header(
        self, name: str, kind: bytes, mode: int, *, size: int = 0, mtime: float = 0, linkname: str = ""
    ) -> bytes:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, int(mtime)
        info.uid, info.gid, info.linkname = self.uid, self.gid, linkname
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

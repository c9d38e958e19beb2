"""The user's workspace on the host, read and written without ever following a symlink.

Every path is walked from the workspace root one folder at a time with `openat`-style calls
(`dir_fd`, `O_NOFOLLOW`, `O_DIRECTORY`), so no symlink, in the target or in any folder on the way,
can send a read or a write outside the workspace, and no race between a check and the write can
either. A file is written to a fresh temporary name in its folder (`O_CREAT | O_EXCL`) and renamed
over the target, so a reader never sees half a file. Only regular files are read, replaced or
deleted: a folder, a symlink, a fifo or a device at a target is refused with the reason. Nothing is
written inside a `.git` folder (a hook there would run on the user's next commit)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from core.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_NAME = re.compile(r"\.(.*)\.sidehand-[0-9a-f]{12}\.tmp", re.S)  # group 1: the target's name


def check_relative(rel: str, *, writing: bool = False) -> tuple[str, ...]:
    """The parts of a workspace-relative POSIX path, or UnsafePathError saying why it is refused."""
    if not rel or "\0" in rel:
        raise UnsafePathError(f"refusing {rel!r}: not a file path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(part in ("..", ".") for part in rel.split("/")) or "" in rel.split("/"):
        raise UnsafePathError(f"refusing {rel!r}: not a relative path inside the workspace")
    if writing and ".git" in pure.parts:
        raise UnsafePathError(f"refusing {rel!r}: Sidehand never writes inside a .git folder")
    return pure.parts


class HostWorkspace:
    """The folder at `root` (resolved once: the root itself may be reached through a symlink)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # ---- reading -----------------------------------------------------------------------------
    def read(self, rel: str) -> bytes | None:
        """The content of the regular file at `rel`, or None when nothing is there. Refuses (with
        UnsafePathError) a symlink or special file on the way or at the end."""
        parts = check_relative(rel)
        try:
            with self._folder(parts[:-1], create=False) as folder:
                # O_NONBLOCK: a fifo at the target must not block the open until a writer comes.
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                fd = os.open(parts[-1], flags, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._refusal(rel, exc) from exc
        try:
            _refuse_unless_regular(rel, os.fstat(fd).st_mode)
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def list_files(self, rel: str = "") -> dict[str, tuple[str, int, int]]:
        """The entries of the folder `rel` ("" for the root), by name: ("file" | "dir" | "link" |
        "other", size, mtime in ns), from lstat (a symlink is not followed). Empty when the folder
        is missing; UnsafePathError when a folder on the way is a symlink."""
        parts = check_relative(rel) if rel else ()
        try:
            with self._folder(parts, create=False) as folder, os.scandir(folder) as entries:
                out = {}
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # removed while listed
                        continue
                    mode = info.st_mode
                    kind = (
                        "file"
                        if stat.S_ISREG(mode)
                        else "dir"
                        if stat.S_ISDIR(mode)
                        else "link"
                        if stat.S_ISLNK(mode)
                        else "other"
                    )
                    out[entry.name] = (kind, info.st_size, info.st_mtime_ns)
                return out
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._refusal(rel, exc) from exc

    def check_writable(self, rel: str) -> None:
        """Raise UnsafePathError if `rel` could not be replaced or deleted (without changing anything)."""
        parts = check_relative(rel, writing=True)
        try:
            with self._folder(parts[:-1], create=False) as folder:
                self._target_kind(rel, folder, parts[-1])
        except FileNotFoundError:
            return  # a folder on the way is missing: it will be created
        except OSError as exc:
            raise self._refusal(rel, exc) from exc

    # ---- writing -----------------------------------------------------------------------------
    def write(self, rel: str, data: bytes, mode: int | None = None) -> None:
        """Replace (or create) the file at `rel` with `data`. An existing file keeps its mode;
        `mode` sets a new file's (the umask applies, as for any new file)."""
        parts = check_relative(rel, writing=True)
        try:
            with self._folder(parts[:-1], create=True) as folder:
                existing = self._target_kind(rel, folder, parts[-1])
                temp, fd = self._temp_file(rel, folder, parts[-1], 0o666 if mode is None else mode)
                try:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(data)
                        if existing is not None:
                            os.fchmod(handle.fileno(), stat.S_IMODE(existing.st_mode))
                    os.rename(temp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temp, dir_fd=folder)
                    raise
        except UnsafePathError:
            raise
        except OSError as exc:
            raise self._refusal(rel, exc) from exc

    def delete(self, rel: str) -> None:
        """Remove the regular file at `rel` (nothing there: nothing to do)."""
        parts = check_relative(rel, writing=True)
        try:
            with self._folder(parts[:-1], create=False) as folder:
                if self._target_kind(rel, folder, parts[-1]) is not None:
                    os.unlink(parts[-1], dir_fd=folder)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._refusal(rel, exc) from exc

    def remove_temp_files(self, rels: Iterable[str]) -> int:
        """Remove the temporary files that writes of `rels` left beside them when their process
        was killed mid-write; the number removed. Only regular files at this module's temp names
        go; a folder that cannot be entered safely is left alone."""
        by_folder: dict[tuple[str, ...], set[str]] = {}
        for rel in rels:
            try:
                parts = check_relative(rel, writing=True)
            except UnsafePathError:
                continue  # never written either
            by_folder.setdefault(parts[:-1], set()).add(parts[-1][:100])
        removed = 0
        for folder_parts, names in by_folder.items():
            with contextlib.suppress(OSError), self._folder(folder_parts, create=False) as folder:
                for entry in os.listdir(folder):
                    found = _TEMP_NAME.fullmatch(entry)
                    if not found or found.group(1) not in names:
                        continue
                    if stat.S_ISREG(os.stat(entry, dir_fd=folder, follow_symlinks=False).st_mode):
                        os.unlink(entry, dir_fd=folder)
                        removed += 1
        return removed

    # ---- walking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _folder(self, parts: tuple[str, ...], *, create: bool) -> Iterator[int]:
        """An open fd of the folder `parts` below the root, reached without following a symlink
        (missing folders are made when `create`)."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for depth, part in enumerate(parts, 1):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):  # made meanwhile: open it below
                        os.mkdir(part, 0o777, dir_fd=fd)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _not_a_folder("/".join(parts[:depth]), fd, part) from exc
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _target_kind(rel: str, folder: int, name: str) -> os.stat_result | None:
        """The stat of the regular file at the target, None when nothing is there; refuses others."""
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return None
        _refuse_unless_regular(rel, info.st_mode)
        return info

    @staticmethod
    def _temp_file(rel: str, folder: int, name: str, mode: int) -> tuple[str, int]:
        """A new file at a random name beside the target, opened for writing. Created exclusively
        and without following a symlink: whatever already sits at a name is never written."""
        for _ in range(8):
            temp = f".{name[:100]}.sidehand-{secrets.token_hex(6)}.tmp"  # see _TEMP_NAME
            try:
                return temp, os.open(temp, _NEW_FILE_FLAGS, mode, dir_fd=folder)
            except FileExistsError:
                continue
        raise UnsafePathError(f"refusing {rel!r}: cannot create a temporary file beside it")

    @staticmethod
    def _refusal(rel: str, exc: OSError) -> UnsafePathError:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            return UnsafePathError(f"refusing {rel!r}: it is a symlink on the host")
        if exc.errno == errno.EISDIR:
            return UnsafePathError(f"refusing {rel!r}: it is a folder on the host")
        return UnsafePathError(f"cannot write {rel!r}: {exc.strerror or exc}")


def _refuse_unless_regular(rel: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"refusing {rel!r}: it is a symlink on the host")
    if stat.S_ISDIR(mode):
        raise UnsafePathError(f"refusing {rel!r}: it is a folder on the host")
    raise UnsafePathError(f"refusing {rel!r}: it is a special file (fifo, socket or device) on the host")


def _not_a_folder(where: str, parent: int, name: str) -> UnsafePathError:
    """Why the folder `where` could not be entered: a symlink, or not a folder at all."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError as exc:
        return UnsafePathError(f"refusing {where!r}: {exc.strerror or exc}")
    if stat.S_ISLNK(info.st_mode):
        return UnsafePathError(f"refusing {where!r}: this folder is a symlink on the host")
    return UnsafePathError(f"refusing {where!r}: it is a file, not a folder, on the host")

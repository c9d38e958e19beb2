"""Runs INSIDE the sandbox container (sent as `python3 -c`): reports which workspace files changed,
as they change, with inotify. Standard library only, Python 3.7 or later: the image's own Python
runs it (any image with python3; without it the sandbox falls back to scanning).

    python3 -c SOURCE ROOT [EXCLUDED_NAME ...]

stdout: each changed path relative to ROOT, NUL-terminated (raw bytes: any name survives).
stdin: a line "sync N" is answered with "\\1sync N\\0" once every change that happened before the
line was read has been reported (inotify queues an event when the change happens, so draining the
queue after reading the line is enough). "\\1overflow\\0" means events were lost (queue overflow,
watch limit): the reader must scan instead. Folders named in EXCLUDED_NAME (and .git) are not
watched; a new folder is watched as it appears and its files reported."""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import sys

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
HEADER = struct.Struct("iIII")

libc = ctypes.CDLL(None, use_errno=True)
root = b""
skip: set[bytes] = set()
watches: dict[int, bytes] = {}  # wd -> folder path relative to root (b"" for the root)
out = sys.stdout.buffer
fd = -1


def emit(data: bytes) -> None:
    out.write(data)


def overflow() -> None:
    emit(b"\x01overflow\x00")


def forget(rel: bytes) -> None:
    """Stop watching the folder `rel` and those below it (it was removed or moved away)."""
    for wd, folder in list(watches.items()):
        if folder == rel or folder.startswith(rel + b"/"):
            libc.inotify_rm_watch(fd, wd)
            del watches[wd]


def watch(rel: bytes) -> None:
    """Watch the folder `rel` and every folder below it; report the files found there (they may
    have been written before the watch existed)."""
    top = root + b"/" + rel if rel else root
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in skip]
        folder_rel = os.path.relpath(folder, root) if folder != root else b""
        folder_rel = b"" if folder_rel == b"." else folder_rel
        wd = libc.inotify_add_watch(fd, folder, MASK)
        if wd < 0:
            overflow()  # the watch limit, most likely: the reader scans from now on
            return
        watches[wd] = folder_rel
        if rel:  # a new folder: its files are news
            for name in files:
                emit((folder_rel + b"/" + name if folder_rel else name) + b"\x00")


def handle(buffer: bytes) -> None:
    offset = 0
    while offset + HEADER.size <= len(buffer):
        wd, mask, _cookie, length = HEADER.unpack_from(buffer, offset)
        name = buffer[offset + HEADER.size : offset + HEADER.size + length].rstrip(b"\x00")
        offset += HEADER.size + length
        if mask & IN_Q_OVERFLOW:
            overflow()
            continue
        if mask & IN_IGNORED:
            watches.pop(wd, None)
            continue
        folder = watches.get(wd)
        if folder is None or not name:
            continue
        rel = folder + b"/" + name if folder else name
        if mask & IN_ISDIR:
            if name in skip:
                continue
            if mask & (IN_CREATE | IN_MOVED_TO):
                watch(rel)
            elif mask & (IN_DELETE | IN_MOVED_FROM):
                forget(rel)
                emit(b"\x01gone " + rel + b"\x00")  # every file below it is gone
            continue
        emit(rel + b"\x00")


def drain() -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            raise
        handle(data)


def main() -> None:
    global root, skip, fd
    root = os.fsencode(sys.argv[1]).rstrip(b"/")
    skip = {b".git"} | {os.fsencode(name) for name in sys.argv[2:]}
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        sys.exit("inotify is not available: " + os.strerror(ctypes.get_errno()))
    watch(b"")
    emit(b"\x01ready\x00")
    out.flush()
    pending = b""
    while True:
        readable, _, _ = select.select([fd, 0], [], [])
        if fd in readable:
            drain()
        if 0 in readable:
            chunk = os.read(0, 4096)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                drain()
                emit(b"\x01" + line + b"\x00")
        out.flush()


if __name__ == "__main__":
    main()

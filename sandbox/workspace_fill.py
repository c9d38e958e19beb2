"""Filling a sandbox's /workspace from the host: the archive of what the ignore rules and the size
limit let in, sent through the engine's archive API (or, for a tmpfs, to a `tar -x` in the
container), then the sparse files with their holes kept. A new sandbox is filled this way, and so
is a tmpfs emptied by a restart."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import SandboxError
from core.ignore import IgnoreRules
from core.protocols import WORKDIR
from sandbox.container import SANDBOX_HOME, SandboxSettings, docker_errors
from sandbox.docker_exec import DockerExec, ExecShellProcess
from sandbox.file_channel import FileChannel
from sandbox.workspace_copy import SparseFile, WorkspaceArchive, folders_archive

log = logging.getLogger(__name__)

TAR_RECORD = 10240  # tar's default record: 20 blocks of 512 bytes


def workspace_archive(root: Path, settings: SandboxSettings, rules: IgnoreRules) -> WorkspaceArchive:
    return WorkspaceArchive(
        root,
        WORKDIR,
        settings.uid,
        settings.gid,
        rules=rules,
        max_file_size=settings.max_file_size,
        extra_dirs=() if settings.tmpfs else (SANDBOX_HOME,),  # a tmpfs copy makes it apart
    )


def left_out_notes(archive: WorkspaceArchive, settings: SandboxSettings) -> dict[str, str]:
    return {
        path: f"over the {size_text(settings.max_file_size)} limit ({size_text(size)}): not copied into the sandbox"
        for path, size in archive.skipped
    }


async def copy_into_tmpfs(docker: DockerExec, archive: WorkspaceArchive, settings: SandboxSettings) -> None:
    """The engine's archive API writes below a tmpfs, not into it: tar in the container."""
    with docker_errors("make the sandbox's home folder"):
        home = folders_archive((SANDBOX_HOME,), settings.uid, settings.gid)
        await docker.call(docker.api.put_archive, docker.container_id, "/", home)
    await _extract_in_container(docker, archive)


async def copy_sparse_files(
    files: FileChannel, archive: WorkspaceArchive, settings: SandboxSettings
) -> dict[str, str]:
    """Copy the archive's sparse files (after its stream was sent); the md5 of every file copied."""
    copied = dict(archive.baseline)
    for sparse in archive.sparse:
        # Tracked (its md5 known) only within the size limit: hashing reads every hole.
        track = not settings.max_file_size or sparse.size <= settings.max_file_size
        digest = await _copy_sparse(files, sparse, track=track)
        if digest is not None:
            copied[sparse.rel] = digest
    return copied


async def put_archive(docker: DockerExec, archive: WorkspaceArchive) -> None:
    """Send `archive` through the engine's archive API (into the container's own filesystem)."""
    with docker_errors("copy the workspace into the sandbox"):
        await docker.call(docker.api.put_archive, docker.container_id, "/", archive.chunks())


async def _extract_in_container(docker: DockerExec, archive: WorkspaceArchive) -> None:
    """Stream `archive` to a `tar -x` in the container (read on a worker thread, 1 MiB at a time)."""
    process = await ExecShellProcess.open(docker, ["tar", "-xf", "-", "-C", "/"], workdir="/")
    try:
        chunks = archive.chunks()
        sent = 0
        while piece := await asyncio.to_thread(_take, chunks, 1 << 20):
            await process.send(piece)
            sent += len(piece)
        # tar stops at the end-of-archive blocks once it has read a whole record: pad to one, so
        # no end of input is needed (a TLS link to a remote engine cannot half-close).
        await process.send(bytes(-sent % TAR_RECORD))
        said = bytearray()
        while data := await process.receive():
            said += data
        code = await process.exit_code()
    finally:
        await process.close()
    if code != 0:
        raise SandboxError(
            f"could not copy the workspace into the sandbox's tmpfs (tar exited {code}): "
            f"{said.decode(errors='replace').strip()[:500]}"
        )


def _take(chunks: Iterator[bytes], most: int) -> bytes:
    """The next pieces of `chunks`, joined, about `most` bytes (empty: the end)."""
    taken = bytearray()
    for chunk in chunks:
        taken += chunk
        if len(taken) >= most:
            break
    return bytes(taken)


async def _copy_sparse(files: FileChannel, sparse: SparseFile, *, track: bool) -> str | None:
    """Copy a file that is mostly holes with its holes kept; its md5 if `track` (None: not tracked,
    or it could not be read)."""
    digest = hashlib.md5(usedforsecurity=False)  # as core.changes.md5, holes read as zeros
    position = 0

    def hashed(pieces: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
        nonlocal position
        for offset, data in pieces:
            if track:
                _hash_zeros(digest, offset - position)
                digest.update(data)
            position = offset + len(data)
            yield offset, data

    try:
        await files.write_sparse(sparse.rel, sparse.size, sparse.mode, hashed(sparse.pieces()))
    except OSError as exc:
        log.warning("could not copy %s into the sandbox: %s", sparse.rel, exc)
        return None
    if not track:
        return None
    _hash_zeros(digest, sparse.size - position)
    return digest.hexdigest()


_ZEROS = bytes(1 << 20)


def _hash_zeros(digest: Any, count: int) -> None:
    while count > 0:
        digest.update(_ZEROS[: min(count, len(_ZEROS))])
        count -= len(_ZEROS)


def size_text(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")

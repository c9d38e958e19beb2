"""The change set: what the sandbox changed in its copy of the workspace, as files with diffs.

Writing it to the user's files is `core.apply`'s job. Paths are workspace-relative POSIX `str`s
that may hold undecodable bytes (core.paths): patches quote them as git does; displays escape them."""

from __future__ import annotations

import base64
import difflib
import hashlib
import zlib
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.paths import escape_path, git_quote

ChangeStatus = Literal["added", "modified", "deleted"]


class FileChange(BaseModel):
    """One file's change. `path` may hold undecodable bytes (surrogateescape): use
    `escape_path(path)` wherever it leaves for JSON or a person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # relative to the workspace root, POSIX separators
    status: ChangeStatus
    diff: str  # unified diff (git-quoted names); a git binary patch for binary files
    binary: bool = False
    new_content: bytes | None = None  # None for deletions
    base_md5: str | None = None  # md5 of the host file the change was made against (None: absent)
    # The host's file changed too since the agent's side first changed it: applying would
    # overwrite the user's edit (refused without force). `host_diff`: the user's change, from the
    # same base (when the base's content was kept).
    conflict: bool = False
    host_diff: str | None = None

    @property
    def shown_path(self) -> str:
        return escape_path(self.path)

    @property
    def line(self) -> str:
        """ "A path" / "M path" / "D path" (and "(conflict)" when the host changed it too), as
        summaries list it."""
        return f"{self.status[0].upper()} {self.shown_path}" + (" (conflict)" if self.conflict else "")


class ChangeSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    files: tuple[FileChange, ...] = ()

    def summary(self) -> str:
        if not self.files:
            return "no changes"
        return ", ".join(c.line for c in self.files)

    def patch(self) -> str:
        """The whole change set as one patch `git apply` takes (binary files as git binary patches).
        Always valid UTF-8: names are quoted as git quotes them, and text diffs are of UTF-8 text."""
        return "".join(c.diff for c in self.files)

    def only(self, paths: Iterable[str]) -> ChangeSet:
        wanted = set(paths)
        return ChangeSet(files=tuple(c for c in self.files if c.path in wanted))


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_of(data: bytes | None) -> str | None:
    """md5 of a file's content; None for no file."""
    return None if data is None else md5(data)


def is_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def make_change(path: str, old: bytes | None, new: bytes | None) -> FileChange:
    """Describe one file's change, with a diff `git apply` takes (a/ b/ prefixes)."""
    status: ChangeStatus = "added" if old is None else "deleted" if new is None else "modified"
    binary = not all(is_text(x) for x in (old, new) if x is not None)
    return FileChange(
        path=path,
        status=status,
        diff=_binary_patch(path, old, new) if binary else _text_diff(path, old, new),
        binary=binary,
        new_content=new,
        base_md5=None if old is None else md5(old),
    )


def _text_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    before = (old or b"").decode().splitlines(keepends=True)
    after = (new or b"").decode().splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        after,
        fromfile="/dev/null" if old is None else git_quote(f"a/{path}"),
        tofile="/dev/null" if new is None else git_quote(f"b/{path}"),
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _binary_patch(path: str, old: bytes | None, new: bytes | None) -> str:
    """A git binary patch (`GIT binary patch`, zlib + base85 literals, forward then reverse)."""
    header = [f"diff --git {git_quote(f'a/{path}')} {git_quote(f'b/{path}')}\n"]
    if old is None:
        header.append("new file mode 100644\n")
    elif new is None:
        header.append("deleted file mode 100644\n")
    index = (
        f"index {_git_blob_id(old)}..{_git_blob_id(new)}\n"  # git applies binary patches only with full ids
    )
    return "".join([*header, index, "GIT binary patch\n", _literal(new or b""), _literal(old or b"")])


def _literal(data: bytes) -> str:
    packed = zlib.compress(data, 9)
    lines = [f"literal {len(data)}\n"]
    for start in range(0, len(packed), 52):
        chunk = packed[start : start + 52]
        size = len(chunk)
        mark = chr(ord("A") + size - 1) if size <= 26 else chr(ord("a") + size - 27)
        lines.append(mark + base64.b85encode(chunk, pad=True).decode("ascii") + "\n")
    return "".join(lines) + "\n"


def _git_blob_id(data: bytes | None) -> str:
    if data is None:
        return "0" * 40
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()

"""The in-container watcher (sandbox/watch_workspace.py), run on the host against a folder: what it
reports, when it acknowledges a sync, what it leaves out. The Docker tests run it in a container."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

WATCHER = Path(__file__).resolve().parents[2] / "sandbox" / "watch_workspace.py"


class Watcher:
    def __init__(self, root: Path, *excluded: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WATCHER), str(root), *excluded],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.buffer = b""
        self.syncs = 0
        assert self._until(b"\x01ready") == []

    def _until(self, marker: bytes) -> list[bytes]:
        """The tokens before `marker` (read as they come; the watcher flushes after each event)."""
        assert self.proc.stdout is not None
        tokens: list[bytes] = []
        while True:
            while b"\0" in self.buffer:
                token, self.buffer = self.buffer.split(b"\0", 1)
                if token == marker:
                    return tokens
                tokens.append(token)
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the watcher ended"
            self.buffer += chunk

    def sync(self) -> set[bytes]:
        """Everything reported since the last sync."""
        assert self.proc.stdin is not None
        self.syncs += 1
        self.proc.stdin.write(f"sync {self.syncs}\n".encode())
        self.proc.stdin.flush()
        return set(self._until(f"\x01sync {self.syncs}".encode()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # end of input: the watcher exits
        assert self.proc.wait(timeout=10) == 0
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "mod.py").write_text("x\n")
    (folder / "node_modules" / "lib").mkdir(parents=True)
    (folder / ".git").mkdir()
    return folder


@pytest.fixture
def watcher(root: Path) -> Iterator[Watcher]:
    w = Watcher(root, "node_modules")
    yield w
    w.close()


def test_writes_new_folders_and_odd_names_are_reported_once_synced(root: Path, watcher: Watcher) -> None:
    assert watcher.sync() == set()  # what was there at the start is not news
    (root / "pkg" / "mod.py").write_text("y\n")
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_text("deep\n")
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("latin\n")
    (root / "new\nline").write_text("nl\n")
    assert watcher.sync() == {b"pkg/mod.py", b"a/b/deep.txt", b"caf\xe9.txt", b"new\nline"}
    assert watcher.sync() == set()  # each change reported once


def test_removed_and_moved_folders_are_reported_as_gone(root: Path, watcher: Watcher) -> None:
    (root / "pkg" / "sub").mkdir()
    (root / "pkg" / "sub" / "s.txt").write_text("s\n")
    watcher.sync()
    os.rename(root / "pkg", root / "moved")
    assert watcher.sync() >= {b"\x01gone pkg", b"moved/mod.py", b"moved/sub/s.txt"}
    (root / "moved" / "sub" / "s.txt").write_text("again\n")  # the moved folder is still watched
    assert watcher.sync() == {b"moved/sub/s.txt"}
    subprocess.run(["rm", "-r", str(root / "moved")], check=True)
    assert b"\x01gone moved" in watcher.sync()


def test_git_and_excluded_folders_are_not_watched(root: Path, watcher: Watcher) -> None:
    (root / ".git" / "index").write_text("i\n")
    (root / "node_modules" / "lib" / "x.js").write_text("x\n")
    (root / "node_modules" / "new").mkdir()
    (root / "visible.txt").write_text("v\n")
    assert watcher.sync() == {b"visible.txt"}

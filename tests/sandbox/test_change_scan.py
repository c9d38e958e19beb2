"""Change detection and the workspace tar, without an engine."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from core.changes import md5
from core.protocols import PathKind
from sandbox.change_scan import compute_changes, parse_md5sum
from sandbox.workspace_copy import WorkspaceArchive


def test_parse_md5sum_unescapes_odd_names() -> None:
    digest = "d41d8cd98f00b204e9800998ecf8427e"
    output = (
        f"{digest}  ./plain name\n"
        f"\\{digest}  ./new\\nline\n"
        f"\\{digest}  ./back\\\\slash\n"
        f"\\{digest}  ./cr\\rx\n"
        f"{digest}  ./ünï\n"
    ).encode()
    assert parse_md5sum(output) == {
        "plain name": digest,
        "new\nline": digest,
        "back\\slash": digest,
        "cr\rx": digest,
        "ünï": digest,
    }


async def test_compute_changes_diffs_against_the_host_and_keeps_the_copied_base(tmp_path: Path) -> None:
    (tmp_path / "same.txt").write_text("same\n")
    (tmp_path / "edited.txt").write_text("agent base\n")
    (tmp_path / "host_moved.txt").write_text("user edit\n")
    sandbox_files = {"edited.txt": b"agent new\n", "host_moved.txt": b"agent new\n", "added.txt": b"+\n"}
    baseline = {
        "same.txt": md5(b"same\n"),
        "edited.txt": md5(b"agent base\n"),
        "host_moved.txt": md5(b"copied\n"),
        "gone.txt": md5(b"gone\n"),  # deleted in the sandbox and by the user: nothing to do
    }
    current = {path: md5(data) for path, data in sandbox_files.items()} | {"same.txt": md5(b"same\n")}

    changes = await compute_changes(tmp_path, baseline, current, FakeSandboxFiles(sandbox_files))
    by_path = {c.path: c for c in changes.files}
    assert list(by_path) == ["added.txt", "edited.txt", "host_moved.txt"]
    assert by_path["edited.txt"].base_md5 == md5(b"agent base\n")
    moved = by_path["host_moved.txt"]
    assert "-user edit\n+agent new\n" in moved.diff
    assert moved.base_md5 == md5(b"copied\n")


class FakeSandboxFiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def read_file(self, path: str) -> bytes:
        return self.files[path]

    async def path_kind(self, path: str) -> PathKind | None:
        return "file" if path in self.files else None


def test_archive_keeps_modes_symlinks_owner_and_records_the_baseline(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "a.py").write_text("a\n")
    (ws / "tool.sh").write_text("#!/bin/sh\n")
    (ws / "tool.sh").chmod(0o755)
    (ws / "link").symlink_to("pkg/a.py")
    (ws / "node_modules").mkdir()
    (ws / "node_modules" / "x.js").write_text("x")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref\n")
    os.mkfifo(ws / "fifo")
    big = os.urandom(300_000)
    (ws / "big.bin").write_bytes(big)
    archive = WorkspaceArchive(ws, "/workspace", 1000, 1000, ("node_modules",), ("/home/sidehand",))
    data = b"".join(archive.chunks())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == [
            "home/sidehand",
            "workspace",
            "workspace/.git",
            "workspace/.git/HEAD",
            "workspace/big.bin",
            "workspace/link",
            "workspace/pkg",
            "workspace/pkg/a.py",
            "workspace/tool.sh",
        ]
        assert all((m.uid, m.gid) == (1000, 1000) for m in members.values())
        assert members["workspace/tool.sh"].mode == 0o755
        assert members["workspace/link"].issym() and members["workspace/link"].linkname == "pkg/a.py"
        extracted = tar.extractfile("workspace/big.bin")
        assert extracted is not None and extracted.read() == big
    assert archive.baseline == {"big.bin": md5(big), "pkg/a.py": md5(b"a\n"), "tool.sh": md5(b"#!/bin/sh\n")}

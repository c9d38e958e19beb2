"""What the Docker sandbox holds of the host's workspace: ignore rules, sparse and huge files, the
host's later changes (compare-and-set, so the agent's work is never overwritten), and a tmpfs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.changes import md5
from core.host_watch import HostFile
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory


@pytest.fixture
def ignoring_workspace(workspace: Path) -> Path:
    (workspace / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (workspace / "build").mkdir()
    (workspace / "build" / "out.js").write_text("generated\n")
    (workspace / "debug.log").write_text("noise\n")
    (workspace / "keep.log").write_text("kept\n")
    (workspace / "pkg" / ".gitignore").write_text("secret.env\n")
    (workspace / "pkg" / "secret.env").write_text("TOKEN=1\n")
    return workspace


async def test_the_ignore_rules_decide_what_is_copied_and_collected(
    factory: DockerSandboxFactory, ignoring_workspace: Path
) -> None:
    box = await factory(ignoring_workspace, "ignore")
    try:
        listing = await box.run("ls build debug.log pkg/secret.env 2>&1 | grep -c 'No such'; cat keep.log")
        assert listing.output == "3\nkept\n"
        assert "build/out.js" not in box.copied and "keep.log" in box.copied
        await box.run("mkdir -p build && echo new > build/app.js && echo x > more.log && echo y > keep.log")
        await box.run("mkdir -p node_modules/dep && echo z > node_modules/dep/index.js")
        assert await box.collect_changes() == {"keep.log": b"y\n"}
    finally:
        await box.close()


async def test_gitignore_off_and_own_excludes(docker_client: Any, ignoring_workspace: Path) -> None:
    settings = SandboxSettings(gitignore=False, excludes=("*.log", "node_modules"))
    box = await DockerSandboxFactory(settings, docker_client=docker_client)(ignoring_workspace, "own")
    try:
        result = await box.run("cat build/out.js pkg/secret.env; ls keep.log .venv 2>&1 | grep -c 'No such'")
        assert result.output == "generated\nTOKEN=1\n1\n"  # *.log excludes keep.log too; .venv is copied
    finally:
        await box.close()


async def test_a_sparse_file_stays_sparse_and_a_huge_one_is_left_out(
    docker_client: Any, workspace: Path
) -> None:
    with (workspace / "disk.img").open("wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB of holes ...
        handle.seek(1 << 30)
        handle.write(b"middle")  # ... with a little data
    small = workspace / "small.sparse"
    with small.open("wb") as handle:
        handle.truncate(4 << 20)
        handle.seek(3 << 20)
        handle.write(b"tail data")
    (workspace / "big.bin").write_bytes(os.urandom(6 << 20))
    settings = SandboxSettings(max_file_size=5 << 20)
    box = await DockerSandboxFactory(settings, docker_client=docker_client)(workspace, "sparse")
    try:
        sizes = await box.run("stat -c '%n %s' disk.img small.sparse; du -k disk.img | cut -f1; ls big.bin")
        lines = sizes.output.splitlines()
        assert lines[:2] == [f"disk.img {2 << 30}", f"small.sparse {4 << 20}"]
        assert int(lines[2]) < 1024  # kilobytes actually stored: the holes were kept
        assert "No such file" in lines[3]
        middle = await box.run("dd if=disk.img bs=1 skip=$((1<<30)) count=6 2>/dev/null")
        assert middle.output == "middle"
        assert box.copied["small.sparse"] == md5(small.read_bytes())  # within the limit: tracked
        assert "disk.img" not in box.copied  # beyond it: not hashed
        assert "big.bin" in box.left_out and "limit" in box.left_out["big.bin"]
        await box.run("head -c 6000000 /dev/zero > made.bin; echo s > fine.txt")
        assert await box.collect_changes() == {"fine.txt": b"s\n"}
        assert "made.bin" in box.left_out
    finally:
        await box.close()


async def test_follow_host_never_overwrites_what_the_agent_changed(sandbox: DockerSandbox) -> None:
    readme, mod = sandbox.copied["README.md"], sandbox.copied["pkg/mod.py"]
    await sandbox.run("echo agent > pkg/mod.py")  # the agent's change, not collected yet
    taken = await sandbox.follow_host(
        {
            "README.md": HostFile(b"from the host\n"),
            "pkg/mod.py": HostFile(b"host edit\n"),
            "new/tool.sh": HostFile(b"#!/bin/sh\necho tool\n", executable=True),
            "run.sh": HostFile(None),
        },
        {"README.md": readme, "pkg/mod.py": mod, "new/tool.sh": None, "run.sh": sandbox.copied["run.sh"]},
    )
    assert taken == {"README.md", "new/tool.sh", "run.sh"}
    shown = await sandbox.run("cat README.md pkg/mod.py; new/tool.sh; ls run.sh 2>&1 | grep -c 'No such'")
    assert shown.output == "from the host\nagent\ntool\n1\n"
    assert sandbox.copied["README.md"] == md5(b"from the host\n") and "run.sh" not in sandbox.copied
    assert await sandbox.collect_changes() == {"pkg/mod.py": b"agent\n"}  # only the agent's work


async def test_follow_host_in_bulk_and_with_odd_names(sandbox: DockerSandbox) -> None:
    names = [f"many/file {n}.txt" for n in range(8)] + ["many/-dash", "many/caf\udce9", "many/a\nb"]
    await sandbox.write_file("many/file 3.txt", b"agent wrote it\n")
    taken = await sandbox.follow_host(
        {name: HostFile(f"host {name}".encode("utf-8", "surrogateescape")) for name in names},
        dict.fromkeys(names, None),
    )
    assert taken == set(names) - {"many/file 3.txt"}
    assert await sandbox.read_file("many/file 3.txt") == b"agent wrote it\n"
    assert await sandbox.read_file("many/caf\udce9") == "host many/caf\udce9".encode(
        "utf-8", "surrogateescape"
    )
    assert set(await sandbox.collect_changes()) == {"many/file 3.txt"}


async def test_a_tmpfs_workspace(docker_client: Any, workspace: Path) -> None:
    settings = SandboxSettings(tmpfs="64m")
    box = await DockerSandboxFactory(settings, docker_client=docker_client)(workspace, "tmpfs")
    try:
        result = await box.run("df -P /workspace | tail -1 | awk '{print $1}'; ./run.sh; stat -c %u .")
        assert result.output.splitlines() == ["tmpfs", "ran", "1000"]
        await box.run("echo t > t.txt")
        assert await box.collect_changes() == {"t.txt": b"t\n"}
    finally:
        await box.close()

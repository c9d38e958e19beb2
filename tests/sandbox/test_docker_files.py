"""Files in the Docker sandbox: the workspace copy, the file channel, and the change set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.changes import check_conflicts, md5, write_changes
from sandbox.docker_sandbox import DockerSandbox

pytestmark = pytest.mark.docker


async def test_the_copy_keeps_modes_symlinks_and_owner_and_skips_excludes(sandbox: DockerSandbox) -> None:
    listing = await sandbox.run("stat -c '%n %a %u:%g %F' run.sh pkg/mod.py link.md pkg .git/HEAD")
    assert listing.output.splitlines() == [
        "run.sh 755 1000:1000 regular file",
        "pkg/mod.py 644 1000:1000 regular file",
        "link.md 777 1000:1000 symbolic link",
        "pkg 755 1000:1000 directory",
        ".git/HEAD 644 1000:1000 regular file",
    ]
    assert (await sandbox.run("./run.sh; readlink link.md")).output == "ran\nREADME.md\n"
    excluded = await sandbox.run("ls -d node_modules .venv pkg/__pycache__ 2>&1 | wc -l; ls -a ~")
    assert excluded.output.split("\n")[0] == "3"  # three "No such file" lines
    assert "No such file" not in excluded.output.split("\n", 1)[1]  # HOME exists


async def test_read_and_write_text_and_binary_files(sandbox: DockerSandbox) -> None:
    assert await sandbox.read_file("README.md") == b"# demo\n\nline three\n"
    assert await sandbox.read_file("/workspace/pkg/data.bin") == bytes(range(256))
    binary = os.urandom(200_000) + b"\n__sidehand_fake 0\n" + b"\0" * 10
    await sandbox.write_file("new/deeper/blob.bin", binary)
    assert await sandbox.read_file("new/deeper/blob.bin") == binary
    await sandbox.write_file("/tmp/notes.txt", "héllo\nno final newline".encode())
    assert await sandbox.read_file("/tmp/notes.txt") == "héllo\nno final newline".encode()
    await sandbox.write_file("empty.txt", b"")
    assert await sandbox.read_file("empty.txt") == b""
    await sandbox.write_file("run.sh", b"#!/bin/sh\necho changed\n")
    result = await sandbox.run("./run.sh; stat -c %a run.sh")
    assert result.output == "changed\n755\n"  # overwriting keeps the mode


async def test_odd_paths_survive_quoting(sandbox: DockerSandbox) -> None:
    for name in ("it's here.txt", "$HOME `x`.txt", 'quote"d.txt', "-dash.txt", "ünï.txt"):
        await sandbox.write_file(f"odd/{name}", name.encode())
        assert await sandbox.read_file(f"odd/{name}") == name.encode()
    assert len(await sandbox.list_dir("odd")) == 5


async def test_file_errors_are_the_builtin_exceptions(sandbox: DockerSandbox) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        await sandbox.read_file("missing.txt")
    with pytest.raises(IsADirectoryError):
        await sandbox.read_file("pkg")
    with pytest.raises(IsADirectoryError):
        await sandbox.write_file("pkg", b"x")
    with pytest.raises(PermissionError, match="permission denied"):
        await sandbox.read_file("/etc/shadow")
    with pytest.raises(PermissionError):
        await sandbox.write_file("/etc/passwd", b"root::0:0::/:/bin/sh\n")
    with pytest.raises(NotADirectoryError):
        await sandbox.write_file("README.md/inner.txt", b"x")
    with pytest.raises(NotADirectoryError):
        await sandbox.list_dir("README.md")
    with pytest.raises(FileNotFoundError):
        await sandbox.list_dir("nowhere")


async def test_path_kind(sandbox: DockerSandbox) -> None:
    assert await sandbox.path_kind("README.md") == "file"
    assert await sandbox.path_kind("link.md") == "file"  # follows the link
    assert await sandbox.path_kind("pkg") == "dir"
    assert await sandbox.path_kind("/") == "dir"
    assert await sandbox.path_kind("/dev/null") == "other"
    assert await sandbox.path_kind("missing") is None
    await sandbox.run("ln -s nowhere dangling")
    assert await sandbox.path_kind("dangling") == "other"


async def test_list_dir(sandbox: DockerSandbox) -> None:
    await sandbox.run("mkdir -p pkg/sub/deep && touch pkg/sub/deep/x.py pkg/sub/.secret")
    assert await sandbox.list_dir(".", max_depth=1) == ["README.md", "link.md", "pkg/", "run.sh"]
    assert await sandbox.list_dir("pkg") == [
        "data.bin",
        "mod.py",
        "sub/",
        "sub/deep/",
    ]
    assert await sandbox.list_dir("/workspace/pkg/", max_depth=3) == [
        "data.bin",
        "mod.py",
        "sub/",
        "sub/deep/",
        "sub/deep/x.py",
    ]


async def test_changes_reports_added_modified_and_deleted(sandbox: DockerSandbox, workspace: Path) -> None:
    assert (await sandbox.changes()).files == ()
    await sandbox.run(
        "printf '# demo\\n\\nline 3\\nmore\\n' > README.md; rm pkg/mod.py; mkdir -p new; echo hi > new/a.txt;"
        "head -c 100 /dev/zero > pkg/data.bin; git init -q 2>/dev/null; touch .git/index.lock;"
        "mkdir -p node_modules/x pkg/__pycache__; touch node_modules/x/i.js pkg/__pycache__/m.pyc"
    )
    changes = await sandbox.changes()
    assert [(c.path, c.status) for c in changes.files] == [
        ("README.md", "modified"),
        ("new/a.txt", "added"),
        ("pkg/data.bin", "modified"),
        ("pkg/mod.py", "deleted"),
    ]
    readme, added, data, deleted = changes.files
    assert readme.diff == (
        "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,4 @@\n # demo\n \n-line three\n+line 3\n+more\n"
    )
    assert readme.base_md5 == md5(b"# demo\n\nline three\n")
    assert added.diff == "--- /dev/null\n+++ b/new/a.txt\n@@ -0,0 +1 @@\n+hi\n"
    assert (added.base_md5, added.new_content) == (None, b"hi\n")
    assert (data.binary, data.diff, data.new_content) == (True, "", b"\0" * 100)
    assert deleted.diff == "--- a/pkg/mod.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-def f():\n-    return 1\n"
    assert (deleted.new_content, deleted.base_md5) == (None, md5(b"def f():\n    return 1\n"))
    write_changes(workspace, changes)
    assert (workspace / "new" / "a.txt").read_text() == "hi\n"
    assert not (workspace / "pkg" / "mod.py").exists()


async def test_a_host_edit_since_the_copy_is_a_conflict(sandbox: DockerSandbox, workspace: Path) -> None:
    (workspace / "README.md").write_text("# demo\n\nline three\nuser line\n")
    await sandbox.run("echo agent line >> README.md")
    (change,) = (await sandbox.changes()).files
    # The diff shows what applying would do to the host file as it is now...
    assert "-user line\n+agent line\n" in change.diff
    # ...and the base is the version the sandbox copied, so applying is refused, not a silent overwrite.
    assert change.base_md5 == md5(b"# demo\n\nline three\n")
    assert check_conflicts(workspace, (await sandbox.changes())) == ["README.md"]


async def test_an_unreadable_file_is_never_reported_deleted(sandbox: DockerSandbox) -> None:
    await sandbox.run("chmod 000 pkg/mod.py; echo secret > locked.txt; chmod 000 locked.txt")
    assert (await sandbox.changes()).files == ()


async def test_changes_handle_odd_file_names(sandbox: DockerSandbox) -> None:
    await sandbox.run(
        "touch 'with space' \"$(printf 'new\\nline')\" 'back\\slash' ünï \"$(printf 'cr\\rx')\""
    )
    paths = [c.path for c in (await sandbox.changes()).files]
    assert paths == sorted(["with space", "new\nline", "back\\slash", "ünï", "cr\rx"])

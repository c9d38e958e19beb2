"""Files in the Docker sandbox: the workspace copy, the file channel, and the change set."""

from __future__ import annotations

import os

import pytest

from core.changes import md5
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


async def test_collect_changes_reports_added_modified_and_deleted(sandbox: DockerSandbox) -> None:
    assert await sandbox.collect_changes() == {}
    await sandbox.run(
        "printf '# demo\\n\\nline 3\\nmore\\n' > README.md; rm pkg/mod.py; mkdir -p new; echo hi > new/a.txt;"
        "head -c 100 /dev/zero > pkg/data.bin; git init -q 2>/dev/null; touch .git/index.lock;"
        "mkdir -p node_modules/x pkg/__pycache__; touch node_modules/x/i.js pkg/__pycache__/m.pyc"
    )
    assert await sandbox.collect_changes() == {
        "README.md": b"# demo\n\nline 3\nmore\n",
        "new/a.txt": b"hi\n",
        "pkg/data.bin": b"\0" * 100,
        "pkg/mod.py": None,
    }
    assert await sandbox.collect_changes() == {}  # each change is reported once
    assert sandbox.copied["pkg/mod.py"] == md5(b"def f():\n    return 1\n")  # what was copied in


async def test_folders_made_moved_and_removed(sandbox: DockerSandbox) -> None:
    await sandbox.run("mkdir -p a/b/c && echo 1 > a/b/c/one && echo 2 > a/two")
    assert await sandbox.collect_changes() == {"a/b/c/one": b"1\n", "a/two": b"2\n"}
    await sandbox.run("mv a z")
    assert await sandbox.collect_changes() == {
        "a/b/c/one": None,
        "a/two": None,
        "z/b/c/one": b"1\n",
        "z/two": b"2\n",
    }
    await sandbox.run("echo 3 > z/b/c/one && rm -r pkg")
    assert await sandbox.collect_changes() == {
        "z/b/c/one": b"3\n",
        "pkg/data.bin": None,
        "pkg/mod.py": None,
    }


async def test_a_file_replaced_by_a_symlink_is_gone(sandbox: DockerSandbox) -> None:
    await sandbox.run("rm README.md && ln -s /etc/passwd README.md")
    assert await sandbox.collect_changes() == {"README.md": None}  # never the link's target


async def test_without_the_watcher_changes_are_found_by_scanning(sandbox: DockerSandbox) -> None:
    await sandbox.run("pkill -f watch_workspace || pkill python3; true")
    await sandbox.run("echo scanned > found.txt; rm run.sh")
    assert await sandbox.collect_changes() == {"found.txt": b"scanned\n", "run.sh": None}
    await sandbox.run("echo again >> found.txt")
    assert await sandbox.collect_changes() == {"found.txt": b"scanned\nagain\n"}


async def test_put_files_are_not_reported_back(sandbox: DockerSandbox) -> None:
    await sandbox.put_files({"restored/x.txt": b"from the log\n", "README.md": None})
    assert await sandbox.read_file("restored/x.txt") == b"from the log\n"
    assert await sandbox.path_kind("README.md") is None
    assert await sandbox.collect_changes() == {}
    await sandbox.run("echo agent >> restored/x.txt")
    assert await sandbox.collect_changes() == {"restored/x.txt": b"from the log\nagent\n"}


async def test_an_unreadable_file_is_never_reported_deleted(sandbox: DockerSandbox) -> None:
    await sandbox.run("chmod 000 pkg/mod.py; echo secret > locked.txt; chmod 000 locked.txt")
    assert await sandbox.collect_changes() == {}


async def test_odd_file_names_come_back_exactly(sandbox: DockerSandbox) -> None:
    await sandbox.run(
        "touch 'with space' \"$(printf 'new\\nline')\" 'back\\slash' ünï \"$(printf 'cr\\rx')\" \"$(printf 'caf\\351')\""
    )
    latin1 = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert sorted(await sandbox.collect_changes()) == sorted(
        ["with space", "new\nline", "back\\slash", "ünï", "cr\rx", latin1]
    )


async def test_many_files_are_put_as_one_archive_the_agent_can_work_with(sandbox: DockerSandbox) -> None:
    files: dict[str, bytes | None] = {f"restored/d{i}/f{i}.txt": f"{i}\n".encode() for i in range(6)}
    files["run.sh"] = b"#!/bin/sh\necho restored\n"
    files["README.md"] = None
    await sandbox.put_files(files)
    listing = await sandbox.run("stat -c '%n %u %a' restored restored/d0 restored/d0/f0.txt run.sh")
    assert listing.output.splitlines() == [
        "restored 1000 755",
        "restored/d0 1000 755",
        "restored/d0/f0.txt 1000 644",
        "run.sh 1000 755",  # a file the host has keeps the host's mode: still executable
    ]
    assert (await sandbox.run("./run.sh && echo more > restored/d0/new.txt")).output == "restored\n"
    assert await sandbox.path_kind("README.md") is None
    assert await sandbox.collect_changes() == {"restored/d0/new.txt": b"more\n"}  # put ones are known

"""The editor tool on the real Docker sandbox (issue 18): the differences from OpenHands' editor that
cost a model turns or corrupt files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.output import OutputBudget
from core.tools import ToolContext
from core.tools.base import Observation
from core.tools.editor import MAX_FILE_BYTES, MAX_LISTING_CHARS, EditorParams, EditorTool
from sandbox.docker_sandbox import DockerSandbox

pytestmark = pytest.mark.docker


Edit = Callable[..., Awaitable[Observation]]


@pytest.fixture
def edit(sandbox: DockerSandbox, tmp_path: Path) -> Edit:
    """One editor call on the test's sandbox (with one undo history, as a session has)."""
    ctx = ToolContext(sandbox, OutputBudget(tmp_path / "outputs", 10**6, 10**7), "c1", 30.0, {})

    async def call(**arguments: Any) -> Observation:
        return await EditorTool().execute(EditorParams.model_validate(arguments), ctx)

    return call


async def test_view_range_past_the_end_shows_what_exists(sandbox: DockerSandbox, edit: Edit) -> None:
    await sandbox.write_file("/workspace/three.txt", b"one\ntwo\nthree\n")
    shown = await edit(command="view", path="/workspace/three.txt", view_range=[2, 10])
    assert not shown.error
    assert shown.output.startswith("NOTE: We only show up to 3 since there're only 3 lines in this file.\n")
    assert shown.output.endswith("     2\ttwo\n     3\tthree\n")
    whole = await edit(command="view", path="/workspace/three.txt")
    assert "     4" not in whole.output  # the final newline is no line of its own
    beyond = await edit(command="view", path="/workspace/three.txt", view_range=[5, 9])
    assert beyond.error and "[1, 3]" in beyond.output


async def test_insert_at_the_end_does_not_corrupt_the_file(sandbox: DockerSandbox, edit: Edit) -> None:
    await sandbox.write_file("/workspace/list.txt", b"a\nb\n")
    refused = await edit(command="insert", path="list.txt", insert_line=3, new_str="c")
    assert refused.error and "[0, 2]" in refused.output
    done = await edit(command="insert", path="list.txt", insert_line=2, new_str="c\n")
    assert not done.error
    assert await sandbox.read_file("/workspace/list.txt") == b"a\nb\nc\n"


async def test_crlf_files_are_edited_across_lines_and_keep_crlf(sandbox: DockerSandbox, edit: Edit) -> None:
    await sandbox.write_file("/workspace/win.py", b"def f():\r\n    return 1\r\n\r\nx = f()\r\n")
    viewed = await edit(command="view", path="/workspace/win.py")
    assert "\r" not in viewed.output and "     2\t    return 1\n" in viewed.output
    replaced = await edit(
        command="str_replace",
        path="/workspace/win.py",
        old_str="def f():\n    return 1",
        new_str="def f():\n    return 2",
    )
    assert not replaced.error, replaced.output
    inserted = await edit(command="insert", path="/workspace/win.py", insert_line=4, new_str="print(x)")
    assert not inserted.error
    assert (
        await sandbox.read_file("/workspace/win.py")
        == b"def f():\r\n    return 2\r\n\r\nx = f()\r\nprint(x)\r\n"
    )
    undone = await edit(command="undo_edit", path="/workspace/win.py")
    assert "\r" not in undone.output
    assert await sandbox.read_file("/workspace/win.py") == b"def f():\r\n    return 2\r\n\r\nx = f()\r\n"


async def test_a_near_miss_is_forgiven_or_the_closest_text_shown(sandbox: DockerSandbox, edit: Edit) -> None:
    await sandbox.write_file(
        "/workspace/calc.py", b"def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b"
    )
    forgiven = await edit(
        command="str_replace",
        path="/workspace/calc.py",
        old_str="def add(a, b):\n\n    return a - b\n",
        new_str="def add(a, b):\n    return a + b\n",
    )
    assert not forgiven.error and "ignoring blank lines" in forgiven.output
    assert (await sandbox.read_file("/workspace/calc.py")).startswith(
        b"def add(a, b):\n    return a + b\n\n\ndef mul"
    )
    trailing = await edit(
        command="str_replace",
        path="/workspace/calc.py",
        old_str="    return a * b\n",  # the file ends without a newline
        new_str="    return b * a\n",
    )
    assert not trailing.error and (await sandbox.read_file("/workspace/calc.py")).endswith(b"return b * a")
    missed = await edit(
        command="str_replace", path="/workspace/calc.py", old_str="def mull(a, b):", new_str="x"
    )
    assert missed.error and "The most similar text is at lines 5-5:\n     5\tdef mul(a, b):" in missed.output


async def test_folder_view_notes_hidden_items_follows_symlinks_and_is_capped(
    sandbox: DockerSandbox, edit: Edit
) -> None:
    await sandbox.run("mkdir -p real/inner && touch real/inner/deep.txt real/top.txt && ln -s real linked")
    shown = await edit(command="view", path="/workspace")
    assert "/workspace/linked/\n" in shown.output and "/workspace/linked/top.txt" in shown.output
    assert "/workspace/.hidden" not in shown.output and "/workspace/.git" not in shown.output
    assert "2 hidden files/directories in this directory are excluded" in shown.output  # .hidden, .git
    await sandbox.run(
        "mkdir many && cd many && for i in $(seq 1 1500); do touch file-with-a-long-name-$i.txt; done"
    )
    big = await edit(command="view", path="/workspace/many")
    assert (
        len(big.output) < MAX_LISTING_CHARS + 300 and "The listing was cut at 16,000 characters" in big.output
    )


async def test_relative_paths_binary_large_and_outside_files(sandbox: DockerSandbox, edit: Edit) -> None:
    made = await edit(command="create", path=".github/ci.yml", file_text="on: push\n")
    assert made.output == "File created successfully at: /workspace/.github/ci.yml"
    assert (await sandbox.run("cat /workspace/.github/ci.yml")).output == "on: push\n"
    await sandbox.run(
        f"printf 'a\\000b' > nul.txt; head -c {MAX_FILE_BYTES + 1} /dev/zero | tr '\\0' x > big.txt"
    )
    nul = await edit(command="view", path="nul.txt")
    assert nul.error and "NUL bytes" in nul.output
    big = await edit(command="view", path="big.txt")
    assert big.error and f"{MAX_FILE_BYTES + 1:,} bytes" in big.output and "use bash" in big.output
    for arguments in (
        {"command": "create", "path": "/tmp/elsewhere.txt", "file_text": "x"},
        {"command": "create", "path": "../escape.txt", "file_text": "x"},
        {"command": "str_replace", "path": "/etc/hostname", "old_str": "sandbox", "new_str": "x"},
    ):
        refused = await edit(**arguments)
        assert refused.error and "outside /workspace" in refused.output, arguments
    assert (await sandbox.run("ls /tmp/elsewhere.txt /escape.txt 2>&1 | grep -c 'No such'")).output == "2\n"
    readable = await edit(command="view", path="/etc/hostname")
    assert not readable.error  # reading outside is fine

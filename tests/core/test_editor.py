from pathlib import Path

import pytest

from core.output import OutputBudget
from core.testing.fake_sandbox import InMemorySandbox
from core.tools.base import Observation, ToolContext
from core.tools.editor import EditorParams, EditorTool


@pytest.fixture
def sandbox() -> InMemorySandbox:
    return InMemorySandbox(
        {"app.py": b"def f():\n    return 1\n\nx = f()\nprint(x)\n", "pkg/mod.py": b"a = 1\n"}
    )


def ctx(
    sandbox: InMemorySandbox, tmp_path: Path, history: dict[str, list[bytes | None]] | None = None
) -> ToolContext:
    outputs = OutputBudget(tmp_path, 1000, 1000)
    return ToolContext(sandbox, outputs, "c1", 10.0, history if history is not None else {})


async def edit(
    sandbox: InMemorySandbox,
    tmp_path: Path,
    history: dict[str, list[bytes | None]] | None = None,
    **kw: object,
) -> Observation:
    return await EditorTool().execute(EditorParams.model_validate(kw), ctx(sandbox, tmp_path, history))


async def test_view_file_is_cat_n_numbered(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="view", path="/workspace/app.py")
    assert not obs.error
    assert "Here's the result of running `cat -n` on /workspace/app.py:" in obs.output
    assert "     1\tdef f():\n     2\t    return 1\n" in obs.output


async def test_view_range(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="view", path="/workspace/app.py", view_range=[2, 3])
    assert "     2\t    return 1\n     3\t\n" in obs.output
    assert "def f" not in obs.output
    bad = await edit(sandbox, tmp_path, command="view", path="/workspace/app.py", view_range=[0, 3])
    assert bad.error and "[1, 5]" in bad.output  # 5 lines: the final newline ends line 5


async def test_view_directory_lists_two_levels(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="view", path="/workspace")
    assert "up to 2 levels deep in /workspace" in obs.output
    assert "/workspace/app.py" in obs.output and "/workspace/pkg/mod.py" in obs.output


async def test_a_relative_path_is_taken_from_the_workspace(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="view", path="app.py")
    assert not obs.error and "`cat -n` on /workspace/app.py:" in obs.output
    hidden = await edit(sandbox, tmp_path, command="create", path=".github/x.yml", file_text="on: push\n")
    assert hidden.output == "File created successfully at: /workspace/.github/x.yml"  # not github/x.yml


async def test_missing_path(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="view", path="/workspace/nope.py")
    assert obs.error and "does not exist" in obs.output


async def test_create_and_refuse_overwrite(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(
        sandbox, tmp_path, command="create", path="/workspace/new/hello.py", file_text="print('hi')\n"
    )
    assert obs.output == "File created successfully at: /workspace/new/hello.py"
    assert sandbox.files["/workspace/new/hello.py"] == b"print('hi')\n"
    assert obs.diff is not None and "+print('hi')" in obs.diff
    again = await edit(sandbox, tmp_path, command="create", path="/workspace/new/hello.py", file_text="x")
    assert again.error and "Cannot overwrite files using command `create`" in again.output


async def test_str_replace_unique_match_with_snippet(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(
        sandbox,
        tmp_path,
        command="str_replace",
        path="/workspace/app.py",
        old_str="return 1",
        new_str="return 2",
    )
    assert not obs.error
    assert sandbox.files["/workspace/app.py"].startswith(b"def f():\n    return 2\n")
    assert "has been edited" in obs.output and "     2\t    return 2" in obs.output
    assert obs.diff is not None and "-    return 1" in obs.diff and "+    return 2" in obs.diff


async def test_str_replace_no_match(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(
        sandbox, tmp_path, command="str_replace", path="/workspace/app.py", old_str="return 3", new_str="x"
    )
    assert obs.error
    assert obs.output.startswith(
        "No replacement was performed, old_str `return 3` did not appear verbatim in /workspace/app.py."
    )
    assert "The most similar text is at lines 2-2:\n     2\t    return 1\n" in obs.output
    unlike = await edit(
        sandbox, tmp_path, command="str_replace", path="/workspace/app.py", old_str="-1", new_str="5"
    )
    # nothing alike, and the file is small: it is shown (the model would have to view it next)
    assert "Here is the whole file:\n     1\tdef f():\n     2\t    return 1\n" in unlike.output


async def test_str_replace_multiple_matches_names_lines(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(
        sandbox, tmp_path, command="str_replace", path="/workspace/app.py", old_str="f()", new_str="g()"
    )
    assert obs.error
    assert "Multiple occurrences of old_str `f()` in lines [1, 4]" in obs.output
    assert sandbox.files["/workspace/app.py"].startswith(b"def f():")


async def test_insert_and_bounds(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(
        sandbox, tmp_path, command="insert", path="/workspace/pkg/mod.py", insert_line=0, new_str="import os"
    )
    assert not obs.error
    assert sandbox.files["/workspace/pkg/mod.py"] == b"import os\na = 1\n"
    bad = await edit(
        sandbox, tmp_path, command="insert", path="/workspace/pkg/mod.py", insert_line=99, new_str="x"
    )
    assert bad.error and "[0, 2]" in bad.output


async def test_undo_edit_restores_previous_content(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    history: dict[str, list[bytes | None]] = {}
    before = sandbox.files["/workspace/app.py"]
    await edit(
        sandbox,
        tmp_path,
        history,
        command="str_replace",
        path="/workspace/app.py",
        old_str="print(x)",
        new_str="print(x + 1)",
    )
    obs = await edit(sandbox, tmp_path, history, command="undo_edit", path="/workspace/app.py")
    assert "undone successfully" in obs.output
    assert sandbox.files["/workspace/app.py"] == before
    nothing = await edit(sandbox, tmp_path, history, command="undo_edit", path="/workspace/app.py")
    assert nothing.error and "No edit history found" in nothing.output


async def test_undo_of_a_create_removes_the_file(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    history: dict[str, list[bytes | None]] = {}
    await edit(sandbox, tmp_path, history, command="create", path="/workspace/new.py", file_text="x = 1\n")
    obs = await edit(sandbox, tmp_path, history, command="undo_edit", path="/workspace/new.py")
    assert "removed" in obs.output
    assert "/workspace/new.py" not in sandbox.files
    nothing = await edit(sandbox, tmp_path, history, command="undo_edit", path="/workspace/new.py")
    assert nothing.error and "No edit history found" in nothing.output


async def test_missing_required_parameter(sandbox: InMemorySandbox, tmp_path: Path) -> None:
    obs = await edit(sandbox, tmp_path, command="str_replace", path="/workspace/app.py")
    assert obs.error and "`old_str` is required" in obs.output


async def test_binary_file_is_refused_clearly(tmp_path: Path) -> None:
    sandbox = InMemorySandbox({"blob.bin": b"\xff\xfe\x00\x01", "latin.txt": b"caf\xe9\n"})
    obs = await edit(sandbox, tmp_path, command="view", path="/workspace/blob.bin")
    assert obs.error and "NUL bytes" in obs.output and "use bash" in obs.output.lower()
    latin = await edit(sandbox, tmp_path, command="view", path="/workspace/latin.txt")
    assert latin.error and "not UTF-8 text" in latin.output

"""The sandbox tools through the in-memory client: open, run, read, write, edit, search, diff,
apply, close — a shell and an editor for another agent, with nothing reaching the workspace
before apply_changes."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from tests.agent_mcp.conftest import data, text


async def open_box(client: Client) -> str:
    info = data(await client.call_tool("sandbox_open", {}))
    assert info["workdir"] == "/workspace"
    box: str = info["sandbox_id"]
    return box


async def test_run_read_and_search(client: Client, workspace: Path) -> None:
    box = await open_box(client)
    run = data(await client.call_tool("sandbox_run", {"sandbox_id": box, "command": "echo hi"}))
    assert run["exit_code"] == 0 and run["output"].startswith("hi")
    failed = data(await client.call_tool("sandbox_run", {"sandbox_id": box, "command": "exit 3"}))
    assert failed["exit_code"] == 3
    timed = data(
        await client.call_tool("sandbox_run", {"sandbox_id": box, "command": "sleep 5", "timeout": 0.05})
    )
    assert timed["timed_out"] is True and "timed out" in timed["output"]

    read = await client.call_tool("sandbox_read", {"sandbox_id": box, "path": "app.py"})
    assert "     1\tdef greet():" in text(read)
    ranged = data(
        await client.call_tool("sandbox_read", {"sandbox_id": box, "path": "app.py", "start_line": 2})
    )
    assert "     2\t    return" in ranged["output"] and "def greet" not in ranged["output"]
    folder = data(await client.call_tool("sandbox_read", {"sandbox_id": box, "path": "/workspace"}))
    assert "/workspace/app.py" in folder["output"]

    found = data(
        await client.call_tool("sandbox_search", {"sandbox_id": box, "pattern": "HELLO", "ignore_case": True})
    )
    assert found["matches"] == [{"path": "/workspace/app.py", "line": 2, "text": '    return "hello"'}]
    globbed = data(
        await client.call_tool("sandbox_search", {"sandbox_id": box, "pattern": "e", "glob": "*.md"})
    )
    assert {m["path"] for m in globbed["matches"]} == {"/workspace/README.md"}
    none = await client.call_tool("sandbox_search", {"sandbox_id": box, "pattern": "absent"})
    assert text(none) == "no matches"


async def test_write_edit_diff_apply_close(client: Client, workspace: Path) -> None:
    box = await open_box(client)
    created = data(
        await client.call_tool("sandbox_write", {"sandbox_id": box, "path": "new.py", "content": "x = 1\n"})
    )
    assert created["output"].startswith("created /workspace/new.py")
    edited = data(
        await client.call_tool(
            "sandbox_edit",
            {"sandbox_id": box, "path": "/workspace/app.py", "old_str": '"hello"', "new_str": '"hi"'},
        )
    )
    assert '-    return "hello"' in edited["diff"] and '+    return "hi"' in edited["diff"]
    not_unique = await client.call_tool(
        "sandbox_edit", {"sandbox_id": box, "path": "app.py", "old_str": "e", "new_str": "E"}
    )
    assert not_unique.is_error and "Multiple occurrences" in text(not_unique)
    assert not (workspace / "new.py").exists()

    diff = data(await client.call_tool("sandbox_diff", {"sandbox_id": box}))
    assert {(f["path"], f["status"]) for f in diff["files"]} == {("app.py", "modified"), ("new.py", "added")}
    assert "+x = 1" in diff["patch"]

    applied = data(await client.call_tool("apply_changes", {"id": box}))
    assert sorted(applied["written"]) == ["app.py", "new.py"] and applied["remaining"] == []
    assert (workspace / "new.py").read_text() == "x = 1\n"
    assert '"hi"' in (workspace / "app.py").read_text()
    assert data(await client.call_tool("sandbox_diff", {"sandbox_id": box}))["files"] == []

    assert text(await client.call_tool("sandbox_close", {"sandbox_id": box})) == f"sandbox {box} closed"
    gone = await client.call_tool("sandbox_run", {"sandbox_id": box, "command": "ls"})
    assert gone.is_error and "unknown sandbox" in text(gone)


async def test_sandbox_errors_are_clear(client: Client) -> None:
    box = await open_box(client)
    missing = await client.call_tool("sandbox_read", {"sandbox_id": box, "path": "nope.txt"})
    assert missing.is_error and "does not exist" in text(missing)
    unknown = await client.call_tool("sandbox_read", {"sandbox_id": "sbx-0", "path": "app.py"})
    assert unknown.is_error and "sandbox_open" in text(unknown)
    folder = await client.call_tool("sandbox_write", {"sandbox_id": box, "path": "/workspace", "content": ""})
    assert folder.is_error and "folder" in text(folder)

"""The task tools through the SDK's in-memory client: start / poll / cancel / list, the blocking
run_task with progress, approvals (answer_approval, elicitation, timeout), apply and discard."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData

from agent_mcp.server import SidehandMCP
from tests.agent_mcp.conftest import ScriptWriter, bash, create_file, data, say, text


async def start(client: Client, task: str = "do it", **args: Any) -> str:
    report = data(await client.call_tool("start_task", {"task": task, "approval": "never", **args}))
    task_id: str = report["info"]["task_id"]
    return task_id


async def wait_ended(client: Client, task_id: str) -> dict[str, Any]:
    with anyio.fail_after(10):
        while True:
            report = data(await client.call_tool("get_task", {"task_id": task_id, "wait": 5}))
            if report["info"]["ended"] is not None:
                return report


async def test_start_returns_at_once_and_get_task_waits_for_the_end(
    client: Client, script: ScriptWriter, workspace: Path
) -> None:
    script([create_file("/workspace/hello.txt", "hi\n", delay=0.3), say("Created hello.txt.")])
    result = await client.call_tool("start_task", {"task": "create hello.txt", "approval": "never"})
    report = data(result)
    assert report["info"]["status"] in ("starting", "running")
    assert "task " in text(result)

    done = await wait_ended(client, report["info"]["task_id"])
    assert done["info"]["status"] == "finished"
    assert done["info"]["message"] == "Created hello.txt."
    assert done["changes"]["files"] == [
        {
            "path": "hello.txt",
            "status": "added",
            "added_lines": 1,
            "removed_lines": 0,
            "binary": False,
            "conflict": False,
            "host_diff": None,
        }
    ]
    assert done["changes"]["state"] == "pending"
    assert done["usage"]["prompt_tokens"] == 20  # two model calls
    kinds = [e["kind"] for e in done["events"]]
    assert kinds[0] == "user_message" and "tool_call" in kinds and kinds[-1] == "state_changed"
    assert not (workspace / "hello.txt").exists()  # nothing reaches the workspace before apply


async def test_get_task_since_returns_only_newer_events(client: Client, script: ScriptWriter) -> None:
    script([say("Done.")])
    task_id = await start(client)
    first = await wait_ended(client, task_id)
    again = data(await client.call_tool("get_task", {"task_id": task_id, "since": first["next_seq"]}))
    assert again["events"] == []
    middle = data(await client.call_tool("get_task", {"task_id": task_id, "since": 1}))
    assert [e["seq"] for e in middle["events"]] == list(range(2, first["next_seq"] + 1))


async def test_apply_changes_writes_the_workspace(
    client: Client, script: ScriptWriter, workspace: Path
) -> None:
    script(
        [
            create_file("/workspace/new.txt", "new\n"),
            {
                "tool_calls": [
                    {
                        "name": "editor",
                        "arguments": {
                            "command": "str_replace",
                            "path": "/workspace/app.py",
                            "old_str": '"hello"',
                            "new_str": '"hi"',
                        },
                    }
                ]
            },
            say("Done."),
        ]
    )
    task_id = await start(client)
    await wait_ended(client, task_id)
    diff = await client.read_resource(f"sidehand://sessions/{task_id}/diff")
    assert '+    return "hi"' in diff.contents[0].text  # type: ignore[union-attr]

    partial = data(await client.call_tool("apply_changes", {"id": task_id, "paths": ["new.txt"]}))
    assert partial == {
        "id": task_id,
        "written": ["new.txt"],
        "refused": {},
        "remaining": ["app.py"],
        "discarded": False,
    }
    assert (workspace / "new.txt").read_text() == "new\n"
    assert '"hello"' in (workspace / "app.py").read_text()

    rest = data(await client.call_tool("apply_changes", {"id": task_id}))
    assert rest["written"] == ["app.py"] and rest["remaining"] == []
    assert '"hi"' in (workspace / "app.py").read_text()
    report = data(await client.call_tool("get_task", {"task_id": task_id}))
    assert report["changes"]["state"] == "applied"


async def test_apply_refuses_a_conflict_unless_forced(
    client: Client, script: ScriptWriter, workspace: Path
) -> None:
    script(
        [
            {
                "tool_calls": [
                    {
                        "name": "editor",
                        "arguments": {
                            "command": "str_replace",
                            "path": "/workspace/README.md",
                            "old_str": "Demo",
                            "new_str": "Agent",
                        },
                    }
                ]
            },
            say("Done."),
        ]
    )
    task_id = await start(client)
    await wait_ended(client, task_id)
    (workspace / "README.md").write_text("# Mine\n")
    refused = await client.call_tool("apply_changes", {"id": task_id})
    assert refused.is_error and "changed on the host" in text(refused) and "README.md" in text(refused)
    assert (workspace / "README.md").read_text() == "# Mine\n"
    forced = data(await client.call_tool("apply_changes", {"id": task_id, "force": True}))
    assert forced["written"] == ["README.md"]
    assert (workspace / "README.md").read_text() == "# Agent\n"


async def test_auto_apply_writes_when_the_task_ends(
    client: Client, script: ScriptWriter, workspace: Path
) -> None:
    script([create_file("/workspace/auto.txt", "auto\n"), say("Done.")])
    task_id = await start(client, apply="auto")
    report = await wait_ended(client, task_id)
    assert report["changes"]["state"] == "applied"
    assert report["changes"]["applied"] == ["auto.txt"]
    assert (workspace / "auto.txt").read_text() == "auto\n"


async def test_discard_changes_drops_them(client: Client, script: ScriptWriter, workspace: Path) -> None:
    script([create_file("/workspace/x.txt", "x\n"), say("Done.")])
    task_id = await start(client)
    await wait_ended(client, task_id)
    assert data(await client.call_tool("discard_changes", {"id": task_id}))["discarded"] is True
    assert not (workspace / "x.txt").exists()
    again = await client.call_tool("apply_changes", {"id": task_id})
    assert again.is_error and "discarded" in text(again)


async def test_apply_while_running_is_refused(client: Client, script: ScriptWriter) -> None:
    script([bash("sleep 30")])
    task_id = await start(client)
    refused = await client.call_tool("apply_changes", {"id": task_id})
    assert refused.is_error and "still" in text(refused)
    await client.call_tool("cancel_task", {"task_id": task_id})


async def test_cancel_task_stops_a_running_command(
    server: SidehandMCP, client: Client, script: ScriptWriter
) -> None:
    script([bash("sleep 30"), say("never reached")])
    task_id = await start(client)
    await server.app.tasks.get(task_id).wait(5, lambda t: any(e.kind == "tool_call" for e in t.events))
    report = data(await client.call_tool("cancel_task", {"task_id": task_id}))
    assert report["info"]["status"] == "cancelled"
    assert report["info"]["stop_reason"] == "cancelled"
    results = [e for e in report["events"] if e["kind"] == "tool_result"]
    assert results and "error" in results[0]["summary"]


async def test_list_tasks(client: Client, script: ScriptWriter) -> None:
    assert text(await client.call_tool("list_tasks", {})) == "no tasks"
    script([say("one")])
    first = await start(client, "first task")
    second = await start(client, "second task")
    listed = data(await client.call_tool("list_tasks", {}))["tasks"]
    assert [t["task_id"] for t in listed] == [first, second]
    assert [t["task"] for t in listed] == ["first task", "second task"]


async def test_run_task_blocks_and_reports_progress(client: Client, script: ScriptWriter) -> None:
    script([bash("echo one"), bash("echo two"), say("All done.")])
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    with anyio.fail_after(10):
        result = await client.call_tool(
            "run_task", {"task": "echo twice", "approval": "never"}, progress_callback=on_progress
        )
    report = data(result)
    assert report["info"]["status"] == "finished" and report["info"]["message"] == "All done."
    values = [v for v, _ in seen]
    assert len(values) >= 2 and values == sorted(values) and len(set(values)) == len(values)
    assert any(m and "started" in m for _, m in seen)


async def test_answer_approval_allows_a_risky_command(client: Client, script: ScriptWriter) -> None:
    script([bash("rm -rf build"), say("Cleaned.")])
    task_id = await start(client, approval="risky")
    with anyio.fail_after(5):
        report = data(await client.call_tool("get_task", {"task_id": task_id, "wait": 5}))
    assert report["info"]["status"] == "awaiting_approval"
    [pending] = report["pending_approvals"]
    assert pending["tool"] == "bash" and "rm -rf" in pending["arguments"]

    wrong = await client.call_tool("answer_approval", {"task_id": task_id, "call_id": "nope", "allow": True})
    assert wrong.is_error and pending["call_id"] in text(wrong)
    await client.call_tool(
        "answer_approval", {"task_id": task_id, "call_id": pending["call_id"], "allow": True}
    )
    done = await wait_ended(client, task_id)
    assert done["info"]["message"] == "Cleaned."
    assert "approval_granted" in [e["kind"] for e in done["events"]]


async def test_unanswered_approval_is_rejected_after_the_timeout(
    server: SidehandMCP, client: Client, script: ScriptWriter
) -> None:
    server.app.tasks.approval_timeout = 0.2
    script([bash("rm -rf build"), say("Could not clean.")])
    task_id = await start(client, approval="risky")
    done = await wait_ended(client, task_id)
    rejected = [e for e in done["events"] if e["kind"] == "approval_rejected"]
    assert rejected and "nobody answered" in rejected[0]["summary"]
    assert done["info"]["message"] == "Could not clean."


async def test_run_task_asks_approvals_through_elicitation(server: SidehandMCP, script: ScriptWriter) -> None:
    script([bash("rm -rf build"), bash("rm -rf dist"), say("Done.")])
    asked: list[str] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        asked.append(params.message)
        decision = "allow_once" if len(asked) == 1 else "reject"
        return ElicitResult(action="accept", content={"decision": decision})

    async with Client(server, mode="legacy", elicitation_callback=elicit, read_timeout_seconds=20) as legacy:
        with anyio.fail_after(10):
            report = data(await legacy.call_tool("run_task", {"task": "clean", "approval": "risky"}))
    assert len(asked) == 2 and "rm -rf build" in asked[0]
    kinds = [e["kind"] for e in report["events"]]
    assert "approval_granted" in kinds and "approval_rejected" in kinds


async def test_four_tasks_at_once_each_in_its_own_sandbox(
    server: SidehandMCP, client: Client, script: ScriptWriter, workspace: Path
) -> None:
    scripts = {
        f"model-{n}": [
            create_file(f"/workspace/out{n}.txt", f"result {n}\n", delay=0.05),
            bash(f"echo {n}"),
            say(f"Task {n} done."),
        ]
        for n in range(4)
    }
    script({"models": scripts})
    ids = []
    for n in range(4):
        ids.append(await start(client, f"task {n}", model=f"model-{n}"))
    async with anyio.create_task_group() as tg:
        reports: dict[str, dict[str, Any]] = {}

        async def follow(task_id: str) -> None:
            reports[task_id] = await wait_ended(client, task_id)

        for task_id in ids:
            tg.start_soon(follow, task_id)
    sandboxes = set()
    for n, task_id in enumerate(ids):
        report = reports[task_id]
        assert report["info"]["message"] == f"Task {n} done."
        assert [f["path"] for f in report["changes"]["files"]] == [f"out{n}.txt"]
        sandboxes.add(id(await server.app.tasks.get(task_id).session.sandbox()))
    assert len(sandboxes) == 4
    for task_id in ids:
        await client.call_tool("apply_changes", {"id": task_id})
    assert sorted(p.name for p in workspace.glob("out*.txt")) == [f"out{n}.txt" for n in range(4)]


async def test_too_many_running_tasks_is_a_clear_error(
    server: SidehandMCP, client: Client, script: ScriptWriter
) -> None:
    server.app.tasks.max_running = 1
    script([bash("sleep 30")])
    task_id = await start(client)
    refused = await client.call_tool("start_task", {"task": "another"})
    assert refused.is_error and "limit is 1" in text(refused)
    await client.call_tool("cancel_task", {"task_id": task_id})
    await asyncio.sleep(0)

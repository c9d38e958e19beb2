"""Approvals (elicitation) and the client's roots on both protocol eras, with the official client:
2026-07-28 (questions ride an InputRequiredResult, the client calls again) and the handshake era
(the server sends the requests); and the scopes an MCP client can grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp_types import (
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    ListRootsResult,
    Root,
)

from agent_mcp.server import SidehandMCP
from tests.agent_mcp.conftest import ScriptWriter, bash, data, hosted, say, text

MODES = ["auto", "legacy"]  # auto: the client's current protocol (2026-07-28) in process


@pytest.mark.parametrize("mode", MODES)
async def test_run_task_asks_each_approval_on_both_protocols(
    server: SidehandMCP, script: ScriptWriter, mode: str
) -> None:
    script([bash("rm -rf build"), bash("rm -rf dist"), bash("git push --force"), say("Done.")])
    asked: list[ElicitRequestParams] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        asked.append(params)
        decision = ["allow_once", "reject", "allow_always"][len(asked) - 1]
        return ElicitResult(action="accept", content={"decision": decision})

    async with hosted(
        Client(server, mode=mode, elicitation_callback=elicit, read_timeout_seconds=20)
    ) as client:
        expected = "2026-07-28" if mode == "auto" else "2025-11-25"
        assert client.protocol_version == expected
        with anyio.fail_after(15):  # not the approval timeout: every question reaches the client
            report = data(await client.call_tool("run_task", {"task": "clean", "approval": "risky"}))
    assert [p.message.split(": ", 1)[1].split("\n")[0] for p in asked] == [
        '{"command": "rm -rf build"}',
        '{"command": "rm -rf dist"}',
        '{"command": "git push --force"}',
    ]
    form = asked[2]
    assert isinstance(form, ElicitRequestFormParams)
    schema = form.requested_schema["properties"]["decision"]
    assert {
        "const": "allow_always",
        "title": "Always allow `git push` commands (high-risk ones too)",
    } in schema["oneOf"]
    kinds = [e["kind"] for e in report["events"]]
    assert kinds.count("approval_granted") == 2 and kinds.count("approval_rejected") == 1
    assert report["info"]["message"] == "Done."


@pytest.mark.parametrize("mode", MODES)
async def test_a_declined_question_rejects_the_action(
    server: SidehandMCP, script: ScriptWriter, mode: str
) -> None:
    script([bash("rm -rf build"), say("Left it.")])

    async def decline(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        return ElicitResult(action="decline")

    async with hosted(Client(server, mode=mode, elicitation_callback=decline)) as client:
        with anyio.fail_after(15):
            report = data(await client.call_tool("run_task", {"task": "clean", "approval": "risky"}))
    rejected = [e for e in report["events"] if e["kind"] == "approval_rejected"]
    assert rejected and "decline" in rejected[0]["summary"]


@pytest.mark.parametrize("mode", MODES)
async def test_the_clients_roots_are_asked_on_both_protocols(
    server: SidehandMCP, tmp_path: Path, mode: str
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    server.app.configured_roots = []
    calls = 0

    async def roots(context: ClientRequestContext) -> ListRootsResult | ErrorData:
        nonlocal calls
        calls += 1
        return ListRootsResult(roots=[Root(uri=other.as_uri())])

    async with hosted(Client(server, mode=mode, list_roots_callback=roots)) as client:
        opened = await client.call_tool("sandbox_open", {})
        assert not opened.is_error and opened.structured_content is not None
        assert opened.structured_content["workspace"] == str(other)  # not the server's cwd
        refused = await client.call_tool("sandbox_open", {"workspace": str(tmp_path / "ws")})
        assert refused.is_error and "outside the allowed roots" in text(refused)
    assert calls == 2


@pytest.mark.parametrize("mode", MODES)
async def test_answer_approval_grants_the_offered_scopes(
    server: SidehandMCP, client: Client, script: ScriptWriter, mode: str
) -> None:
    script([bash("make build"), bash("make build -j2"), bash("make clean"), say("Built.")])
    async with hosted(Client(server, mode=mode)) as other:
        report = data(await other.call_tool("start_task", {"task": "build", "approval": "always"}))
        task_id = report["info"]["task_id"]
        pending = await _pending(other, task_id)
        assert [(o["scope"], o["label"]) for o in pending["options"]] == [
            ("once", "Allow once"),
            ("session", "Allow bash for this session"),
            ("command_prefix", "Always allow `make build` commands"),
            ("reject", "Reject"),
        ]
        wrong = await other.call_tool(
            "answer_approval",
            {"task_id": task_id, "call_id": pending["call_id"], "allow": True, "scope": "path"},
        )
        assert wrong.is_error and "cannot be granted" in text(wrong)
        await other.call_tool(
            "answer_approval",
            {"task_id": task_id, "call_id": pending["call_id"], "allow": True, "scope": "command_prefix"},
        )
        second = await _pending(other, task_id, pending["call_id"])  # `make build -j2` was covered
        assert '"make clean"' in second["arguments"]
        await other.call_tool(
            "answer_approval", {"task_id": task_id, "call_id": second["call_id"], "allow": False}
        )


async def _pending(client: Client, task_id: str, answered: str | None = None) -> dict[str, Any]:
    """The first approval the task waits on (not `answered`: the answer may not have landed yet)."""
    with anyio.fail_after(10):
        while True:
            report = data(await client.call_tool("get_task", {"task_id": task_id, "wait": 5}))
            waiting = [p for p in report["pending_approvals"] if p["call_id"] != answered]
            if waiting:
                pending: dict[str, Any] = waiting[0]
                return pending

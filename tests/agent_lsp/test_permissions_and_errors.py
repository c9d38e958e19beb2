"""Permission requests (scoped options, cancellation), plain-LSP approvals, settings and errors."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from pygls.exceptions import JsonRpcException

from tests.agent_lsp.conftest import TIMEOUT, Editor, start_editor, stop

ASKING = {"sidehand": {"protocolVersion": 1}, "approvalMode": "always"}
RUN = [
    {"tool_calls": [{"name": "bash", "arguments": {"command": "make build"}}]},
    {"tool_calls": [{"name": "bash", "arguments": {"command": "make build -j2"}}]},
    {"tool_calls": [{"name": "finish", "arguments": {"message": "Built."}}]},
]


async def test_permission_request_with_scoped_options(tmp_path: Path) -> None:
    editor, client = await start_editor(tmp_path, options=ASKING)
    try:
        editor.write_script(RUN)

        async def always_make(request: dict[str, Any]) -> dict[str, Any]:
            return {"outcome": {"outcome": "selected", "optionId": "allow_always"}}

        editor.answer_permission = always_make
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "build"})
        assert result["stopReason"] == "end_turn"
        assert len(editor.permissions) == 1  # `make build -j2` was covered by "always allow `make build`"
        request = editor.permissions[0]
        assert request["sessionId"] == sid and request["toolCall"]["kind"] == "execute"
        assert [o["optionId"] for o in request["options"]] == [
            "allow_once",
            "allow_session",
            "allow_always",
            "reject",
        ]
        assert request["options"][2]["name"] == "Always allow `make build` commands"
    finally:
        await client.shutdown_session()
        await stop(client)


async def test_rejected_permission_fails_the_call(tmp_path: Path) -> None:
    editor, client = await start_editor(tmp_path, options=ASKING)
    try:
        editor.write_script(RUN[:1])

        async def reject(request: dict[str, Any]) -> dict[str, Any]:
            return {"outcome": {"outcome": "selected", "optionId": "reject"}}

        editor.answer_permission = reject
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "build"})
        calls = [u["update"] for u in editor.updates if u["update"]["sessionUpdate"] == "tool_call"]
        assert [c["status"] for c in calls] == ["pending", "pending", "failed"]
        assert "rejected" in calls[-1]["content"][0]["text"]
    finally:
        await client.shutdown_session()
        await stop(client)


async def test_cancel_while_permission_is_pending(tmp_path: Path) -> None:
    editor, client = await start_editor(tmp_path, options=ASKING)
    try:
        editor.write_script(RUN)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def late(request: dict[str, Any]) -> dict[str, Any]:
            return await answer

        editor.answer_permission = late
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        prompt = asyncio.ensure_future(
            editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "b"})
        )
        await editor.wait_for(lambda: bool(editor.permissions), "the permission request")
        await editor.request("sidehand/session/cancel", {"sessionId": sid})
        assert (await prompt)["stopReason"] == "cancelled"
        await editor.wait_for(answer.done, "the request to be withdrawn ($/cancelRequest)")
        listed = await editor.request("sidehand/session/list", {})
        assert listed["sessions"][0]["status"] == "cancelled"
    finally:
        await client.shutdown_session()
        await stop(client)


async def test_cancelled_outcome_cancels_the_turn(tmp_path: Path) -> None:
    editor, client = await start_editor(tmp_path, options=ASKING)
    try:
        editor.write_script(RUN)

        async def cancelled(request: dict[str, Any]) -> dict[str, Any]:
            return {"outcome": {"outcome": "cancelled"}}

        editor.answer_permission = cancelled
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "build"})
        assert result["stopReason"] == "cancelled"
    finally:
        await client.shutdown_session()
        await stop(client)


async def test_plain_client_gets_message_requests_and_bad_settings_are_shown(tmp_path: Path) -> None:
    caps = pytest_lsp.client_capabilities("neovim")
    options = {"approvalMode": "always", "apiKey": "sk-secret-123", "maxIterations": -5, "colour": "blue"}
    editor, client = await start_editor(tmp_path, options=options, capabilities=caps)
    try:
        await editor.wait_for(
            lambda: len(client.messages) >= 2, "the settings messages", notification="window/showMessage"
        )
        shown = " ".join(m.message for m in client.messages)
        assert "max_iterations (default used)" in shown and "unknown setting 'colour'" in shown
        assert "sk-secret-123" not in shown
        editor.write_script(RUN)
        editor.message_answer = "Allow bash for this session"
        sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
        result = await editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "build"})
        assert result["stopReason"] == "end_turn"
        assert len(editor.message_requests) == 1  # "for session" covered the second command
        assert [a.title for a in editor.message_requests[0].actions or []] == [
            "Allow once",
            "Allow bash for this session",
            "Always allow `make build` commands",
            "Reject",
        ]
        assert editor.updates == []  # no sidehand/* notifications to a client that did not ask for them
    finally:
        await client.shutdown_session()
        await stop(client)


async def _error(editor: Editor, method: str, params: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as info:
        await editor.request(method, params)
    return info.value


async def test_bad_requests_get_json_rpc_errors_and_the_server_keeps_serving(editor: Editor) -> None:
    assert (await _error(editor, "sidehand/nope", {})).code == -32601
    bad = await _error(editor, "sidehand/session/prompt", {"sessionId": "x"})
    assert bad.code == -32602 and "prompt" in bad.message
    unknown = await _error(editor, "sidehand/session/prompt", {"sessionId": "nope", "prompt": "hi"})
    assert unknown.code == -32001 and "unknown session" in unknown.message
    assert (await _error(editor, "sidehand/session/load", {"sessionId": "nope"})).code == -32001
    editor.write_script([{"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 60"}}]}])
    sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
    first = asyncio.ensure_future(
        editor.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "one"})
    )
    await editor.wait_for(lambda: any(u["update"].get("status") == "in_progress" for u in editor.updates))
    busy = await _error(editor, "sidehand/session/prompt", {"sessionId": sid, "prompt": "two"})
    assert busy.code == -32002 and "already running" in busy.message
    await editor.request("sidehand/session/cancel", {"sessionId": sid})
    assert (await asyncio.wait_for(first, TIMEOUT))["stopReason"] == "cancelled"
    assert (await editor.request("sidehand/session/list", {}))["sessions"]


# `sidehand lsp`'s own entry point, with a manager factory that logs the API key it was configured
# with (as a careless log line anywhere in the server would).
LEAKY_SERVER = """
import logging, sys
from agent_lsp.cli import main
from core.testing.fake_manager import build_fake_manager

def leaky(settings):
    logging.getLogger("leaky").warning("configured with key %s", settings.api_key.get_secret_value())
    return build_fake_manager(settings, sys.argv[1])

sys.exit(main(sys.argv[2:], manager_factory=leaky))
"""


async def test_the_api_key_from_the_editor_is_masked_in_the_server_log(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    script = tmp_path / "script.json"
    command = [sys.executable, "-c", LEAKY_SERVER, str(script), "--log-file", str(log_file)]
    options = {"sidehand": {"protocolVersion": 1}, "apiKey": "sk-from-the-editor-123"}
    editor, client = await start_editor(tmp_path, options=options, command=command)
    try:
        assert (await editor.request("sidehand/session/list", {}))["sessions"] == []
    finally:
        await client.shutdown_session()
        await stop(client)
    logged = log_file.read_text()
    assert "configured with key [redacted]" in logged
    assert "sk-from-the-editor-123" not in logged

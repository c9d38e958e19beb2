"""The language server on the real path — litellm to an HTTP model server, the Docker sandbox —
keeps answering while a model call is in flight: the scripted server holds its reply open, and a
code action is answered meanwhile (no timing assertion: it is answered at all, then the reply
is released and the turn ends)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from agent_lsp.protocol import to_plain
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.agent_lsp.conftest import TIMEOUT, open_doc, start_editor, stop

pytestmark = pytest.mark.docker


async def test_server_answers_while_a_model_reply_is_held_open(tmp_path: Path) -> None:
    with ScriptedLLMServer(Script(turns=(Turn.say("Here is the explanation.", hold=True),))) as model:
        editor, client = await start_editor(
            tmp_path,
            options={
                "sidehand": {"protocolVersion": 1},
                "model": "openai/scripted",
                "apiBase": model.base_url,
                "apiKey": "sk-test-not-a-real-key",
                "approvalMode": "never",
            },
            fakes=False,
        )
        try:
            uri = open_doc(editor, "calc.py", "def add(a, b):\n    return a - b\n")
            sid = (await editor.request("sidehand/session/new", {}))["sessionId"]
            send: Any = client.protocol.send_request_async  # untyped in pytest-lsp
            # not editor.request: its 10 s limit would count litellm's import and the sandbox start
            prompt = asyncio.ensure_future(
                send("sidehand/session/prompt", {"sessionId": sid, "prompt": "explain calc.py"})
            )
            # the model call is in flight and held open by the server (litellm's import included)
            await asyncio.wait_for(asyncio.to_thread(model.wait_until, lambda: model.held == 1, 60), 70)
            actions = await asyncio.wait_for(
                client.text_document_code_action_async(
                    types.CodeActionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri),
                        range=types.Range(start=types.Position(1, 0), end=types.Position(1, 10)),
                        context=types.CodeActionContext(diagnostics=[]),
                    )
                ),
                TIMEOUT,
            )
            assert actions and len(actions) == 5
            assert model.held == 1  # answered while the reply was still held
            listed = await editor.request("sidehand/session/list", {})
            assert sid in str(listed)
            model.release()
            result = to_plain(await asyncio.wait_for(prompt, 60))
            assert result["stopReason"] == "end_turn"
            assert "agent_message" in editor.kinds(sid)
        finally:
            model.release(5)
            await asyncio.wait_for(client.shutdown_session(), TIMEOUT)
            await stop(client)

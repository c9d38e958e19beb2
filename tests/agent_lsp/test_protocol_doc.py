"""docs/protocol.md stays true: each ```json request in it is sent to the real server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.agent_lsp.conftest import Editor

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"


def examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
    return [json.loads(b) for b in blocks]


async def test_every_documented_request_is_answered(editor: Editor) -> None:
    requests = [e for e in examples() if e["method"].startswith("sidehand/")]
    assert {r["method"] for r in requests} >= {
        "sidehand/session/new",
        "sidehand/session/prompt",
        "sidehand/session/cancel",
        "sidehand/session/list",
        "sidehand/session/load",
        "sidehand/session/fork",
        "sidehand/changes/list",
        "sidehand/changes/accept",
        "sidehand/changes/reject",
    }
    # one tool call, so the documented restore of checkpoint "1" has a checkpoint to go back to
    look = {"name": "bash", "arguments": {"command": "cat app.py"}}
    editor.write_script([{"tool_calls": [look]}, {"text": "It sets x."}])
    session = ""
    for request in requests:
        params = json.loads(json.dumps(request["params"]).replace("$SESSION", session))
        for item in params.get("context", []):
            item["uri"] = (editor.workspace / "app.py").as_uri()
        result = await editor.request(request["method"], params)
        if request["method"] == "sidehand/session/new":
            session = result["sessionId"]
    init = next(e for e in examples() if e["method"] == "initialize")
    assert set(init["params"]["initializationOptions"]) >= {"sidehand", "model"}

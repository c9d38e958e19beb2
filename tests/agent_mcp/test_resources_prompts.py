"""Session resources (events, diff, transcript, the session list) and skills as prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent, TextResourceContents

from tests.agent_mcp.conftest import ScriptWriter, create_file, data, say


async def finished_task(client: Client, script: ScriptWriter) -> str:
    script([create_file("/workspace/notes.txt", "note\n"), say("Wrote notes.")])
    result = data(await client.call_tool("run_task", {"task": "write notes", "approval": "never"}))
    task_id: str = result["info"]["task_id"]
    return task_id


async def read(client: Client, uri: str) -> TextResourceContents:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return contents


async def test_session_resources(client: Client, script: ScriptWriter) -> None:
    task_id = await finished_task(client, script)
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert templates == {
        "sidehand://sessions/{session_id}/events",
        "sidehand://sessions/{session_id}/diff",
        "sidehand://sessions/{session_id}/transcript",
        "sidehand://skills/{name}",
    }

    events = await read(client, f"sidehand://sessions/{task_id}/events")
    assert events.mime_type == "application/x-ndjson"
    lines = [json.loads(line) for line in events.text.splitlines()]
    assert lines[0]["kind"] == "user_message" and lines[0]["text"] == "write notes"
    assert [line["seq"] for line in lines] == list(range(len(lines)))

    diff = await read(client, f"sidehand://sessions/{task_id}/diff")
    assert "+++ b/notes.txt" in diff.text and "+note" in diff.text

    transcript = await read(client, f"sidehand://sessions/{task_id}/transcript")
    assert transcript.mime_type == "text/markdown"
    assert "## User\n\nwrite notes" in transcript.text and "## Sidehand\n\nWrote notes." in transcript.text
    assert "**editor** create /workspace/notes.txt" in transcript.text

    listing = json.loads((await read(client, "sidehand://sessions")).text)
    assert [s["id"] for s in listing] == [task_id]

    await client.call_tool("discard_changes", {"id": task_id})  # closed: the diff comes from the saved patch
    assert "+note" in (await read(client, f"sidehand://sessions/{task_id}/diff")).text


async def test_unknown_and_foreign_sessions_are_refused(client: Client, tmp_path: Path) -> None:
    with pytest.raises(MCPError, match="unknown session"):
        await client.read_resource("sidehand://sessions/20990101-000000-abcdef/events")
    with pytest.raises(MCPError):
        await client.read_resource("sidehand://sessions/..%2F..%2Fetc/events")
    foreign = tmp_path / "sessions" / "20990101-000000-000000"
    foreign.mkdir(parents=True)
    (foreign / "meta.json").write_text(json.dumps({"id": foreign.name, "workspace": "/", "created": 0}))
    (foreign / "events.jsonl").write_text("")
    with pytest.raises(MCPError):
        await client.read_resource(f"sidehand://sessions/{foreign.name}/transcript")


async def test_skills_are_prompts(client: Client, workspace: Path) -> None:
    assert (await client.list_prompts()).prompts == []
    (workspace / "AGENTS.md").write_text("Run the tests with pytest -q.\n")
    skills = workspace / ".agents" / "skills"
    (skills / "release").mkdir(parents=True)
    (skills / "release" / "SKILL.md").write_text(
        '---\nname: release\ndescription: "Cut a release"\n---\n# Release\nBump the version.\n'
    )
    (skills / "style.md").write_text("# Code style\nUse type hints.\n")

    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == {"agents-md", "release", "style"}
    assert prompts["release"].description == "Cut a release"
    assert prompts["style"].description == "Code style"
    assert [a.name for a in prompts["release"].arguments or []] == ["task"]

    got = await client.get_prompt("release", {"task": "1.2.0"})
    [message] = got.messages
    assert message.role == "user" and isinstance(message.content, TextContent)
    assert "Bump the version." in message.content.text and message.content.text.endswith("Task: 1.2.0")
    assert "---" not in message.content.text
    with pytest.raises(MCPError, match="unknown prompt"):
        await client.get_prompt("nope")


def test_the_transcript_shows_condensations_skills_and_nudges() -> None:
    from agent_mcp.resources import transcript
    from core.events import Condensation, Nudge, SkillInjected

    text = transcript(
        [
            Condensation(strategy="summary", tokens_before=40000, tokens_after=9000, summary="Did things."),
            Condensation(strategy="masking", tokens_before=40000, tokens_after=20000),
            SkillInjected(name="react", path="react.md", reason="trigger", trigger="React", text="…"),
            Nudge(pattern="repeated_action", text="[stop repeating]"),
        ]
    )
    assert "*History condensed (summary): ~40000 → ~9000 tokens*\n\n```\nDid things.\n```" in text
    assert "*History condensed (masking): ~40000 → ~20000 tokens*\n" in text
    assert "*Given to the agent: react.md (trigger: React)*" in text
    assert "*Nudged (repeated_action): [stop repeating]*" in text

"""Tool-call modes and replies that are not plain calls, through a session on the fakes (issue 18).
The same behaviours through `sidehand run`, litellm and the scripted HTTP server are in
tests/e2e/test_text_tool_calls.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from core.config import Settings
from core.errors import LLMError, LLMToolsUnsupportedError
from core.events import AgentMessage, ReplyNotice, ToolCallEvent, ToolResultEvent
from core.messages import ChatMessage, LLMReply, ToolSpec
from core.session import Session
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM, call, reply
from core.tool_protocol import CUT_OFF, EMPTY_REPLY, ToolProtocol, text_protocol

REPLIES = Path(__file__).parents[1] / "fixtures" / "model_replies"
E = TypeVar("E")


def recorded(name: str) -> LLMReply:
    """A reply the real small model gave (its text, exactly)."""
    return reply(json.loads((REPLIES / f"{name}.json").read_text())["message"]["content"])


async def start(
    tmp_path: Path,
    replies: Sequence[LLMReply | LLMError],
    *,
    native_tools: bool | None = None,
    files: dict[str, bytes] | None = None,
    **settings: object,
) -> tuple[SessionManager, Session, ScriptedLLM, InMemorySandbox]:
    llm = ScriptedLLM(replies, native_tools=native_tools)
    box = InMemorySandbox(files)

    async def sandbox_factory(workspace: Path, session_id: str) -> InMemorySandbox:
        return box

    (tmp_path / "ws").mkdir(parents=True, exist_ok=True)
    s = Settings.model_validate({"model": "scripted", "sessions_dir": tmp_path / "sessions", **settings})
    manager = SessionManager(s, FakeSandboxFactory(sandbox_factory), lambda _: llm)
    return manager, await manager.create(tmp_path / "ws"), llm, box


def events_of(session: Session, kind: type[E]) -> list[E]:
    return [e for e in session.store.events(session.id) if isinstance(e, kind)]


async def test_calls_written_as_text_are_run(tmp_path: Path) -> None:
    """The recorded first reply of the create task (`"name": "create"` in a ```json block) creates
    the file; the next recorded reply (a bare finish object) ends the turn."""
    manager, session, _, box = await start(
        tmp_path, [recorded("jinja-t0-create-start"), recorded("jinja-t0-fix-after-tests-pass")]
    )
    end = await session.prompt("Create greeting.txt")
    assert end.stop_reason == "end_turn" and end.message == "The task is complete. All tests passed."
    assert box.files["/workspace/greeting.txt"] == b"Hello from Sidehand"
    first = events_of(session, ToolCallEvent)[0]
    assert (first.tool, json.loads(first.arguments)["command"]) == ("editor", "create")  # normalized
    assert events_of(session, AgentMessage) == []  # the reply was the call: no prose to show
    await manager.aclose()


async def test_auto_turns_to_text_mode_when_the_model_writes_calls(tmp_path: Path) -> None:
    manager, session, llm, _ = await start(
        tmp_path,
        [
            recorded("jinja-t0-fix-start"),  # ```json {"name": "bash", ...}
            reply('<tool_call>\n{"name": "finish", "arguments": {"message": "ok"}}\n</tool_call>'),
        ],
        files={"test_calc.py": b"print('x')\n"},
    )
    await session.prompt("Fix it")
    first, second = llm.requests
    assert [t.name for t in llm.tools_sent[0]] == ["bash", "editor", "think", "plan", "finish"]
    assert llm.tools_sent[1] == []  # text mode: the tools are in the system prompt
    assert "# Tools" not in (first[0].content or "") and "# Tools" in (second[0].content or "")
    assert "<tool_call>" in (second[0].content or "")
    # the history as the model reads it: its call as text, the result as a user message
    assert second[-2].role == "assistant" and second[-2].content is not None
    assert (
        '<tool_call>\n{"name": "bash", "arguments": {"command": "python3 test_calc.py"}}'
        in second[-2].content
    )
    assert (
        second[-1].role == "user"
        and second[-1].content
        == "<tool_response>\nran: python3 test_calc.py\n[exit code: 0]\n</tool_response>"
    )
    assert all(m.role != "tool" and not m.tool_calls for m in second)
    await manager.aclose()


async def test_a_model_litellm_knows_gets_its_mode_at_once(tmp_path: Path) -> None:
    manager, session, llm, _ = await start(tmp_path, [reply("hi")], native_tools=False)
    await session.prompt("go")
    assert llm.tools_sent == [[]] and "# Tools" in (llm.requests[0][0].content or "")
    await manager.aclose()
    manager, session, llm, _ = await start(
        tmp_path / "b", [recorded("jinja-t0-fix-start"), reply("done")], native_tools=True
    )
    await session.prompt("go")
    assert all(len(tools) == 5 for tools in llm.tools_sent)  # native stays native, text calls still run
    assert len(events_of(session, ToolResultEvent)) == 1
    await manager.aclose()


async def test_the_mode_set_in_the_config_wins(tmp_path: Path) -> None:
    manager, session, llm, _ = await start(
        tmp_path, [reply("hi")], native_tools=True, models={"scripted": {"tool_calls": "text"}}
    )
    await session.prompt("go")
    assert llm.tools_sent == [[]]
    await manager.aclose()


async def test_a_server_refusing_tools_is_asked_again_in_text_mode(tmp_path: Path) -> None:
    refusal = LLMToolsUnsupportedError(
        "the server takes no tools in a request: tools param requires --jinja flag"
    )
    manager, session, llm, _ = await start(tmp_path, [refusal, reply("answered")])
    end = await session.prompt("go")
    assert (end.stop_reason, end.message, end.iterations) == ("end_turn", "answered", 1)
    assert [len(t) for t in llm.tools_sent] == [5, 0]
    await manager.aclose()
    manager, session, llm, _ = await start(tmp_path / "b", [refusal], tool_calls="native")
    end = await session.prompt("go")
    assert end.stop_reason == "error" and "--jinja" in end.message  # told to be native: no switch
    await manager.aclose()


async def test_an_unreadable_call_is_answered_and_the_turn_goes_on(tmp_path: Path) -> None:
    manager, session, llm, _ = await start(
        tmp_path,
        [recorded("text-t0-run-tests-start"), reply(None, call("finish", {"message": "done"}))],
    )
    end = await session.prompt("Run the tests")
    assert (end.stop_reason, end.message, end.iterations) == ("end_turn", "done", 2)
    (notice,) = events_of(session, ReplyNotice)
    assert "names no tool" in notice.text and '{"name": <tool name>' in notice.text
    assert llm.requests[1][-1] == ChatMessage(role="user", content=notice.text)
    await manager.aclose()


async def test_a_model_that_keeps_writing_unreadable_calls_is_stuck(tmp_path: Path) -> None:
    """Fourteen notices for the same broken reply ran to the step limit with the real model."""
    manager, session, _, _ = await start(tmp_path, [recorded("text-t0-run-tests-start")] * 30)
    end = await session.prompt("Run the tests")
    assert (end.stop_reason, end.iterations) == ("stuck", 4)  # three alike, a nudge, the fourth
    assert end.message.startswith("the agent is stuck: reply ```json") and "same error" in end.message
    await manager.aclose()


async def test_finish_in_a_reply_whose_other_calls_failed_is_refused(tmp_path: Path) -> None:
    """The real small model sent six failing editor calls and `finish` in one reply."""
    broken = call("editor", {"command": "sed -i s/a/b/ x.py", "path": "x.py"})
    claim = call("finish", {"message": "All changes are in place."})
    manager, session, _, _ = await start(
        tmp_path, [reply(None, broken, claim), reply(None, call("finish", {"message": "gave up"}))]
    )
    end = await session.prompt("rename it")
    assert (end.stop_reason, end.message, end.iterations) == ("end_turn", "gave up", 2)
    results = events_of(session, ToolResultEvent)
    assert [r.error for r in results] == [True, True, False]
    assert results[1].output.startswith("Not finished: 1 of the calls before `finish` in this reply failed")
    await manager.aclose()


async def test_an_empty_reply_is_nudged_once_then_ends_the_turn(tmp_path: Path) -> None:
    manager, session, _, _ = await start(
        tmp_path,
        [reply(""), reply(None, call("think", {"thought": "t"})), reply("\n"), reply("  ")],
    )
    end = await session.prompt("go")
    assert end.stop_reason == "empty_reply" and "nothing, twice in a row" in end.message
    notices = events_of(session, ReplyNotice)
    # nudged again after a real step; the task is restated (a small model lost its way)
    assert [n.text for n in notices] == [f"{EMPTY_REPLY} The task was:\ngo"] * 2
    assert session.state.status == "idle"
    await manager.aclose()


async def test_duplicate_call_ids_get_fresh_ones(tmp_path: Path) -> None:
    manager, session, _, _ = await start(
        tmp_path,
        [
            reply(
                None,
                call("think", {"thought": "a"}, call_id="call_0"),
                call("think", {"thought": "b"}, call_id="call_0"),
            ),
            reply(None, call("think", {"thought": "c"}, call_id="call_0")),
            reply("done"),
        ],
    )
    await session.prompt("go")
    ids = [e.call_id for e in events_of(session, ToolCallEvent)]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(r.call_id for r in events_of(session, ToolResultEvent)) == sorted(ids)
    await manager.aclose()


def test_text_history_is_converted_once_per_message() -> None:
    system = ChatMessage(role="system", content="sys")
    specs = [ToolSpec(name="bash", description="d")]
    protocol = ToolProtocol("text", {})
    view = [
        ChatMessage(role="user", content="go"),
        ChatMessage(role="assistant", content=None, tool_calls=(call("bash", {"command": "ls"}),)),
        ChatMessage(role="tool", content="a", tool_call_id="x"),
        ChatMessage(role="tool", content="b", tool_call_id="y"),
    ]
    first, tools = protocol.request([system, *view], specs)
    again, _ = protocol.request([system, *view, ChatMessage(role="user", content="more")], specs)
    assert tools == [] and first[0].content == "sys\n\n" + text_protocol(
        [ToolSpec(name="bash", description="d")]
    )
    assert [m.role for m in first] == ["system", "user", "assistant", "user"]
    assert first[3].content == "<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response>"
    assert all(a is b for a, b in zip(first, again[: len(first)], strict=True))  # kept: encoded once


@pytest.mark.parametrize("mode", ["native", "auto"])
def test_native_requests_carry_the_tools(mode: str) -> None:
    system = ChatMessage(role="system", content="sys")
    specs = [ToolSpec(name="bash", description="d")]
    protocol = ToolProtocol(mode, {})  # type: ignore[arg-type]
    messages, tools = protocol.request([system, ChatMessage(role="user", content="go")], specs)
    assert messages[0] is system and tools == specs


async def test_a_reply_cut_at_the_length_limit_is_no_answer(tmp_path: Path) -> None:
    cut = LLMReply(text="To fix this, first I will explain at length", finish_reason="length")
    manager, session, _, _ = await start(tmp_path, [cut, reply(None, call("finish", {"message": "ok"}))])
    end = await session.prompt("go")
    assert (end.stop_reason, end.message) == ("end_turn", "ok")
    assert [n.text for n in events_of(session, ReplyNotice)] == [CUT_OFF]
    await manager.aclose()

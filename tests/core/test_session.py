"""The controller and session API with in-process fakes (the Docker + litellm path is in tests/e2e)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import model_validator

from core.config import Settings
from core.errors import LLMConnectionError, LLMError, SessionBusyError, SessionError
from core.eventlog import EventLogError
from core.events import ApprovalRejected, ApprovalRequested, Event, ToolResultEvent, TurnEnded
from core.messages import LLMReply
from core.policy import decision_for
from core.protocols import CommandResult
from core.session import ApprovalDecision
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM, call, reply
from core.tools import Observation, Params, Tool, ToolContext


def make_manager(
    tmp_path: Path,
    replies: Sequence[LLMReply | LLMError],
    sandbox: InMemorySandbox | None = None,
    **settings: object,
) -> tuple[SessionManager, ScriptedLLM, InMemorySandbox]:
    llm = ScriptedLLM(replies)
    box = sandbox or InMemorySandbox()

    async def sandbox_factory(workspace: Path, session_id: str) -> InMemorySandbox:
        return box

    s = Settings.model_validate({"model": "scripted", "sessions_dir": tmp_path / "sessions", **settings})
    return SessionManager(s, FakeSandboxFactory(sandbox_factory), lambda _: llm), llm, box


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


async def test_a_turn_runs_tools_and_finishes(tmp_path: Path, workspace: Path) -> None:
    manager, llm, box = make_manager(
        tmp_path,
        [
            reply(
                "Creating the file.",
                call(
                    "editor",
                    {"command": "create", "path": "/workspace/hello.py", "file_text": "print('hi')\n"},
                ),
            ),
            reply(None, call("bash", {"command": "python3 hello.py"})),
            reply(None, call("finish", {"message": "Done: hello.py prints hi."})),
        ],
    )
    session = await manager.create(workspace)
    seen: list[Event] = []
    session.subscribe(seen.append)
    end = await session.prompt("make hello.py")
    assert end.stop_reason == "end_turn"
    assert end.message == "Done: hello.py prints hi."
    assert end.changes == ("A hello.py",)
    assert box.commands == ["python3 hello.py"]
    kinds = [e.kind for e in seen]
    assert kinds.count("tool_call") == 3 and kinds.count("tool_result") == 3
    assert "agent_message_chunk" in kinds  # streamed text reached subscribers
    # the model saw the first result before the second call: tool messages answer their calls
    second_request = llm.requests[1]
    assert second_request[-1].role == "tool" and "File created successfully" in (
        second_request[-1].content or ""
    )
    assert second_request[-2].tool_calls[0].name == "editor"
    await manager.aclose()
    persisted = session.store.events(session.id)
    assert [e.seq for e in persisted] == list(range(len(persisted)))
    assert all(e.kind != "agent_message_chunk" for e in persisted)


async def test_malformed_tool_calls_become_observations(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(
        tmp_path,
        [
            reply(None, call("nope", {})),
            reply(None, call("bash", "{not json", call_id="c2")),
            reply(None, call("bash", {"timeout": 3}, call_id="c3")),
            reply("I give up."),
        ],
    )
    session = await manager.create(workspace)
    end = await session.prompt("go")
    assert end.stop_reason == "end_turn"
    results = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)]
    assert "Unknown tool 'nope'" in results[0].output and results[0].error
    assert "not valid JSON" in results[1].output
    assert "missing required argument 'command'" in results[2].output
    await manager.aclose()


async def test_max_iterations(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(
        tmp_path,
        [reply(None, call("bash", {"command": f"echo {i}"}, call_id=f"c{i}")) for i in range(10)],
        max_iterations=3,
    )
    session = await manager.create(workspace)
    end = await session.prompt("loop")
    assert end.stop_reason == "max_iterations" and end.iterations == 3
    await manager.aclose()


async def test_llm_error_ends_the_turn_with_a_clear_message(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(tmp_path, [LLMConnectionError("cannot reach http://127.0.0.1:9/v1")])
    session = await manager.create(workspace)
    end = await session.prompt("go")
    assert end.stop_reason == "error" and "cannot reach" in end.message
    await manager.aclose()


async def test_budget_cap_stops_the_session(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(
        tmp_path,
        [reply(None, call("think", {"thought": "t"}, call_id=f"c{i}"), cost=0.6) for i in range(5)],
        max_budget=1.0,
    )
    session = await manager.create(workspace)
    end = await session.prompt("spend")
    assert end.stop_reason == "budget"
    assert session.state.usage.cost == pytest.approx(1.2)
    await manager.aclose()


async def test_cancel_kills_the_running_command(tmp_path: Path, workspace: Path) -> None:
    manager, _, box = make_manager(
        tmp_path, [reply(None, call("bash", {"command": "sleep 100"}, call_id="long"))]
    )
    session = await manager.create(workspace)
    started = asyncio.Event()
    session.subscribe(lambda e: started.set() if e.kind == "tool_started" else None)
    turn = asyncio.create_task(session.prompt("wait"))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(box.running.wait(), 5)
    await session.cancel()
    end = await asyncio.wait_for(turn, 5)
    assert end.stop_reason == "cancelled"
    assert box.interrupts == 1
    result = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)][-1]
    assert result.call_id == "long" and result.error
    # the session is usable again
    assert not session.busy
    await manager.aclose()


async def test_prompt_while_busy_is_refused(tmp_path: Path, workspace: Path) -> None:
    manager, llm, _ = make_manager(tmp_path, [reply("ok")])
    llm.gate = asyncio.Event()
    session = await manager.create(workspace)
    asked = asyncio.Event()
    session.subscribe(lambda e: asked.set() if e.kind == "user_message" else None)
    turn = asyncio.create_task(session.prompt("one"))
    await asyncio.wait_for(asked.wait(), 5)
    with pytest.raises(SessionBusyError, match="already running a turn"):
        await session.prompt("two")
    llm.gate.set()
    assert (await turn).stop_reason == "end_turn"
    await manager.aclose()


async def test_a_prompt_right_after_a_turn_ended_waits_for_its_last_writes(
    tmp_path: Path, workspace: Path
) -> None:
    """The user read the answer (the turn's end was sent) and typed again at once, while the
    turn still saved its log: that is no busy session."""
    manager, _, _ = make_manager(tmp_path, [reply("one"), reply("two")])
    session = await manager.create(workspace)
    follow_up: list[asyncio.Task[object]] = []
    session.subscribe(
        lambda e: (
            follow_up.append(asyncio.ensure_future(session.prompt("again")))
            if e.kind == "turn_ended" and not follow_up
            else None
        )
    )
    assert (await session.prompt("go")).message == "one"
    second = await asyncio.wait_for(follow_up[0], 5)
    assert isinstance(second, TurnEnded) and second.message == "two"
    await manager.aclose()


async def test_ask_policy_waits_for_a_decision_and_remembers_session_scope(
    tmp_path: Path, workspace: Path
) -> None:
    manager, _, box = make_manager(
        tmp_path,
        [
            reply(None, call("bash", {"command": "touch a"}, call_id="c1")),
            reply(None, call("bash", {"command": "touch b"}, call_id="c2")),
            reply(None, call("bash", {"command": "touch c"}, call_id="c3")),
            reply("done"),
        ],
        approval_mode="always",
    )
    session = await manager.create(workspace)
    asked: list[str] = []

    def answer(event: Event) -> None:
        if isinstance(event, ApprovalRequested):
            asked.append(event.call_id)
            decision = (
                ApprovalDecision(allow=False)
                if event.call_id == "c1"
                else ApprovalDecision(allow=True, scope="session")
            )
            asyncio.get_running_loop().call_soon(session.decide, event.call_id, decision)

    session.subscribe(answer)
    end = await session.prompt("touch things")
    assert end.stop_reason == "end_turn"
    assert asked == ["c1", "c2"]  # c3 was covered by the session-wide approval
    assert box.commands == ["touch b", "touch c"]
    kinds = [e.kind for e in session.store.events(session.id)]
    assert kinds.count("approval_rejected") == 1 and kinds.count("approval_granted") == 1
    with pytest.raises(SessionError):
        session.decide("c1", ApprovalDecision(allow=True))
    await manager.aclose()


async def test_cancel_answers_a_pending_approval_cancelled(tmp_path: Path, workspace: Path) -> None:
    manager, _, box = make_manager(
        tmp_path,
        [reply(None, call("bash", {"command": "rm -rf /tmp/x"}, call_id="c1"))],
        approval_mode="risky",
    )
    session = await manager.create(workspace)
    asked = asyncio.Event()
    session.subscribe(lambda e: asked.set() if e.kind == "approval_requested" else None)
    turn = asyncio.create_task(session.prompt("clean"))
    await asyncio.wait_for(asked.wait(), 5)
    assert session.pending_approvals == ["c1"]
    await session.cancel()
    end = await turn
    assert end.stop_reason == "cancelled" and box.commands == []
    rejected = [e for e in session.store.events(session.id) if isinstance(e, ApprovalRejected)]
    assert rejected and rejected[0].cancelled
    await manager.aclose()


async def test_read_only_mode_denies_writes(tmp_path: Path, workspace: Path) -> None:
    manager, _, box = make_manager(
        tmp_path,
        [
            reply(
                None,
                call("bash", {"command": "ls"}, call_id="a"),
                call("bash", {"command": "touch x"}, call_id="b"),
            ),
            reply("ok"),
        ],
        approval_mode="read_only",
    )
    session = await manager.create(workspace)
    await session.prompt("look")
    assert box.commands == ["ls"]
    await manager.aclose()


async def test_load_replays_and_reports_an_interrupted_action(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(
        tmp_path, [reply(None, call("bash", {"command": "sleep 100"}, call_id="long"))]
    )
    session = await manager.create(workspace)
    started = asyncio.Event()
    session.subscribe(lambda e: started.set() if e.kind == "tool_call" else None)
    turn = asyncio.create_task(session.prompt("wait"))
    await asyncio.wait_for(started.wait(), 5)
    # simulate a crash: nothing more reaches the log, and the turn stops without ending
    session.log.close()
    await session.cancel()
    with pytest.raises(EventLogError):  # the cancelled turn can no longer record its end
        await turn
    before = session.store.events(session.id)
    manager2, _, _ = make_manager(tmp_path, [reply("resumed")])
    loaded = await manager2.load(session.id)
    assert loaded.state.messages[0].content == "wait"
    after = loaded.store.events(loaded.id)
    assert after[: len(before)] == before  # nothing acknowledged was lost
    interrupted = [e for e in after[len(before) :] if isinstance(e, ToolResultEvent)]
    assert interrupted and "not re-run" in interrupted[0].output
    end = await loaded.prompt("continue")
    assert end.stop_reason == "end_turn"
    await manager2.aclose()


async def test_list_fork_and_unknown_ids(tmp_path: Path, workspace: Path) -> None:
    manager, _, _ = make_manager(tmp_path, [reply("one"), reply("two")])
    session = await manager.create(workspace)
    await session.prompt("first")
    forked = await manager.fork(session.id, upto_seq=0)
    assert [m.content for m in forked.state.messages] == ["first"]
    ids = {i.id for i in manager.list()}
    assert {session.id, forked.id} <= ids
    with pytest.raises(SessionError, match="unknown session"):
        manager.get("nope")
    with pytest.raises(SessionError, match="unknown session"):
        await manager.load("nope")
    await manager.aclose()


async def test_bad_workspace_and_no_model(tmp_path: Path) -> None:
    manager, _, _ = make_manager(tmp_path, [])
    with pytest.raises(SessionError, match="does not exist"):
        await manager.create(tmp_path / "missing")
    manager.settings = Settings.model_validate({"sessions_dir": tmp_path / "s"})
    with pytest.raises(Exception, match="SIDEHAND_MODEL"):
        await manager.create(tmp_path)


async def test_apply_changes_writes_the_host_workspace(tmp_path: Path, workspace: Path) -> None:
    (workspace / "keep.txt").write_text("old\n")
    box = InMemorySandbox({"keep.txt": b"old\n"})
    manager, _, _ = make_manager(
        tmp_path,
        [
            reply(
                None,
                call(
                    "editor",
                    {
                        "command": "str_replace",
                        "path": "/workspace/keep.txt",
                        "old_str": "old",
                        "new_str": "new",
                    },
                ),
            ),
            reply("ok"),
        ],
        sandbox=box,
    )
    session = await manager.create(workspace)
    await session.prompt("change it")
    assert (workspace / "keep.txt").read_text() == "old\n"  # nothing reaches the host before apply
    assert (await session.apply_changes()).written == ["keep.txt"]
    assert (workspace / "keep.txt").read_text() == "new\n"
    assert (await session.changes()).files == ()
    await manager.aclose()


async def test_each_tool_call_is_parsed_once(tmp_path: Path, workspace: Path) -> None:
    validations: list[str] = []

    class CountedParams(Params):
        text: str

        @model_validator(mode="after")
        def count(self) -> CountedParams:
            validations.append(self.text)
            return self

    class EchoTool(Tool):
        name = "echo"
        description = "Echo the text."
        params = CountedParams

        def title(self, params: Params) -> str:
            return "echo"

        async def execute(self, params: Params, ctx: ToolContext) -> Observation:
            assert isinstance(params, CountedParams)
            return Observation(params.text)

    llm = ScriptedLLM([reply(None, call("echo", {"text": "hi"})), reply("Done.")])

    async def sandbox_factory(workspace: Path, session_id: str) -> InMemorySandbox:
        return InMemorySandbox()

    settings = Settings(model="scripted", sessions_dir=tmp_path / "sessions", approval_mode="always")
    manager = SessionManager(
        settings, FakeSandboxFactory(sandbox_factory), lambda _: llm, lambda: {"echo": EchoTool()}
    )
    session = await manager.create(workspace)
    session.subscribe(
        lambda e: (
            session.decide(e.call_id, ApprovalDecision(allow=True))
            if isinstance(e, ApprovalRequested)
            else None
        )
    )
    end = await session.prompt("echo hi")
    assert end.stop_reason == "end_turn"
    assert validations == ["hi"]  # title, policy and execution all used the one parse
    await manager.aclose()


async def test_secrets_are_masked_before_anything_sees_an_event(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider-key-0123")
    key = "sk-configured-key-4567"
    box = InMemorySandbox(
        handler=lambda cmd: CommandResult(f"OPENAI_API_KEY=sk-provider-key-0123 {key}\n", 0)
    )
    manager, llm, _ = make_manager(
        tmp_path,
        [reply(f"I see {key}", call("bash", {"command": "env"})), reply("Done with sk-provider-key-0123.")],
        sandbox=box,
        api_key=key,
    )
    session = await manager.create(workspace)
    seen: list[Event] = []
    session.subscribe(seen.append)
    end = await session.prompt(f"use the key {key} please")
    texts = [e.model_dump_json() for e in seen] + [m.model_dump_json() for r in llm.requests for m in r]
    assert texts and not [t for t in texts if key in t or "sk-provider-key-0123" in t]
    assert end.message == "Done with [redacted]."
    assert session.state.title == "use the key [redacted] please"
    await manager.close(session.id)
    meta = manager.store.read_meta(session.id)
    assert meta["title"] == "use the key [redacted] please"
    logged = manager.store.log_path(session.id).read_text()
    assert key not in logged and "sk-provider-key-0123" not in logged


async def test_scoped_grants_survive_a_reload_high_risk_only_when_said(
    tmp_path: Path, workspace: Path
) -> None:
    replies = [
        reply(None, call("bash", {"command": "git push origin main"}, call_id="p1")),
        reply(None, call("bash", {"command": "make build"}, call_id="m1")),
        reply("Done."),
    ]
    manager, _, _ = make_manager(tmp_path, replies, approval_mode="always")
    session = await manager.create(workspace)

    def answer(event: Event) -> None:  # "always" for both, as the options offer them
        if isinstance(event, ApprovalRequested):
            args = json.loads(event.arguments)
            decision = decision_for("allow_always", event.tool, args, event.risk)
            asyncio.get_running_loop().call_soon(session.decide, event.call_id, decision)

    session.subscribe(answer)
    await session.prompt("push and build")
    session_id = session.id
    await manager.aclose()

    again = [
        reply(None, call("bash", {"command": "make build -j4"}, call_id="m2")),  # covered
        reply(None, call("bash", {"command": "git push --force"}, call_id="p2")),  # covered: said so
        reply(None, call("bash", {"command": "make build && rm -rf ~"}, call_id="x")),  # not covered
        reply("Done again."),
    ]
    manager, _, box = make_manager(tmp_path, again, approval_mode="always")
    loaded = await manager.load(session_id)
    asked: list[str] = []

    def reject(event: Event) -> None:
        if isinstance(event, ApprovalRequested):
            asked.append(event.call_id)
            asyncio.get_running_loop().call_soon(loaded.decide, event.call_id, ApprovalDecision(allow=False))

    loaded.subscribe(reject)
    await loaded.prompt("again")
    assert asked == ["x"]
    assert box.commands[-2:] == ["make build -j4", "git push --force"]
    granted = list(loaded.state.grants)
    assert [(g.scope, g.all_patterns, g.high_risk) for g in granted] == [
        ("command_prefix", ("git push",), True),
        ("command_prefix", ("make build",), False),
    ]
    await manager.aclose()

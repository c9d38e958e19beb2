"""A session's files live in its log: the change set survives the sandbox, a reload, a fork, a crash;
a new sandbox is given the files the log describes; approvals and settling work from the log."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from core.events import ApprovalRequested, ToolResultEvent, TurnEnded, WorkspaceDelta
from core.owner import Owner
from core.protocols import CommandResult
from core.session import ApprovalDecision
from core.testing.scripted_llm import call, reply
from tests.support.session_world import World, create


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def test_the_change_set_survives_the_sandbox_and_a_reload(world: World) -> None:
    (world.workspace / "kept.txt").write_text("host\n")
    world.script(
        [create("new.txt", "agent\n"), reply(None, call("bash", {"command": "echo x"})), reply("done")]
    )
    first = world.manager()
    session = await first.create(world.workspace)
    await session.prompt("make new.txt")
    deltas = [e for e in session.store.events(session.id) if isinstance(e, WorkspaceDelta)]
    assert [list(d.sandbox) for d in deltas] == [["new.txt"]]  # recorded once, when it happened
    await first.aclose()  # the sandbox is gone

    second = world.manager()
    loaded = await second.load(session.id, start_sandbox=False)
    assert [c.line for c in (await loaded.changes()).files] == ["A new.txt"]  # no sandbox needed
    box = await loaded.sandbox()  # a fresh copy of the host, given the session's files
    assert box is world.sandboxes[-1] and box.files["/workspace/new.txt"] == b"agent\n"
    assert await box.collect_changes() == {}  # put there from the log: not news
    report = await loaded.apply_changes()
    assert report.written == ["new.txt"] and (world.workspace / "new.txt").read_text() == "agent\n"
    assert (await loaded.changes()).files == ()
    await second.aclose()


async def test_a_fork_at_a_tool_call_has_a_valid_history_and_the_files_of_that_point(world: World) -> None:
    world.script([create("one.txt", "1\n"), create("two.txt", "2\n"), reply("done")])
    manager = world.manager()
    session = await manager.create(world.workspace)
    await session.prompt("make files")
    second_call = [e for e in session.store.events(session.id) if e.kind == "tool_call"][1]
    fork = await manager.fork(session.id, upto_seq=second_call.seq)
    last = fork.state.messages[-1]
    assert (
        last.role == "tool" and last.tool_call_id == second_call.call_id and "forked" in (last.content or "")
    )
    assert fork.state.pending_calls == {} and not fork.state.turn_open
    assert [c.path for c in (await fork.changes()).files] == ["one.txt"]  # two.txt came later
    await manager.aclose()


async def test_a_session_approval_is_remembered_after_a_reload(world: World) -> None:
    world.script([reply(None, call("bash", {"command": "make"})), reply("ok")])
    first = world.manager(approval_mode="always")
    session = await first.create(world.workspace)
    session.subscribe(
        lambda e: (
            session.decide(e.call_id, ApprovalDecision(allow=True, scope="session"))
            if isinstance(e, ApprovalRequested)
            else None
        )
    )
    await session.prompt("build")
    await first.aclose()

    world.script([reply(None, call("bash", {"command": "make test"})), reply("ok")])
    second = world.manager(approval_mode="always")
    loaded = await second.load(session.id)
    asked: list[ApprovalRequested] = []
    loaded.subscribe(lambda e: asked.append(e) if isinstance(e, ApprovalRequested) else None)
    end = await loaded.prompt("test")
    assert end.stop_reason == "end_turn" and asked == []  # "allow for this session" still holds
    await second.aclose()


async def test_recover_settles_sessions_of_a_process_that_died(world: World) -> None:
    world.script([create("a.txt", "a\n"), reply(None, call("bash", {"command": "sleep 100"}))])
    manager = world.manager()
    session = await manager.create(world.workspace)
    turn = asyncio.ensure_future(session.prompt("work"))
    await asyncio.wait_for(session.sandbox(), 5)
    await asyncio.wait_for(world.sandboxes[-1].running.wait(), 5)
    # The process "dies": its log stays as it is, with a turn and an action open, and its owner
    # in the metadata is a process that is gone.
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()  # its pid now names no process
    session.store.update_meta(session.id, owner={**Owner.current().as_dict(), "pid": dead.pid})
    session.log.sync()
    turn.cancel()
    manager.sessions.clear()  # forgotten without closing: as after a SIGKILL

    survivor = world.manager()
    assert await survivor.recover() == [session.id]
    events = survivor.store.events(session.id)
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert "not re-run" in results[-1].output
    ended = [e for e in events if isinstance(e, TurnEnded)]
    assert ended[-1].stop_reason == "interrupted"
    meta = survivor.store.read_meta(session.id)
    assert meta["status"] == "interrupted" and "owner" not in meta
    assert [
        c.path for c in (await (await survivor.load(session.id, start_sandbox=False)).changes()).files
    ] == ["a.txt"]
    assert await survivor.recover() == []  # once settled, left alone
    await survivor.aclose()


async def test_buffers_become_bases_and_rejects_revert_the_sandbox(world: World) -> None:
    (world.workspace / "f.txt").write_text("disk\n")
    world.script([reply("nothing yet")])
    manager = world.manager()
    session = await manager.create(world.workspace)
    await session.prompt("wait")
    # An editor's unsaved buffer: the base and the sandbox's copy; no change.
    await session.files.put({"f.txt": b"buffer\n"}, reason="buffer", as_base=True)
    assert (await session.changes()).files == ()
    world.script([reply(None, call("bash", {"command": "edit"})), reply("edited")])
    box = world.sandboxes[-1]

    def agent_edits(command: str) -> CommandResult:
        box.files["/workspace/f.txt"] = b"buffer\nagent\n"
        return CommandResult("", 0)

    box.handler = agent_edits
    await session.prompt("edit it")
    (change,) = (await session.changes()).files
    assert change.diff.splitlines()[-2:] == [" buffer", "+agent"]  # measured against the buffer
    await session.files.put({"f.txt": await session.files.base_content("f.txt")}, reason="reject")
    assert (await session.changes()).files == () and box.files["/workspace/f.txt"] == b"buffer\n"
    await manager.aclose()


async def test_an_idle_sandbox_stops_and_comes_back_with_the_session_s_files(world: World) -> None:
    world.script([create("a.txt", "a\n"), reply("made")])
    manager = world.manager(sandbox_idle_timeout=0.05)
    session = await manager.create(world.workspace)
    await session.prompt("make a")
    first = world.sandboxes[-1]
    await asyncio.wait_for(first.closed_event.wait(), 5)  # stopped once idle
    world.script([reply(None, call("bash", {"command": "cat a.txt"})), reply("read it")])
    await session.prompt("read a")
    second = world.sandboxes[-1]
    assert second is not first and second.files["/workspace/a.txt"] == b"a\n"  # restored from the log
    result = [e for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)][-1]
    assert result.output.startswith("[The sandbox was restarted")  # the model is told, once
    assert len(world.sandboxes) == 2
    await manager.aclose()


async def test_a_sandbox_filled_from_the_host_again_gets_the_change_set_back(world: World) -> None:
    world.script([create("new.txt", "agent\n"), reply("done")])
    manager = world.manager()
    session = await manager.create(world.workspace)
    await session.prompt("make new.txt")
    box = world.sandboxes[-1]
    # What a restart does to a tmpfs sandbox: its files are the host's again, and it says so once.
    del box.files["/workspace/new.txt"], box._known["/workspace/new.txt"]
    refilled = iter([True])
    box.take_refilled = lambda: next(refilled, False)  # type: ignore[method-assign]
    await session.files.record()
    assert box.files["/workspace/new.txt"] == b"agent\n"
    assert [c.line for c in (await session.changes()).files] == ["A new.txt"]
    await manager.aclose()

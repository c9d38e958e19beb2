"""Checkpoints: one after every tool call, commands included; restoring one moves only the agent's
side of the sandbox, is itself a checkpoint (so it can be undone), and never touches the host."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import SessionBusyError, SessionError
from core.events import Checkpoint
from core.messages import LLMReply
from core.session import Session
from core.testing.fake_sandbox import InMemorySandbox
from core.testing.scripted_llm import call, reply
from tests.support.session_world import World, create
from tests.support.waits import eventually


def bash(command: str) -> LLMReply:
    return reply(None, call("bash", {"command": command}))


def edit(path: str, old: str, new: str) -> LLMReply:
    arguments = {"command": "str_replace", "path": f"/workspace/{path}", "old_str": old, "new_str": new}
    return reply(None, call("editor", arguments))


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    (world.workspace / "app.py").write_text("v = 1\n")
    (world.workspace / "keep.txt").write_text("untouched\n")
    return world


def files(box: InMemorySandbox) -> dict[str, bytes]:
    return {p.removeprefix("/workspace/"): d for p, d in box.files.items() if p.startswith("/workspace/")}


async def three_steps(world: World) -> tuple[Session, InMemorySandbox]:
    """1: app.py v = 2; 2: new.py made; 3: a command (no file change)."""
    world.script([edit("app.py", "1", "2"), create("new.py", "new\n"), bash("echo hi"), reply("done")])
    session = await world.manager().create(world.workspace)
    await session.prompt("work")
    return session, world.sandboxes[-1]


async def test_a_checkpoint_follows_every_tool_call_and_survives_a_reload(world: World) -> None:
    session, _ = await three_steps(world)
    labels = [(c.checkpoint_id, c.label) for c in session.state.checkpoints]
    assert labels == [
        ("1", "editor: str_replace /workspace/app.py"),
        ("2", "editor: create /workspace/new.py"),
        ("3", "bash: echo hi"),
    ]
    calls = [e.call_id for e in session.store.events(session.id) if e.kind == "tool_call"]
    assert [c.call_id for c in session.state.checkpoints] == calls
    await session.close()
    loaded = await world.manager().load(session.id, start_sandbox=False)
    assert [c.checkpoint_id for c in loaded.state.checkpoints] == ["1", "2", "3"]
    await loaded.close()


async def test_restore_then_undo_then_restore_the_restore(world: World) -> None:
    session, box = await three_steps(world)
    report = await session.restore_checkpoint("1")  # app.py v = 2, no new.py
    assert files(box) == {"app.py": b"v = 2\n", "keep.txt": b"untouched\n"}
    assert report.paths == ["new.py"] and report.undo == "3" and report.checkpoint.checkpoint_id == "4"
    assert [c.path for c in (await session.changes()).files] == ["app.py"]
    undo = await session.restore_checkpoint(report.undo)  # back to after step 3
    assert files(box)["new.py"] == b"new\n" and undo.paths == ["new.py"]
    again = await session.restore_checkpoint("4")  # the restore's own checkpoint
    assert "new.py" not in files(box) and again.paths == ["new.py"]
    assert (world.workspace / "app.py").read_text() == "v = 1\n"  # the host is never written
    assert [c.restored for c in session.state.checkpoints][3:] == ["1", "3", "4"]
    await session.close()


async def test_a_restore_before_the_first_change_keeps_the_user_s_new_files(world: World) -> None:
    session, box = await three_steps(world)
    (world.workspace / "mine.txt").write_text("the user's\n")  # made on the host: mirrored
    (world.workspace / "app.py").write_text("v = 'host'\n")  # the user edits a file the agent changed
    await eventually(lambda: "mine.txt" in files(box))
    await session.restore_checkpoint("2")
    before_new = await session.restore_checkpoint("1")
    assert "new.py" in before_new.paths
    # A restore to a point before the agent changed app.py: it follows the user's version.
    world.script([edit("keep.txt", "untouched", "later"), reply("ok")])
    await session.prompt("more")
    await session.restore_checkpoint("1")
    assert files(box)["mine.txt"] == b"the user's\n"
    assert files(box)["keep.txt"] == b"untouched\n"
    await session.close()


async def test_restoring_without_a_sandbox_moves_the_log_and_the_next_sandbox_has_it(world: World) -> None:
    session, _ = await three_steps(world)
    await session.close()
    loaded = await world.manager().load(session.id, start_sandbox=False)
    report = await loaded.restore_checkpoint("1")
    assert report.paths == ["new.py"]
    box = await loaded.sandbox()
    assert isinstance(box, InMemorySandbox)
    assert "new.py" not in files(box) and files(box)["app.py"] == b"v = 2\n"
    await loaded.close()


async def test_the_conversation_goes_back_as_a_fork(world: World) -> None:
    session, _ = await three_steps(world)
    target = session.find_checkpoint("1")
    forked = await world.manager().fork(session.id, target.seq)
    assert forked.state.messages[-1].role == "tool"  # the history ends with step 1's result
    assert [c.checkpoint_id for c in forked.state.checkpoints] == ["1"]
    box = await forked.sandbox()
    assert (
        isinstance(box, InMemorySandbox) and files(box)["app.py"] == b"v = 2\n" and "new.py" not in files(box)
    )
    await forked.close()
    await session.close()


async def test_bad_restores_are_refused_clearly(world: World) -> None:
    session, _ = await three_steps(world)
    with pytest.raises(SessionError, match="no checkpoint '9'"):
        await session.restore_checkpoint("9")
    world.script([bash("sleep 100")])
    turn = asyncio.ensure_future(session.prompt("wait"))
    await eventually(lambda: session.busy and world.sandboxes[-1].running.is_set())
    with pytest.raises(SessionBusyError):
        await session.restore_checkpoint("1")
    await session.cancel()
    await turn
    assert all(isinstance(c, Checkpoint) for c in session.state.checkpoints)
    await session.close()

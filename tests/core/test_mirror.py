"""The live mirror, host → sandbox, on the real host watch (watchfiles) with an in-memory sandbox:
what the user changes reaches the sandbox; what the agent changed is never overwritten."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import ConflictError
from core.events import ToolResultEvent, WorkspaceDelta
from core.messages import LLMReply
from core.session import Session
from core.testing.fake_sandbox import InMemorySandbox
from core.testing.scripted_llm import call, reply
from tests.support.session_world import World
from tests.support.waits import eventually


def has(box: InMemorySandbox, path: str, content: bytes | None) -> Callable[[], bool]:
    return lambda: box.files.get(f"/workspace/{path}") == content


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    (world.workspace / "a.txt").write_text("a\n")
    (world.workspace / "pkg").mkdir()
    (world.workspace / "pkg" / "mod.py").write_text("x = 1\n")
    (world.workspace / ".gitignore").write_text("build/\n*.log\n")
    return world


async def started(world: World) -> tuple[Session, InMemorySandbox]:
    session = await world.manager().create(world.workspace)
    await session.sandbox()
    return session, world.sandboxes[-1]


async def test_saves_deletes_renames_and_new_folders_reach_the_sandbox(world: World, tmp_path: Path) -> None:
    session, box = await started(world)
    ws = world.workspace
    (ws / "a.txt").write_text("saved\n")
    await eventually(has(box, "a.txt", b"saved\n"))
    (ws / "new").mkdir()
    (ws / "new" / "deep").mkdir()
    (ws / "new" / "deep" / "f.txt").write_text("made at once\n")  # before its folder is watched
    await eventually(has(box, "new/deep/f.txt", b"made at once\n"))
    (ws / "pkg" / "mod.py").rename(ws / "pkg" / "renamed.py")
    await eventually(lambda: has(box, "pkg/renamed.py", b"x = 1\n")() and has(box, "pkg/mod.py", None)())
    shutil.move(ws / "pkg", tmp_path / "moved-out")  # a folder leaves: its files are gone
    await eventually(has(box, "pkg/renamed.py", None))
    outside = tmp_path / "incoming"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "g.txt").write_text("g\n")
    shutil.move(outside, ws / "new" / "incoming")  # a folder arrives with its files
    await eventually(has(box, "new/incoming/sub/g.txt", b"g\n"))
    (ws / "a.txt").unlink()
    await eventually(has(box, "a.txt", None))
    assert not [
        e for e in session.store.events(session.id) if isinstance(e, WorkspaceDelta)
    ]  # nothing of the agent's
    assert (await session.changes()).files == ()
    await session.close()


async def test_ignored_paths_and_git_internals_are_not_mirrored(world: World) -> None:
    session, box = await started(world)
    ws = world.workspace
    (ws / "build").mkdir()
    (ws / "build" / "out.js").write_text("gen\n")
    (ws / "debug.log").write_text("noise\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref\n")
    (ws / "node_modules" / "x").mkdir(parents=True)
    (ws / "node_modules" / "x" / "i.js").write_text("dep\n")
    (ws / "marker.txt").write_text("last\n")
    await eventually(has(box, "marker.txt", b"last\n"))
    for path in ("build/out.js", "debug.log", ".git/HEAD", "node_modules/x/i.js"):
        assert f"/workspace/{path}" not in box.files
    (ws / ".gitignore").write_text("build/\n")  # *.log no longer ignored: changes from now on
    await eventually(has(box, ".gitignore", b"build/\n"))  # the new rules are in force
    (ws / "debug.log").write_text("now seen\n")
    await eventually(has(box, "debug.log", b"now seen\n"))
    await session.close()


def replace(path: str, old: str, new: str) -> LLMReply:
    arguments = {"command": "str_replace", "path": f"/workspace/{path}", "old_str": old, "new_str": new}
    return reply(None, call("editor", arguments))


async def test_a_file_both_sides_changed_is_a_conflict_never_overwritten(world: World) -> None:
    world.script([replace("a.txt", "a", "agent"), reply("done")])
    session, box = await started(world)
    await session.prompt("change a")  # the agent's a.txt; then host edits arrive during the next step
    (world.workspace / "a.txt").write_text("user\n")
    await eventually(lambda: bool(session._notes))
    assert box.files["/workspace/a.txt"] == b"agent\n"  # kept
    [change] = (await session.changes()).files
    assert change.conflict and change.line == "M a.txt (conflict)"
    assert change.host_diff is not None and "+user" in change.host_diff and "+agent" in change.diff
    with pytest.raises(ConflictError):
        await session.apply_changes()
    assert (world.workspace / "a.txt").read_text() == "user\n"  # the user's edit stays
    world.script([reply(None, call("bash", {"command": "echo again"})), reply("ok")])
    await session.prompt("go on")
    told = [e.output for e in session.store.events(session.id) if isinstance(e, ToolResultEvent)][-1]
    assert "also changed files you had changed: a.txt" in told
    await session.close()


async def test_an_agent_file_left_as_the_host_had_it_follows_and_a_same_edit_is_no_change(
    world: World,
) -> None:
    edits = [replace("a.txt", "a", "same"), replace("pkg/mod.py", "1", "9"), replace("pkg/mod.py", "9", "1")]
    world.script([*edits, reply("done")])
    session, box = await started(world)
    await session.prompt("edit")  # a.txt changed; pkg/mod.py changed and changed back
    (world.workspace / "pkg" / "mod.py").write_text("x = 2\n")
    await eventually(has(box, "pkg/mod.py", b"x = 2\n"))
    (world.workspace / "a.txt").write_text("same\n")  # the user made the agent's edit by hand
    await eventually(lambda: session.state.workspace.changed_paths() == [])
    reasons = [e.reason for e in session.store.events(session.id) if isinstance(e, WorkspaceDelta)]
    assert reasons[-2:] == ["host", "host"]
    await session.close()


async def test_an_unsaved_buffer_is_the_host_s_version(world: World) -> None:
    session, box = await started(world)
    watch = session._mirror.watch if session._mirror else None
    assert watch is not None
    watch.set_buffer("a.txt", b"typing...\n")
    await eventually(has(box, "a.txt", b"typing...\n"))
    (world.workspace / "a.txt").write_text("on disk\n")  # the buffer still wins
    (world.workspace / "marker").write_text("m\n")
    await eventually(has(box, "marker", b"m\n"))
    assert box.files["/workspace/a.txt"] == b"typing...\n"
    watch.set_buffer("a.txt", None)  # closed without saving: the disk counts again
    await eventually(has(box, "a.txt", b"on disk\n"))
    await session.close()


async def test_a_name_watchfiles_cannot_decode_is_mirrored_by_comparing_everything(world: World) -> None:
    session, box = await started(world)
    odd = world.workspace / os.fsdecode(b"caf\xe9.txt")
    odd.write_bytes(b"latin-1 name\n")
    await eventually(has(box, "caf\udce9.txt", b"latin-1 name\n"))
    (world.workspace / "a.txt").write_text("still watched\n")
    await eventually(has(box, "a.txt", b"still watched\n"))
    odd.unlink()
    await eventually(has(box, "caf\udce9.txt", None))
    await session.close()


async def test_the_mirror_can_be_turned_off(world: World) -> None:
    session = await world.manager(sandbox_mirror=False).create(world.workspace)
    box = await session.sandbox()
    assert session.host_watch is None  # nothing watches the host
    (world.workspace / "a.txt").write_text("not seen\n")
    await session.files.record()
    assert await box.read_file("a.txt") == b"a\n"
    await session.close()


async def test_symlinks_and_files_over_the_limit_are_not_followed(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    session = await world.manager(sandbox_max_file_size=1000).create(world.workspace)
    await session.sandbox()
    box = world.sandboxes[-1]
    (world.workspace / "linked").symlink_to(outside)  # a folder link: nothing below it is read
    (world.workspace / "link.txt").symlink_to(outside / "secret.txt")
    (world.workspace / "big.bin").write_bytes(b"x" * 5000)
    (outside / "secret.txt").write_text("changed, still not yours\n")
    (world.workspace / "marker").write_text("m\n")
    await eventually(has(box, "marker", b"m\n"))
    assert not [p for p in box.files if "secret" in p or "link" in p or "big.bin" in p]
    await session.close()

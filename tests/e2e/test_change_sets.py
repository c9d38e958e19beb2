"""Change sets that can be trusted, as a user runs `sidehand run` on the real Docker sandbox: work
resumed with the sandbox's changes, SIGTERM handled, any file name, never a write through a
symlink on the host."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from core.events import TurnEnded
from core.host_workspace import HostWorkspace
from core.state import replay
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from core.workspace import change_set
from tests.e2e.conftest import CLI, cli_env, only_session, results, sidehand

pytestmark = pytest.mark.docker


def bash(command: str) -> Turn:
    return Turn.call("bash", {"command": command})


def test_resume_continues_with_the_sandbox_s_unapplied_changes(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(Script(turns=(bash("echo one > notes.txt"), Turn.say("wrote notes"))))
    first = sidehand(["run", "write notes", "--workspace", str(workspace)], cli_env(server, tmp_path))
    assert first.returncode == 0, first.stderr
    assert not (workspace / "notes.txt").exists()  # not applied
    store, session_id = only_session(tmp_path)

    server.set_script(Script(turns=(bash("cat notes.txt && echo two >> notes.txt"), Turn.say("added"))))
    second = sidehand(["run", "add a line", "--resume", session_id, "--apply"], cli_env(server, tmp_path))
    assert second.returncode == 0, second.stderr
    assert results(store.events(session_id))[-1].output.startswith("one\n")  # the new sandbox had it
    assert (workspace / "notes.txt").read_text() == "one\ntwo\n"
    # the model saw the whole history: the first turn's prompt is in the second turn's request
    assert "write notes" in str(server.requests[-1].body)


def test_sigterm_interrupts_the_turn_removes_the_sandbox_and_exits(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(Script(turns=(bash("echo kept > kept.txt"), bash("sleep 300"))))
    proc = subprocess.Popen(
        [*CLI, "run", "long", "--workspace", str(workspace)],
        env=cli_env(server, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = proc.stderr
    assert stderr is not None
    with ThreadPoolExecutor(1) as reader:
        running = reader.submit(lambda: any("▸ bash: sleep 300" in line for line in stderr))
        assert running.result(timeout=90)
        store, session_id = only_session(tmp_path)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
        assert time.monotonic() - sent < 10  # within seconds
        stderr.read()
    stderr.close()
    label = {"label": f"sidehand.session={session_id}"}
    assert docker.from_env().containers.list(all=True, filters=label) == []
    events = store.events(session_id)
    ended = [e for e in events if isinstance(e, TurnEnded)]
    assert ended[-1].stop_reason == "interrupted"
    meta = store.read_meta(session_id)
    assert meta["status"] == "interrupted" and "owner" not in meta
    state = replay(events).workspace
    assert [c.path for c in change_set(state, store, HostWorkspace(workspace).read).files] == ["kept.txt"]


def test_odd_file_names_are_applied_exactly_and_shown_escaped(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    command = "printf latin > \"$(printf 'caf\\351.txt')\"; printf nl > \"$(printf 'x\\n+++ evil')\""
    server.set_script(Script(turns=(bash(command), Turn.say("made them"))))
    done = sidehand(["run", "odd names", "--workspace", str(workspace), "--apply"], cli_env(server, tmp_path))
    assert done.returncode == 0, done.stderr
    assert (workspace / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"latin"
    assert (workspace / "x\n+++ evil").read_bytes() == b"nl"
    assert "caf\\xe9.txt" in done.stderr and "x\\n+++ evil" in done.stderr  # escaped on the terminal
    store, session_id = only_session(tmp_path)
    patch = store.read_patch(session_id)
    assert '"b/caf\\351.txt"' in patch and '"b/x\\n+++ evil"' in patch
    assert "+++ evil" not in [line.strip() for line in patch.splitlines()]  # no forged header line


def test_apply_never_writes_through_a_symlink_on_the_host(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("precious\n")
    (workspace / ".hello.py.sidehand-tmp").symlink_to(outside / "precious.txt")  # the old temp name
    (workspace / "linked").symlink_to(outside)
    script = Script(
        turns=(
            bash("rm linked; mkdir linked; echo x > linked/precious.txt; echo 'print(1)' > hello.py"),
            Turn.say("done"),
        )
    )
    server.set_script(script)
    env = cli_env(server, tmp_path)
    refused = sidehand(["run", "write", "--workspace", str(workspace), "--apply"], env)
    assert refused.returncode == 2
    assert (
        "linked" in refused.stderr and "symlink" in refused.stderr and "nothing was written" in refused.stderr
    )
    assert not (workspace / "hello.py").exists()
    server.set_script(script)
    partial = sidehand(["run", "write", "--workspace", str(workspace), "--apply", "--partial"], env)
    assert partial.returncode == 0, partial.stderr
    assert "not applied: linked/precious.txt" in partial.stderr
    assert (workspace / "hello.py").read_text() == "print(1)\n"
    assert (outside / "precious.txt").read_text() == "precious\n"
    assert sorted(os.listdir(outside)) == ["precious.txt"]

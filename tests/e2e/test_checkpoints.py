"""Checkpoints as a user reaches them from the terminal, on the real Docker sandbox: `sidehand run`,
then `sidehand sessions checkpoints|restore`, then `--resume` sees the restored files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.e2e.conftest import cli_env, only_session, results, sidehand

pytestmark = pytest.mark.docker


def bash(command: str) -> Turn:
    return Turn.call("bash", {"command": command})


def test_list_restore_undo_and_resume(server: ScriptedLLMServer, tmp_path: Path, workspace: Path) -> None:
    (workspace / "app.py").write_text("v = 1\n")
    steps = (bash("echo 'v = 2' > app.py"), bash("echo junk > junk.txt && rm app.py"), Turn.say("done"))
    server.set_script(Script(turns=steps))
    env = cli_env(server, tmp_path)
    assert sidehand(["run", "work", "--workspace", str(workspace)], env).returncode == 0
    _, session_id = only_session(tmp_path)

    listed = sidehand(["sessions", "checkpoints", session_id], env, check=True).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["1", "2"]
    assert listed[0].endswith("bash: echo 'v = 2' > app.py")

    (workspace / "mine.txt").write_text("made by the user\n")
    restored = sidehand(["sessions", "restore", session_id, "1"], env, check=True).stdout
    assert "app.py, junk.txt changed" in restored and f"sessions restore {session_id} 2" in restored

    server.set_script(Script(turns=(bash("cat app.py mine.txt; ls junk.txt 2>&1"), Turn.say("looked"))))
    resumed = sidehand(["run", "look", "--resume", session_id], env)
    assert resumed.returncode == 0, resumed.stderr
    store, _ = only_session(tmp_path)
    seen = results(store.events(session_id))[-1].output
    assert seen.startswith("v = 2\nmade by the user\n") and "No such file" in seen
    assert (workspace / "app.py").read_text() == "v = 1\n"  # the host was never written

    undo = sidehand(["sessions", "restore", session_id, "2"], env, check=True).stdout
    assert "junk.txt" in undo
    bad = sidehand(["sessions", "restore", session_id, "99"], env)
    assert bad.returncode == 2 and "no checkpoint '99'" in bad.stderr

    forked = sidehand(["sessions", "restore", session_id, "1", "--conversation"], env, check=True).stdout
    assert forked.startswith("new session ")

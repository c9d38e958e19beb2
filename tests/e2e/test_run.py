"""`sidehand run` and the session API doing real tasks in the Docker sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from core.events import TurnEnded
from core.sessions import SessionManager
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from sidehand.wiring import build_manager
from tests.e2e.conftest import CLI, cli_env, only_session, results, settings_for, sidehand
from tests.support.waits import wait_for_path

pytestmark = pytest.mark.docker

HELLO = Script(
    turns=(
        Turn.call(
            "editor",
            {
                "command": "create",
                "path": "/workspace/hello.py",
                "file_text": 'print("Hello from Sidehand")\n',
            },
        ),
        Turn.call("bash", {"command": "python3 hello.py"}),
        Turn.call("finish", {"message": "Created hello.py; it prints Hello from Sidehand."}),
    )
)


def test_cli_run_creates_hello_and_applies(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(HELLO)
    done = subprocess.run(
        [
            *CLI,
            "run",
            "Create hello.py that prints Hello from Sidehand and run it",
            "--workspace",
            str(workspace),
            "--apply",
        ],
        env=cli_env(server, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (workspace / "hello.py").read_text() == 'print("Hello from Sidehand")\n'
    assert "Created hello.py" in done.stdout
    assert "applied 1 change" in done.stderr
    store, session_id = only_session(tmp_path)
    outputs = [r.output for r in results(store.events(session_id))]
    assert "Hello from Sidehand" in outputs[1] and "[exit code: 0]" in outputs[1]
    assert "sk-test-not-a-real-key" not in store.log_path(session_id).read_text()
    shown = sidehand(["sessions", "show", session_id], cli_env(server, tmp_path), check=True)
    assert json.loads(shown.stdout.splitlines()[0])["kind"] == "user_message"


def test_cli_without_apply_leaves_the_workspace_alone(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(HELLO)
    done = sidehand(["run", "make hello", "--workspace", str(workspace)], cli_env(server, tmp_path))
    assert done.returncode == 0, done.stderr
    assert not (workspace / "hello.py").exists()
    store, session_id = only_session(tmp_path)
    assert '+print("Hello from Sidehand")' in store.read_patch(session_id)


def test_cli_without_a_model_names_the_settings(tmp_path: Path, workspace: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env["SIDEHAND_CONFIG"] = str(tmp_path / "none.toml")
    done = sidehand(["run", "x", "--workspace", str(workspace)], env, timeout=60)
    assert done.returncode == 2
    assert "SIDEHAND_MODEL" in done.stderr and "SIDEHAND_API_BASE" in done.stderr


def test_cli_bad_workspace_and_unknown_image(server: ScriptedLLMServer, tmp_path: Path) -> None:
    done = sidehand(
        ["run", "x", "--workspace", str(tmp_path / "missing")], cli_env(server, tmp_path), timeout=60
    )
    assert done.returncode == 2 and "does not exist" in done.stderr
    (tmp_path / "ws2").mkdir()
    done = sidehand(
        ["run", "x", "--workspace", str(tmp_path / "ws2"), "--image", "sidehand/no-such-image:1"],
        cli_env(server, tmp_path),
        timeout=60,
    )
    assert done.returncode == 2
    assert "sidehand/no-such-image:1" in done.stderr and "build-base" in done.stderr


def test_cli_unreachable_model_server(tmp_path: Path, workspace: Path, server: ScriptedLLMServer) -> None:
    env = cli_env(server, tmp_path, SIDEHAND_API_BASE="http://127.0.0.1:9/v1", SIDEHAND_LLM_RETRIES="0")
    done = sidehand(["run", "x", "--workspace", str(workspace)], env)
    assert done.returncode == 1
    assert "127.0.0.1:9" in done.stderr
    store, session_id = only_session(tmp_path)
    assert store.events(session_id)[-1].kind == "state_changed"  # the log is complete and valid


async def test_multi_step_str_replace_edit(
    server: ScriptedLLMServer, manager: SessionManager, workspace: Path
) -> None:
    (workspace / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n")
    server.set_script(
        Script(
            turns=(
                Turn.call("editor", {"command": "view", "path": "/workspace/calc.py"}),
                Turn.call("bash", {"command": "python3 calc.py"}),
                Turn.call(
                    "editor",
                    {
                        "command": "str_replace",
                        "path": "/workspace/calc.py",
                        "old_str": "return a - b",
                        "new_str": "return a + b",
                    },
                ),
                Turn.call("bash", {"command": "python3 calc.py"}),
                Turn.say("Fixed add()."),
            )
        )
    )
    session = await manager.create(workspace)
    end = await session.prompt("fix add")
    assert end.stop_reason == "end_turn" and end.changes == ("M calc.py",)
    outs = [r.output for r in results(session.store.events(session.id))]
    assert "     2\t    return a - b" in outs[0]
    assert outs[1].startswith("-1") and outs[3].startswith("5")
    changes = await session.changes()
    assert "-    return a - b\n+    return a + b" in changes.files[0].diff
    assert (workspace / "calc.py").read_text().count("a - b") == 1  # host untouched until applied
    await session.apply_changes()
    assert "return a + b" in (workspace / "calc.py").read_text()


async def test_failing_and_timed_out_commands(
    server: ScriptedLLMServer, manager: SessionManager, workspace: Path
) -> None:
    server.set_script(
        Script(
            turns=(
                Turn.call("bash", {"command": "cd /tmp && ls /nonexistent"}),
                Turn.call("bash", {"command": "sleep 30", "timeout": 1}),
                Turn.call("bash", {"command": "pwd"}),
                Turn.call("bash", {"command": "C-c"}),
                Turn.call("bash", {"command": "pwd"}),
                Turn.say("done"),
            )
        )
    )
    session = await manager.create(workspace)
    end = await session.prompt("try things")
    assert end.stop_reason == "end_turn"
    failing, waited, refused, stopped, pwd = results(session.store.events(session.id))
    assert failing.error and failing.exit_code == 2 and "No such file" in failing.output
    # the model's timeout: the call returns after 1 s, the command runs on
    assert not waited.timed_out and "The command is still running (1 s so far)" in waited.output
    assert refused.error and "Not run: the previous command (`sleep 30`) is still running" in refused.output
    assert "was interrupted (Ctrl-C)" in stopped.output
    assert pwd.output.startswith("/tmp")  # the shell survived the interrupt, cwd kept


async def test_the_hard_limit_kills_a_command(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(
        Script(
            turns=(
                Turn.call("bash", {"command": "cd /tmp; sleep 30", "timeout": 20}),
                Turn.call("bash", {"command": "pwd"}),
                Turn.say("done"),
            )
        )
    )
    manager = build_manager(settings_for(server, tmp_path, command_timeout=1))
    try:
        session = await manager.create(workspace)
        await session.prompt("try")
        timed_out, pwd = results(session.store.events(session.id))
        assert timed_out.timed_out and "timed out after 1 s (the limit for a command)" in timed_out.output
        assert pwd.output.startswith("/tmp")
    finally:
        await manager.aclose()


async def test_cancel_in_the_middle_of_a_long_command(
    server: ScriptedLLMServer, manager: SessionManager, workspace: Path
) -> None:
    command = "touch /tmp/started && sleep 61"
    server.set_script(Script(turns=(Turn.call("bash", {"command": command}), Turn.say("never"))))
    session = await manager.create(workspace)
    turn = asyncio.create_task(session.prompt("wait"))
    sandbox = await session.sandbox()
    await wait_for_path(sandbox, "/tmp/started", timeout=30)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await session.cancel()
    end = await asyncio.wait_for(turn, 15)
    assert end.stop_reason == "cancelled"
    assert loop.time() - t0 < 10
    after = await sandbox.run("ps -eo args | grep -c '^sleep 61' || true", timeout=10)
    assert after.output.strip() == "0"  # the command was killed, the shell still answers


def test_killed_process_session_loads_from_its_log(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(
        Script(
            turns=(Turn.call("bash", {"command": "echo first"}), Turn.call("bash", {"command": "sleep 120"}))
        )
    )
    proc = subprocess.Popen(
        [*CLI, "run", "long task", "--workspace", str(workspace)],
        env=cli_env(server, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = proc.stderr
    assert stderr is not None
    reader = ThreadPoolExecutor(1)
    try:
        # The progress line of the second call is printed once its event is in the log.
        running = reader.submit(lambda: any("▸ bash: sleep 120" in line for line in stderr))
        assert running.result(timeout=90), "the CLI ended without running `sleep 120`"
        store, session_id = only_session(tmp_path)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.shutdown()  # the reader sees the end of stderr once the process is gone
        for pipe in (proc.stdout, stderr):
            if pipe is not None:
                pipe.close()
    before = store.events(session_id)
    assert [r.output.splitlines()[0] for r in results(before)] == ["first"]
    client = docker.from_env()
    label = {"label": f"sidehand.session={session_id}"}
    assert client.containers.list(all=True, filters=label)  # left behind by the killed process

    # the next process that starts sandboxes reaps it
    server.set_script(Script(turns=(Turn.say("ok"),)))
    (tmp_path / "other").mkdir()
    done = sidehand(["run", "anything", "--workspace", str(tmp_path / "other")], cli_env(server, tmp_path))
    assert done.returncode == 0, done.stderr
    assert client.containers.list(all=True, filters=label) == []
    # ...and settles the session it had open, as of its last step boundary
    settled = store.events(session_id)
    assert settled[: len(before)] == before
    assert [e.stop_reason for e in settled if isinstance(e, TurnEnded)] == ["interrupted"]
    assert store.read_meta(session_id)["status"] == "interrupted"

    async def resume() -> None:
        server.set_script(Script(turns=(Turn.say("Resumed."),)))
        manager = build_manager(settings_for(server, tmp_path))
        session = await manager.load(session_id)
        after = store.events(session_id)
        assert after[: len(before)] == before  # nothing acknowledged was lost
        interrupted = results(after)[-1]
        assert "not re-run" in interrupted.output
        end = await session.prompt("go on")
        assert end.stop_reason == "end_turn" and end.message == "Resumed."
        await manager.aclose()

    asyncio.run(resume())

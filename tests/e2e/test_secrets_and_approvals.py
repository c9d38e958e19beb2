"""`sidehand run` as a user runs it, on the real Docker sandbox and the scripted model reached
through litellm: secrets never show (stdout, stderr with -v, the log, the metadata, saved outputs,
the sandbox's environment), and "always allow" answers on the terminal hold across a resume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.testing.scripted_server import Script, ScriptedLLMServer, Turn
from tests.e2e.conftest import CLI, cli_env, only_session, results

pytestmark = pytest.mark.docker

API_KEY = "sk-test-not-a-real-key"  # cli_env's SIDEHAND_API_KEY
PROVIDER_KEY = "sk-openai-e2e-0123456789"


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_secrets_never_show_and_the_sandbox_gets_only_named_variables(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    server.set_script(
        Script(
            turns=(
                Turn.call(
                    "bash",
                    {
                        "command": f"env | sort; echo greeting=$GREETING; seq 1 8000; echo {PROVIDER_KEY} {API_KEY}"
                    },
                ),
                Turn.call("finish", {"message": f"Done: {PROVIDER_KEY}"}),
            )
        )
    )
    env = cli_env(
        server,
        tmp_path,
        OPENAI_API_KEY=PROVIDER_KEY,
        GREETING="hello-sandbox",
        SIDEHAND_SANDBOX_ENV="GREETING",
    )
    done = run(["-v", "run", f"deploy it with {API_KEY}", "--workspace", str(workspace)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Done: [redacted]\n"  # stdout carries the final message only, even with -v
    store, session_id = only_session(tmp_path)
    folder = store.directory(session_id)
    written = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert any(str(p).startswith("outputs/") for p in written)  # the long output was kept in full
    for text in (done.stdout, done.stderr, *(data.decode("utf-8", "replace") for data in written.values())):
        assert [line for line in text.splitlines() if PROVIDER_KEY in line or API_KEY in line] == []
    assert json.loads(written[Path("meta.json")])["title"] == "deploy it with [redacted]"
    output = results(store.events(session_id))[0].output
    assert "greeting=hello-sandbox" in output  # the variable the user named got in
    assert "OPENAI_API_KEY" not in output and "SIDEHAND_" not in output  # nothing else did


def test_always_allow_on_the_terminal_holds_across_a_resume(
    server: ScriptedLLMServer, tmp_path: Path, workspace: Path
) -> None:
    env = cli_env(server, tmp_path)
    server.set_script(
        Script(
            turns=(
                Turn.call("bash", {"command": "mkdir -p out"}),
                Turn.call("bash", {"command": "mkdir -p out/sub"}),
                Turn.call("finish", {"message": "Made them."}),
            )
        )
    )
    first = run(["run", "make folders", "--workspace", str(workspace), "--confirm"], env, stdin="a\n")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("? approval needed") == 1
    assert "[a] Always allow `mkdir` commands" in first.stderr
    store, session_id = only_session(tmp_path)
    server.set_script(
        Script(
            turns=(
                Turn.call("bash", {"command": "mkdir -p out/again"}),  # covered: remembered from the log
                Turn.call("bash", {"command": "touch out/x && mkdir -p y"}),  # `touch` is not
                Turn.call("finish", {"message": "Second turn."}),
            )
        )
    )
    second = run(["sessions", "resume", session_id, "more", "--confirm"], env, stdin="n\n")
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("? approval needed") == 1 and '"touch out/x && mkdir -p y"' in second.stderr
    kinds = [e.kind for e in store.events(session_id)]
    assert kinds.count("approval_requested") == 2 and kinds.count("approval_rejected") == 1

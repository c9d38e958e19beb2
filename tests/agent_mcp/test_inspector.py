"""The MCP Inspector CLI (npm, works offline once installed) listing and calling tools over stdio
and over HTTP with the bearer token. The inspector is installed once into a cache folder
(SIDEHAND_MCP_INSPECTOR_DIR, default ~/.cache/sidehand-tests/mcp-inspector); without npm the
tests fail with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.agent_mcp.conftest import ScriptWriter, create_file, say
from tests.agent_mcp.test_subprocess import TOOLS, http_server, server_env, sidehand_mcp

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


@pytest.fixture(scope="session")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(
        os.environ.get("SIDEHAND_MCP_INSPECTOR_DIR")
        or Path.home() / ".cache" / "sidehand-tests" / "mcp-inspector"
    )
    binary = folder / "node_modules" / ".bin" / "mcp-inspector"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the MCP Inspector CLI cannot be installed")
    folder.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("npm-home")
    done = subprocess.run(
        [npm, "install", "--prefix", str(folder), "--no-save", "--no-audit", "--no-fund", INSPECTOR],
        env={**os.environ, "HOME": str(home), "npm_config_cache": str(folder / ".npm-cache")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        pytest.fail(f"cannot install {INSPECTOR}: {done.stderr[-500:]}")
    return binary


def run_inspector(binary: Path, home: Path, target: list[str], *options: str) -> tuple[int, Any]:
    """Run `mcp-inspector --cli TARGET OPTIONS`; (exit code, the JSON it printed)."""
    done = subprocess.run(
        [str(binary), "--cli", *target, *options],
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout if "{" in done.stdout else done.stderr  # errors are printed on stderr
    start = output.find("{")
    assert start >= 0, (done.stdout, done.stderr)
    return done.returncode, json.loads(output[start:])


def env_options(env: dict[str, str]) -> list[str]:
    keys = (
        "SIDEHAND_SESSIONS_DIR",
        "SIDEHAND_MCP_ROOTS",
        "SIDEHAND_CONFIG",
        "PYTHONPATH",
    )
    return [option for key in keys for option in ("-e", f"{key}={env[key]}")]


def test_inspector_over_stdio(inspector: Path, tmp_path: Path, workspace: Path, script: ScriptWriter) -> None:
    path = script([])
    env = server_env(tmp_path, workspace)
    target = [*sidehand_mcp(path), *env_options(env)]
    code, listed = run_inspector(inspector, tmp_path, target, "--method", "tools/list")
    assert code == 0 and {t["name"] for t in listed["tools"]} == TOOLS
    get_task = next(t for t in listed["tools"] if t["name"] == "get_task")
    assert get_task["outputSchema"]["type"] == "object"

    code, opened = run_inspector(
        inspector, tmp_path, target, "--method", "tools/call", "--tool-name", "sandbox_open"
    )
    assert code == 0 and opened["structuredContent"]["workspace"] == str(workspace)

    code, bad = run_inspector(
        inspector,
        tmp_path,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "get_task",
        "--tool-arg",
        "task_id=nope",
    )
    assert bad["isError"] is True and "unknown task 'nope'" in bad["content"][0]["text"]


async def test_inspector_over_http(
    inspector: Path, tmp_path: Path, workspace: Path, script: ScriptWriter
) -> None:
    path = script([create_file("/workspace/out.txt", "out\n"), say("Done.")])
    async with http_server(tmp_path, path, server_env(tmp_path, workspace)) as (url, token):
        auth = ["--header", f"Authorization: Bearer {token}"]
        code, listed = run_inspector(inspector, tmp_path, [url], *auth, "--method", "tools/list")
        assert code == 0 and {t["name"] for t in listed["tools"]} == TOOLS

        code, ran = run_inspector(
            inspector, tmp_path, [url], *auth, "--method", "tools/call", "--tool-name", "run_task",
            "--tool-arg", "task=write out.txt", "approval=never",
        )  # fmt: skip
        assert code == 0 and ran["structuredContent"]["info"]["message"] == "Done."
        assert ran["structuredContent"]["changes"]["files"][0]["path"] == "out.txt"

        code, refused = run_inspector(
            inspector, tmp_path, [url], "--header", "Authorization: Bearer wrong", "--method", "tools/list"
        )
        assert code != 0 and "auth" in json.dumps(refused).lower()

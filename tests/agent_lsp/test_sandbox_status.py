"""The real `sidehand lsp` tells the client, once initialized and before any session, whether the
Docker engine answers (`sidehand/sandbox/status`), and checks again when asked
(`sidehand/sandbox/check`): the panel's problem and its Retry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_lsp.conftest import TIMEOUT, Editor, start_editor, stop

# The check runs once the warm-up thread has imported the sandbox and litellm (seconds here).
STARTUP = 60.0
API_KEY = "sk-engine-test-secret-4242"


@contextlib.asynccontextmanager
async def real_server(tmp_path: Path, docker_host: str | None) -> AsyncIterator[Editor]:
    """`sidehand lsp` with no model (the check needs none) and no ready sandboxes to make."""
    env = {"SIDEHAND_SANDBOX_POOL": "0"}
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    editor, client = await start_editor(
        tmp_path,
        options={"sidehand": {"protocolVersion": 1}, "apiKey": API_KEY},
        extra_env=env,
        fakes=False,
    )
    try:
        yield editor
    finally:
        await asyncio.wait_for(client.shutdown_session(), TIMEOUT)
        await stop(client)


async def first_status(editor: Editor) -> dict[str, Any]:
    await editor.wait_for(lambda: bool(editor.sandbox_statuses), "sidehand/sandbox/status", timeout=STARTUP)
    return editor.sandbox_statuses[0]


async def test_an_unreachable_engine_is_reported_without_a_prompt(tmp_path: Path) -> None:
    # The socket's folder is named like the API key: the key never reaches the client.
    socket = f"/tmp/{API_KEY}/docker.sock"
    async with real_server(tmp_path, f"unix://{socket}") as editor:
        status = await first_status(editor)
        assert status["state"] == "unavailable"
        message = status["message"]
        assert "no Docker engine is reachable" in message
        assert "/tmp/[redacted]/docker.sock" in message and API_KEY not in message
        assert "DOCKER_HOST" in message  # what to do
        # Retry: still unreachable, answered and sent again.
        again = await editor.request("sidehand/sandbox/check", {})
        assert again == status
        await editor.wait_for(lambda: len(editor.sandbox_statuses) == 2, "the second status")
        assert editor.sandbox_statuses[1] == status


@pytest.mark.docker
async def test_a_reachable_engine_reports_ready(tmp_path: Path) -> None:
    async with real_server(tmp_path, None) as editor:
        assert await first_status(editor) == {"state": "ready", "message": None}


@pytest.mark.docker
async def test_an_engine_that_appears_clears_the_problem_on_retry(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"  # nothing there yet
    async with real_server(tmp_path, f"unix://{socket}") as editor:
        status = await first_status(editor)
        assert status["state"] == "unavailable" and str(socket) in status["message"]
        socket.symlink_to("/var/run/docker.sock")  # the engine is started
        assert await editor.request("sidehand/sandbox/check", {}) == {"state": "ready", "message": None}
        await editor.wait_for(lambda: len(editor.sandbox_statuses) == 2, "the second status")
        assert editor.sandbox_statuses[1]["state"] == "ready"

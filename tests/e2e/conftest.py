"""End-to-end fixtures: the real Docker sandbox and the scripted model server reached through
litellm, exactly as a user's provider would be."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from core.config import Settings
from core.events import Event, ToolResultEvent
from core.sessions import SessionManager
from core.store import SessionStore
from core.testing.scripted_server import Script, ScriptedLLMServer
from sidehand.wiring import build_manager

pytestmark = pytest.mark.docker

CLI = [sys.executable, "-m", "sidehand"]


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(Script()) as srv:
        yield srv


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def settings_for(server: ScriptedLLMServer, tmp_path: Path, **extra: object) -> Settings:
    return Settings.model_validate(
        {
            "model": "openai/scripted",
            "api_base": server.base_url,
            "api_key": "sk-test-not-a-real-key",
            "sessions_dir": tmp_path / "sessions",
            "llm_retries": 0,
            "user_skills_dir": tmp_path / "no-user-skills",
            "mcp_config": tmp_path / "no-mcp.json",
            **extra,
        }
    )


@pytest.fixture
async def manager(server: ScriptedLLMServer, tmp_path: Path) -> AsyncIterator[SessionManager]:
    m = build_manager(settings_for(server, tmp_path, command_timeout=20))
    yield m
    await m.aclose()


def cli_env(server: ScriptedLLMServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(
        SIDEHAND_MODEL="openai/scripted",
        SIDEHAND_API_BASE=server.base_url,
        SIDEHAND_API_KEY="sk-test-not-a-real-key",
        SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"),
        SIDEHAND_CONFIG=str(tmp_path / "no-config.toml"),
        SIDEHAND_USER_SKILLS_DIR=str(tmp_path / "no-user-skills"),
        SIDEHAND_MCP_CONFIG=str(tmp_path / "no-mcp.json"),
    )
    env.update(extra)
    return env


def sidehand(
    args: list[str], env: dict[str, str], *, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the `sidehand` command as a user would, capturing its output."""
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=check
    )


def results(events: Sequence[Event]) -> list[ToolResultEvent]:
    return [e for e in events if isinstance(e, ToolResultEvent)]


def only_session(tmp_path: Path) -> tuple[SessionStore, str]:
    """The store the CLI wrote to and the one session in it."""
    store = SessionStore(tmp_path / "sessions")
    (meta,) = store.list_meta()
    return store, meta["id"]

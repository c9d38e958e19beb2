"""Fixtures: the scripted model server, clients on either route, and `make_agent` (a session manager
on the in-memory sandbox whose model is the scripted server through litellm)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.llm import LiteLLMClient, RouteName
from core.protocols import ExternalToolsFactory
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_server import Script, ScriptedLLMServer, Turn

TEST_KEY = "sk-test-secret-key-1234"

ClientFactory = Callable[..., LiteLLMClient]


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as srv:
        yield srv


@pytest.fixture(params=["openai_compatible", "litellm"])
def route(request: pytest.FixtureRequest) -> RouteName:
    """Both routes: the one Sidehand chooses for OpenAI-compatible servers, and litellm's default
    (`litellm.completion` on `openai/…`), which the first must match."""
    value: RouteName = request.param
    return value


@pytest.fixture
async def make_client(server: ScriptedLLMServer, route: RouteName) -> AsyncIterator[ClientFactory]:
    """Clients for `server` on `route` (fast retries), closed after the test."""
    clients: list[LiteLLMClient] = []

    def make(model: str = "openai/scripted", **options: Any) -> LiteLLMClient:
        options.setdefault("api_base", server.base_url)
        options.setdefault("api_key", TEST_KEY)
        options.setdefault("retry_delay", 0.001)
        options.setdefault("timeout", 30.0)
        client = LiteLLMClient(model, route=route, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@dataclass
class Agent:
    """A session manager whose model is the scripted server reached through litellm and whose
    sandbox is in memory: what the model received is in `server.requests`."""

    manager: SessionManager
    server: ScriptedLLMServer
    box: InMemorySandbox

    def bodies(self) -> list[dict[str, Any]]:
        """The chat requests the model server received, in order."""
        return [r.body for r in self.server.requests if r.body is not None and "messages" in r.body]

    def prompt_text(self, index: int) -> str:
        """All the text of one request's messages."""
        return "\n".join(str(m.get("content") or "") for m in self.bodies()[index]["messages"])

    def system(self, index: int) -> str:
        message = self.bodies()[index]["messages"][0]
        assert message["role"] == "system"
        return str(message["content"])


def make_agent(
    tmp_path: Path,
    server: ScriptedLLMServer,
    turns: Sequence[Turn],
    box: InMemorySandbox | None = None,
    external_tools: ExternalToolsFactory | None = None,
    **settings: object,
) -> Agent:
    server.set_script(Script(turns=tuple(turns)))
    sandbox = box or InMemorySandbox()

    async def sandbox_factory(workspace: Path, session_id: str) -> InMemorySandbox:
        return sandbox

    values: dict[str, object] = {
        "model": "openai/scripted",
        "api_base": server.base_url,
        "api_key": TEST_KEY,
        "llm_retries": 0,
        "sessions_dir": tmp_path / "sessions",
        "user_skills_dir": None,
        "mcp_config": None,
        **settings,
    }
    manager = SessionManager(
        Settings.model_validate(values), FakeSandboxFactory(sandbox_factory), external_tools=external_tools
    )
    return Agent(manager, server, sandbox)

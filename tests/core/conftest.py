"""Fixtures for the LLM client tests: the scripted server, and clients on either route."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from core.llm import LiteLLMClient, RouteName
from core.testing.scripted_server import ScriptedLLMServer

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

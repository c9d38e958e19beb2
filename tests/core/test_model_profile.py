"""Per-model settings (tool-call mode, context size, prices, sampling) from the config file's
`[models."NAME"]` tables and SIDEHAND_* variables, and what the model client does with them,
against the scripted server through litellm (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.condenser import StrategyCondenser, prompt_budget
from core.config import ModelProfile, Settings, load_settings
from core.errors import ConfigError, LLMToolsUnsupportedError
from core.llm import LiteLLMClient
from core.messages import ChatMessage, ToolSpec
from core.next_prompt import PromptBuilder
from core.sessions import default_llm_factory
from core.state import State
from core.testing.scripted_server import Script, ScriptedError, ScriptedLLMServer, Turn

CONFIG = """
model = "openai/qwen"
api_base = "http://127.0.0.1:9/v1"

[models."openai/qwen"]
tool_calls = "text"
context_window = 8192
temperature = 0.2
seed = 42
input_price = 0.5
output_price = 1.5

[models."openai/other"]
temperature = 0.9
"""


def test_a_models_table_gives_the_models_profile(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    settings = load_settings(config_file=config, environ={})
    assert settings.profile() == ModelProfile(
        tool_calls="text", context_window=8192, temperature=0.2, seed=42, input_price=0.5, output_price=1.5
    )
    # the top level (file, SIDEHAND_* variables, options) wins over the table, for whatever model
    env = {"SIDEHAND_TEMPERATURE": "0", "SIDEHAND_TOOL_CALLS": "native", "SIDEHAND_TOP_P": "0.9"}
    profile = load_settings(config_file=config, environ=env).profile()
    assert (profile.temperature, profile.tool_calls, profile.top_p, profile.seed) == (0.0, "native", 0.9, 42)
    other = load_settings({"model": "openai/other"}, config_file=config, environ={}).profile()
    assert other == ModelProfile(temperature=0.9)
    assert Settings().profile() == ModelProfile()


def test_a_bad_profile_value_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "m"\n[models.m]\ntool_calls = "xml"\n')
    with pytest.raises(ConfigError, match=r"models\.m\.tool_calls"):
        load_settings(config_file=config, environ={})
    config.write_text('model = "m"\n[models.m]\ntemprature = 0.1\n')
    with pytest.raises(ConfigError, match=r"models\.m\.temprature: Extra inputs are not permitted"):
        load_settings(config_file=config, environ={})
    with pytest.raises(ConfigError, match="context_window"):
        load_settings({"context_window": 10}, environ={})


def test_the_profiles_context_window_bounds_the_prompt() -> None:
    profiled = Settings(model="openai/qwen", models={"openai/qwen": ModelProfile(context_window=8192)})
    state = State(context_window=128_000)  # litellm's figure for another model: the profile wins
    builder = PromptBuilder(profiled, state, lambda e: e, StrategyCondenser(), {})
    assert builder.budget == prompt_budget(32_000, 8192) < 8192
    assert PromptBuilder(Settings(), state, lambda e: e, StrategyCondenser(), {}).budget == 32_000


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(Script(turns=(Turn.say("hi"), Turn.say("again")))) as srv:
        yield srv


async def test_sampling_settings_and_prices_reach_the_request(
    server: ScriptedLLMServer, tmp_path: Path
) -> None:
    settings = Settings(
        model="openai/qwen",
        api_base=server.base_url,
        api_key="sk-none",
        models={
            "openai/qwen": ModelProfile(
                temperature=0.0, top_p=0.5, seed=7, max_output_tokens=512, input_price=2.0, output_price=4.0
            )
        },
    )
    llm = default_llm_factory(settings)
    try:
        answer = await llm.complete([ChatMessage(role="user", content="go")], [])
    finally:
        await llm.aclose()
    body = server.requests[-1].body or {}
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (0.0, 0.5, 7, 512)
    usage = answer.usage
    assert usage.cost == pytest.approx((usage.prompt_tokens * 2.0 + usage.completion_tokens * 4.0) / 1e6)
    # nothing set: nothing sent (the server's defaults apply)
    plain = default_llm_factory(Settings(model="openai/qwen", api_base=server.base_url, api_key="x"))
    try:
        await plain.complete([ChatMessage(role="user", content="go")], [])
    finally:
        await plain.aclose()
    assert not {"temperature", "top_p", "seed", "max_tokens"} & set(server.requests[-1].body or {})


async def test_a_server_that_takes_no_tools_is_told_apart_at_once() -> None:
    refusal = ScriptedError(status=500, body={"error": {"message": "tools param requires --jinja flag"}})
    with ScriptedLLMServer(Script(turns=(Turn.say("fine"),), refuse_tools=refusal)) as server:
        client = LiteLLMClient("openai/qwen", api_base=server.base_url, api_key="x", retry_delay=0.001)
        try:
            with pytest.raises(LLMToolsUnsupportedError, match="--jinja") as raised:
                await client.complete(
                    [ChatMessage(role="user", content="go")], [ToolSpec(name="bash", description="d")]
                )
            assert "tool_calls" in str(raised.value)  # the advice names the setting
            assert len(server.requests) == 1  # not retried: the next request would carry tools too
            answer = await client.complete([ChatMessage(role="user", content="go")], [])
            assert answer.text == "fine"
        finally:
            await client.aclose()


async def test_litellm_model_information_says_which_models_take_tools() -> None:
    known = LiteLLMClient("openai/gpt-4o", api_key="x")
    unknown = LiteLLMClient(
        "openai/qwen2.5-coder-1.5b-instruct", api_base="http://127.0.0.1:9/v1", api_key="x"
    )
    try:
        assert await known.supports_tools() is True
        assert await unknown.supports_tools() is None
    finally:
        await known.aclose()
        await unknown.aclose()

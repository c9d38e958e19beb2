"""The scripted OpenAI-compatible server, checked with plain httpx and the official openai SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from core.testing.scripted_server import (
    SCRIPT_FINISHED,
    Script,
    ScriptedLLMServer,
    ScriptedToolCall,
    ScriptSet,
    Turn,
)

CHAT: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def sdk(server: ScriptedLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def chat(http: httpx.Client, server: ScriptedLLMServer, model: str = "any", **body: Any) -> dict[str, Any]:
    response = http.post(f"{server.base_url}/chat/completions", json={"model": model, **CHAT, **body})
    reply: dict[str, Any] = response.json()
    return reply


def text_of(reply: dict[str, Any]) -> str | None:
    content: str | None = reply["choices"][0]["message"]["content"]
    return content


def test_scripts_per_model_each_with_its_own_cursor(server: ScriptedLLMServer, http: httpx.Client) -> None:
    server.set_script(Script(turns=(Turn.say("a1"), Turn.say("a2"))), model="alpha")
    server.set_script(Script(turns=(Turn.say("b1"),)), model="beta")
    server.set_script(Script(turns=(Turn.say("default"),)))
    assert text_of(chat(http, server, "alpha")) == "a1"
    assert text_of(chat(http, server, "beta")) == "b1"
    assert text_of(chat(http, server, "unknown")) == "default"
    assert text_of(chat(http, server, "alpha")) == "a2"
    assert text_of(chat(http, server, "beta")) == SCRIPT_FINISHED


def test_exhausted_script_says_finished_without_tool_calls(
    server: ScriptedLLMServer, http: httpx.Client
) -> None:
    server.set_script(Script(turns=(Turn.call("bash", {"command": "ls"}),)))
    assert chat(http, server)["choices"][0]["finish_reason"] == "tool_calls"
    for _ in range(2):
        reply = chat(http, server)
        assert reply["choices"][0]["message"] == {"role": "assistant", "content": SCRIPT_FINISHED}
        assert reply["choices"][0]["finish_reason"] == "stop"


def test_repeat_plays_the_turns_again(server: ScriptedLLMServer, http: httpx.Client) -> None:
    server.set_script(Script(turns=(Turn.say("one"), Turn.say("two")), repeat=True))
    assert [text_of(chat(http, server)) for _ in range(5)] == ["one", "two", "one", "two", "one"]


def test_requests_are_recorded_and_usage_is_in_every_reply(
    server: ScriptedLLMServer, http: httpx.Client
) -> None:
    server.set_script(Script(turns=(Turn.say("x" * 40),)))
    reply = chat(http, server, "m", temperature=0.5)
    request = server.requests[-1]
    assert request.method == "POST"
    assert request.body == {"model": "m", **CHAT, "temperature": 0.5}
    size = int(request.headers["Content-Length"])
    assert reply["usage"] == {
        "prompt_tokens": size // 4,
        "completion_tokens": 10,
        "total_tokens": size // 4 + 10,
    }


def test_one_connection_serves_many_requests(server: ScriptedLLMServer, http: httpx.Client) -> None:
    for _ in range(5):
        chat(http, server)
    assert server.connections_accepted == 1
    with httpx.Client() as other:
        chat(other, server)
    assert server.connections_accepted == 2


def test_hold_keeps_the_reply_until_released(server: ScriptedLLMServer, http: httpx.Client) -> None:
    server.set_script(Script(turns=(Turn.say("held", hold=True),)))
    replies: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: replies.append(chat(http, server)))
    caller.start()
    server.wait_until(lambda: server.held == 1)
    with httpx.Client() as other:  # the server still answers others meanwhile
        assert text_of(chat(other, server)) == SCRIPT_FINISHED
    assert replies == []
    server.release()
    caller.join(10)
    assert [text_of(r) for r in replies] == ["held"]
    assert server.held == 0


def test_stop_lets_held_replies_go(http: httpx.Client) -> None:
    server = ScriptedLLMServer(Script(turns=(Turn.say("never", hold=True),)))
    server.start()
    errors: list[Exception] = []

    def call() -> None:
        try:
            chat(http, server)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    server.wait_until(lambda: server.held == 1)
    server.stop()
    caller.join(10)
    assert not caller.is_alive()
    assert server.open_connections == 0
    server.stop()  # twice is fine


def test_error_turns(server: ScriptedLLMServer, sdk: openai.OpenAI, http: httpx.Client) -> None:
    server.set_script(
        Script(
            turns=(Turn.fail(500), Turn.fail(429, "slow down"), Turn.fail(400, {"error": {"message": "bad"}}))
        )
    )
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    response = http.post(f"{server.base_url}/chat/completions", json={"model": "m", **CHAT})
    assert (response.status_code, response.text) == (429, "slow down")
    with pytest.raises(openai.BadRequestError, match="bad"):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_the_openai_sdk_reads_plain_replies(server: ScriptedLLMServer, sdk: openai.OpenAI) -> None:
    server.set_script(
        Script(
            turns=(
                Turn(
                    text="calling",
                    tool_calls=(
                        ScriptedToolCall(name="bash", arguments={"command": "ls"}, id="call_1"),
                        ScriptedToolCall(name="bash", arguments='{"command": "ls'),
                    ),
                ),
            )
        )
    )
    completion = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    message = completion.choices[0].message
    assert message.content == "calling"
    assert message.tool_calls is not None
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls]  # type: ignore[union-attr]
    assert calls[0] == ("call_1", "bash", '{"command": "ls"}')
    assert calls[1][1:] == ("bash", '{"command": "ls')  # malformed arguments are sent verbatim
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


def test_the_openai_sdk_reads_streamed_replies(server: ScriptedLLMServer, sdk: openai.OpenAI) -> None:
    server.set_script(
        Script(
            turns=(
                Turn(
                    text="abcdefghij", chunks=5, tool_calls=(ScriptedToolCall(name="f", arguments={"a": 1}),)
                ),
            )
        )
    )
    stream = sdk.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text: list[str] = []
    arguments: list[str] = []
    names: list[str] = []
    finish: list[str] = []
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            for call in choice.delta.tool_calls or []:
                assert call.index == 0
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments.append(call.function.arguments)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert text == ["ab", "cd", "ef", "gh", "ij"]
    assert names == ["f"]
    assert json.loads("".join(arguments)) == {"a": 1}
    assert finish == ["tool_calls"]
    assert usage is not None
    assert usage.completion_tokens > 0


def test_stream_without_usage_and_default_chunks(server: ScriptedLLMServer, http: httpx.Client) -> None:
    server.set_script(Script(turns=(Turn.say("one two  three"),)))
    body = {"model": "m", **CHAT, "stream": True}
    with http.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    pieces = [e["choices"][0]["delta"].get("content") for e in events if e["choices"]]
    assert pieces == ["", "one", " two", "  three", None]  # one piece per word, then the finish
    assert all("usage" not in e for e in events)


def test_models_listing_and_unknown_paths(server: ScriptedLLMServer, http: httpx.Client) -> None:
    server.set_script(Script(), model="alpha")
    for path in ("/v1/models", "/models"):
        url = server.base_url.removesuffix("/v1") + path
        assert [m["id"] for m in http.get(url).json()["data"]] == ["alpha"]
    assert http.post(server.base_url + "/embeddings", json={}).status_code == 404
    assert http.post(
        server.base_url.removesuffix("/v1") + "/chat/completions", json={"model": "m", **CHAT}
    ).is_success


def test_scripts_load_from_json(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps([{"text": "hi"}, {"tool_calls": [{"name": "bash", "arguments": "{bad"}]}]))
    loaded = ScriptSet.from_file(path)
    assert loaded.default.turns[1].tool_calls[0].arguments_text() == "{bad"
    path.write_text(json.dumps({"turns": [{"error": {"status": 503}}], "repeat": True}))
    assert ScriptSet.from_file(path).default.repeat
    path.write_text(json.dumps({"models": {"a": [{"text": "x", "delay": 0.1}]}, "default": [{"text": "d"}]}))
    both = ScriptSet.from_file(path)
    assert (both.models["a"].turns[0].delay, both.default.turns[0].text) == (0.1, "d")
    with pytest.raises(ValidationError):
        Turn.model_validate({"text": "both", "error": {"status": 500}})
    with pytest.raises(ValidationError):
        Turn.model_validate({"unknown": 1})


def test_command_line_prints_the_base_url(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from the command line"}]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.testing.scripted_server", str(script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        with httpx.Client(timeout=10) as http:
            reply = http.post(f"{base_url}/chat/completions", json={"model": "m", **CHAT}).json()
        assert text_of(reply) == "from the command line"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

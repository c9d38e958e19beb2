"""The LLM client over HTTP against the scripted server, on both routes: Sidehand's route for
OpenAI-compatible servers must give the same replies and errors as litellm's default route."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from core.errors import (
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
)
from core.llm import LiteLLMClient, RouteName, choose_route, load_litellm
from core.llm.client import _TextRelay
from core.llm.wire import MessageEncoder, encode_body, encode_json
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec
from core.testing.scripted_server import Script, ScriptedLLMServer, ScriptedToolCall, Turn
from tests.core.conftest import TEST_KEY, ClientFactory

# litellm's streaming code uses pydantic APIs deprecated in pydantic 2.11 (DeprecationWarnings,
# which Python does not show outside tests); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm")

MESSAGES = [
    ChatMessage(role="system", content="You are a coding agent."),
    ChatMessage(role="user", content="List the files."),
    ChatMessage(
        role="assistant", tool_calls=(ToolCall(id="call_a", name="bash", arguments='{"command": "ls"}'),)
    ),
    ChatMessage(role="tool", tool_call_id="call_a", content="README.md\nsetup.py"),
]
TOOLS = [
    ToolSpec(
        name="bash",
        description="Run a shell command.",
        parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    )
]

REPLIES = Script(
    turns=(
        Turn.say("Hello from the model."),
        Turn.call("bash", {"command": "ls -la"}),
        Turn.call("bash", '{"command": "ls'),  # malformed JSON arguments
        Turn(
            text="Two at once.",
            tool_calls=(
                ScriptedToolCall(name="bash", arguments={"command": "pwd"}, id="call_x"),
                ScriptedToolCall(name="finish", arguments={}, id="call_y"),
            ),
        ),
    )
)


async def run_script(client: LiteLLMClient, turns: int, stream: bool = False) -> list[LLMReply]:
    pieces: list[str] = []
    return [
        await client.complete(MESSAGES, TOOLS, on_text=pieces.append if stream else None)
        for _ in range(turns)
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- replies -----------------------------------------------------------------------------------------


async def test_replies_parse_into_our_types(server: ScriptedLLMServer, make_client: ClientFactory) -> None:
    server.set_script(REPLIES)
    text, call, malformed, both = await run_script(make_client(), 4)

    assert text.text == "Hello from the model."
    assert text.tool_calls == ()
    assert text.finish_reason == "stop"
    assert text.model == "scripted"

    assert call.text is None
    assert [(c.name, c.arguments) for c in call.tool_calls] == [("bash", '{"command": "ls -la"}')]
    assert call.tool_calls[0].id
    assert call.finish_reason == "tool_calls"

    # Malformed arguments come through as the raw text: the controller reports them to the model.
    assert [(c.name, c.arguments) for c in malformed.tool_calls] == [("bash", '{"command": "ls')]

    assert both.text == "Two at once."
    assert [(c.id, c.name, c.arguments) for c in both.tool_calls] == [
        ("call_x", "bash", '{"command": "pwd"}'),
        ("call_y", "finish", "{}"),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_routes_give_identical_replies(stream: bool) -> None:
    results: dict[RouteName, list[LLMReply]] = {}
    for route in ("openai_compatible", "litellm"):
        with ScriptedLLMServer(REPLIES) as srv:
            client = LiteLLMClient("openai/scripted", api_base=srv.base_url, api_key=TEST_KEY, route=route)
            try:
                results[route] = await run_script(client, 5, stream)
            finally:
                await client.aclose()
    assert results["openai_compatible"] == results["litellm"]
    assert results["litellm"][-1].text == "Script finished."


async def test_routes_give_identical_errors() -> None:
    context_error = {"error": {"message": "This model's maximum context length is 4096 tokens."}}
    failures = Script(
        turns=(
            Turn.fail(500),
            Turn.fail(401),
            Turn.fail(429),
            Turn.fail(400, context_error),
            Turn.fail(404),
            Turn.say("too late", hold=True),
        )
    )
    results: dict[RouteName, list[tuple[type[LLMError], str]]] = {}
    for route in ("openai_compatible", "litellm"):
        with ScriptedLLMServer(failures) as srv:
            client = LiteLLMClient(
                "openai/scripted",
                api_base=srv.base_url,
                api_key=TEST_KEY,
                route=route,
                max_retries=0,
                timeout=0.5,
            )
            results[route] = []
            try:
                for _ in failures.turns:
                    with pytest.raises(LLMError) as caught:
                        await client.complete(MESSAGES, TOOLS)
                    results[route].append(
                        (type(caught.value), str(caught.value).replace(srv.base_url, "URL"))
                    )
            finally:
                await client.aclose()
    assert results["openai_compatible"] == results["litellm"]
    assert [kind for kind, _ in results["litellm"]] == [
        LLMServerError,
        LLMAuthError,
        LLMRateLimitError,
        LLMContextWindowError,
        LLMBadRequestError,
        LLMTimeoutError,
    ]


async def test_usage_is_the_servers_and_unknown_models_cost_nothing(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(Script(turns=(Turn.say("12345678"),)))
    reply = await make_client().complete(MESSAGES, TOOLS)
    body_size = int(server.requests[-1].headers["Content-Length"])
    assert reply.usage.prompt_tokens == body_size // 4  # what the scripted server counts
    assert reply.usage.completion_tokens == 2
    assert reply.usage.cost == 0.0


async def test_cost_comes_from_litellms_price_map(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(Script(turns=(Turn.say("a priced answer"),)))
    reply = await make_client("openai/gpt-4o").complete(MESSAGES, TOOLS)
    prompt_cost, completion_cost = load_litellm().module.cost_per_token(
        model="openai/gpt-4o",
        prompt_tokens=reply.usage.prompt_tokens,
        completion_tokens=reply.usage.completion_tokens,
    )
    assert reply.usage.cost == pytest.approx(prompt_cost + completion_cost)
    assert reply.usage.cost > 0


async def test_request_carries_model_messages_tools_and_params(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    client = make_client(temperature=0.25, extra={"max_tokens": 300})
    await client.complete(MESSAGES, TOOLS)
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert request.body is not None
    assert request.body["model"] == "scripted"
    # As litellm sends them: no `"content": null` beside tool calls.
    assert request.body["messages"] == [m.to_openai() for m in MESSAGES]
    with_calls = [m for m in request.body["messages"] if m.get("tool_calls")]
    assert with_calls
    assert all("content" not in m for m in with_calls)
    assert request.body["tools"] == [t.to_openai() for t in TOOLS]
    assert request.body["temperature"] == 0.25
    assert request.body["max_tokens"] == 300
    assert not request.body.get("stream")


async def test_each_message_is_encoded_once_and_a_changed_one_anew(server: ScriptedLLMServer) -> None:
    encoder = MessageEncoder()
    history = list(MESSAGES)
    first = encoder.encode(history)
    assert [json.loads(b) for b in first] == [m.to_openai() for m in history]
    edited = history[1].model_copy(update={"content": "List the files, please."})
    second = encoder.encode([history[0], edited, *history[2:], ChatMessage(role="user", content="More.")])
    assert second[0] is first[0] and second[2] is first[2] and second[3] is first[3]  # reused
    assert json.loads(second[1])["content"] == "List the files, please."
    assert json.loads(second[4]) == {"role": "user", "content": "More."}
    client = LiteLLMClient("openai/scripted", api_base=server.base_url, api_key=TEST_KEY)
    await client.complete([history[0], edited], TOOLS)  # the wire form is what the server gets
    assert server.requests[-1].body is not None
    assert server.requests[-1].body["messages"] == [history[0].to_openai(), edited.to_openai()]
    await client.aclose()


def test_encode_body_is_the_json_of_params_and_messages() -> None:
    messages = [encode_json(m.to_openai()) for m in MESSAGES]
    assert json.loads(encode_body({}, messages)) == {"messages": [m.to_openai() for m in MESSAGES]}
    body = json.loads(encode_body({"model": "m", "stream": True}, []))
    assert body == {"messages": [], "model": "m", "stream": True}


async def test_extra_parameters_and_provider_tool_schemas(server: ScriptedLLMServer) -> None:
    strict = ToolSpec(
        name="edit",
        description="Edit a file.",
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "additionalProperties": False,
        },
    )
    before = strict.model_dump()
    client = LiteLLMClient("hosted_vllm/scripted", api_base=server.base_url, extra={"top_k": 20})
    try:
        await client.complete(MESSAGES, [strict])
        await client.complete(MESSAGES, [strict])
    finally:
        await client.aclose()
    body = server.requests[-1].body
    assert body is not None
    assert body["top_k"] == 20  # not an OpenAI parameter: sent to the server as is
    # litellm's vLLM config drops `additionalProperties: false`; our ToolSpec stays as it was.
    assert "additionalProperties" not in body["tools"][0]["function"]["parameters"]
    assert strict.model_dump() == before


async def test_key_from_the_environment_when_none_is_given(
    server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    client = LiteLLMClient("openai/scripted", api_base=server.base_url)
    try:
        await client.complete(MESSAGES, TOOLS)
    finally:
        await client.aclose()
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-from-env"


# -- streaming ---------------------------------------------------------------------------------------


async def test_streamed_text_reaches_on_text_in_order(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    server.set_script(Script(turns=(Turn.say(text, chunks=40),)))
    pieces: list[str] = []
    reply = await make_client().complete(MESSAGES, TOOLS, on_text=pieces.append)
    assert 1 <= len(pieces) <= 40  # chunks that arrive while the loop is busy come joined
    assert "".join(pieces) == text
    assert reply.text == text
    assert reply.usage.completion_tokens > 0
    body = server.requests[-1].body
    assert body is not None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_streamed_tool_calls_are_assembled(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(REPLIES)
    plain = await run_script(make_client(), 4)
    server.set_script(REPLIES)
    streamed = await run_script(make_client(), 4, stream=True)

    # The same replies but for the ids the server makes up (they count its requests).
    def calls(reply: LLMReply) -> list[tuple[str, str]]:
        return [(c.name, c.arguments) for c in reply.tool_calls]

    assert [(r.text, calls(r), r.finish_reason) for r in streamed] == [
        (r.text, calls(r), r.finish_reason) for r in plain
    ]
    assert [c.id for c in streamed[3].tool_calls] == ["call_x", "call_y"]


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_server_error_is_retried_then_raised(
    server: ScriptedLLMServer, make_client: ClientFactory, stream: bool
) -> None:
    server.set_script(Script(turns=[Turn.fail(500)] * 4))
    pieces: list[str] = []
    with pytest.raises(LLMServerError) as caught:
        await make_client(max_retries=3).complete(MESSAGES, TOOLS, on_text=pieces.append if stream else None)
    assert len([r for r in server.requests if r.method == "POST"]) == 4
    message = str(caught.value)
    assert "openai/scripted" in message
    assert server.base_url in message
    assert "4 attempts" in message


async def test_a_retry_can_succeed(server: ScriptedLLMServer, make_client: ClientFactory) -> None:
    server.set_script(Script(turns=(Turn.fail(503), Turn.fail(429), Turn.say("made it"))))
    reply = await make_client(max_retries=3).complete(MESSAGES, TOOLS)
    assert reply.text == "made it"
    assert len(server.requests) == 3


async def test_auth_error_is_not_retried_and_hides_the_key(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {TEST_KEY}", "type": "invalid_request_error"}}
    server.set_script(Script(turns=(Turn.fail(401, body), Turn.say("not reached"))))
    with pytest.raises(LLMAuthError) as caught:
        await make_client(max_retries=3).complete(MESSAGES, TOOLS)
    assert len(server.requests) == 1
    assert TEST_KEY not in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)
    assert server.base_url in str(caught.value)


@pytest.mark.parametrize(
    ("turn", "error"),
    [
        (Turn.fail(429), LLMRateLimitError),
        (Turn.fail(400), LLMBadRequestError),
        (Turn.fail(404), LLMBadRequestError),
        (Turn.fail(403), LLMAuthError),
        (Turn.fail(502), LLMServerError),
        (
            Turn.fail(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 4096 tokens. However, "
                        "your messages resulted in 9000 tokens.",
                        "code": "context_length_exceeded",
                    }
                },
            ),
            LLMContextWindowError,
        ),
    ],
    ids=["429", "400", "404", "403", "502", "context-window"],
)
async def test_http_errors_map_to_our_types(
    server: ScriptedLLMServer, make_client: ClientFactory, turn: Turn, error: type[LLMError]
) -> None:
    server.set_script(Script(turns=(turn,)))
    with pytest.raises(LLMError) as caught:
        await make_client(max_retries=0).complete(MESSAGES, TOOLS)
    assert type(caught.value) is error


async def test_a_missing_key_for_a_hosted_provider_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # litellm fails before sending anything (the openai SDK wants a key), so this stays offline.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = LiteLLMClient("openai/gpt-4o", max_retries=3, retry_delay=0.001)
    try:
        with pytest.raises(LLMAuthError, match="no API key"):
            await client.complete(MESSAGES, TOOLS)
    finally:
        await client.aclose()


async def test_timeout(server: ScriptedLLMServer, make_client: ClientFactory) -> None:
    server.set_script(Script(turns=(Turn.say("too late", hold=True),)))
    with pytest.raises(LLMTimeoutError) as caught:
        await make_client(timeout=0.5, max_retries=0).complete(MESSAGES, TOOLS)
    assert "openai/scripted" in str(caught.value)


async def test_unreachable_server(make_client: ClientFactory) -> None:
    api_base = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(LLMConnectionError) as caught:
        await make_client(api_base=api_base, max_retries=1).complete(MESSAGES, TOOLS)
    assert api_base in str(caught.value)


# -- the event loop and connections ------------------------------------------------------------------


async def test_complete_does_not_block_the_event_loop(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(Script(turns=(Turn.say("released", hold=True),)))
    # If complete() blocked the loop, nothing below would run: release anyway after 20 s so the
    # test fails on its assertion instead of hanging.
    safety = threading.Timer(20.0, server.release)
    safety.start()
    try:
        call = asyncio.create_task(make_client().complete(MESSAGES, TOOLS))
        ticks = 0
        async with asyncio.timeout(10):
            while server.held == 0 or ticks < 5:
                await asyncio.sleep(0.01)
                ticks += 1
        assert not call.done()
        server.release()
        reply = await asyncio.wait_for(call, 10)
    finally:
        safety.cancel()
    assert reply.text == "released"


async def test_streamed_text_arrives_while_the_call_is_in_flight(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(Script(turns=(Turn.say("one two three four", chunk_delay=0.05),)))
    pieces: list[str] = []
    first = asyncio.Event()

    def on_text(piece: str) -> None:
        pieces.append(piece)
        first.set()

    call = asyncio.create_task(make_client().complete(MESSAGES, TOOLS, on_text=on_text))
    await asyncio.wait_for(first.wait(), 10)
    assert not call.done()
    reply = await asyncio.wait_for(call, 10)
    assert "".join(pieces) == reply.text == "one two three four"


async def test_pieces_streamed_while_the_loop_is_busy_arrive_as_one() -> None:
    pieces: list[str] = []
    relay = _TextRelay(asyncio.get_running_loop(), pieces.append)
    for piece in ("one ", "two ", "three"):  # arriving while the loop is busy (running this)
        relay(piece)
    await asyncio.sleep(0)
    assert pieces == ["one two three"]
    await asyncio.to_thread(relay, " four")  # from a worker thread: delivered before this resumes
    assert pieces == ["one two three", " four"]


async def test_cancelling_a_call_returns_at_once(
    server: ScriptedLLMServer, make_client: ClientFactory
) -> None:
    server.set_script(Script(turns=(Turn.say("never seen", hold=True),)))
    call = asyncio.create_task(make_client().complete(MESSAGES, TOOLS, on_text=lambda _: None))
    await asyncio.to_thread(server.wait_until, lambda: server.held == 1, 10.0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, 5)


async def test_one_connection_for_many_calls_closed_by_aclose(server: ScriptedLLMServer) -> None:
    client = LiteLLMClient("openai/scripted", api_base=server.base_url, api_key=TEST_KEY)
    assert client.route == "openai_compatible"
    for i in range(6):
        await client.complete(MESSAGES, TOOLS, on_text=(lambda _: None) if i % 2 else None)
    assert server.connections_accepted == 1
    assert server.open_connections == 1
    await client.aclose()
    await asyncio.to_thread(server.wait_until, lambda: server.open_connections == 0, 10.0)
    with pytest.raises(LLMError, match="closed"):
        await client.complete(MESSAGES, TOOLS)


async def test_concurrent_calls_on_one_client(server: ScriptedLLMServer, make_client: ClientFactory) -> None:
    client = make_client()
    replies = await asyncio.gather(*(client.complete(MESSAGES, TOOLS) for _ in range(4)))
    assert [r.text for r in replies] == ["Script finished."] * 4


# -- route choice and litellm loading ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "api_base", "expected"),
    [
        ("openai/qwen2.5-coder", "http://127.0.0.1:8080/v1", "openai_compatible"),
        ("hosted_vllm/meta-llama/Llama-3-8B", "http://gpu:8000/v1", "openai_compatible"),
        ("lm_studio/qwen", "http://localhost:1234/v1", "openai_compatible"),
        ("openai/gpt-4o", None, "litellm"),
        ("anthropic/claude-sonnet-4", None, "litellm"),
        ("ollama/llama3", "http://localhost:11434", "litellm"),
        ("gpt-4o", "http://127.0.0.1:8080/v1", "litellm"),
    ],
)
def test_choose_route(model: str, api_base: str | None, expected: RouteName) -> None:
    assert choose_route(model, api_base) == expected
    assert LiteLLMClient(model, api_base=api_base).route == expected

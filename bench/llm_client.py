"""LLM client benchmark: Sidehand's client time per call against a raw httpx POST of the identical
body to the same server, measured in the same run, for growing histories; and a streamed reply of
2,000 chunks read by our client against a raw httpx SSE read.

The server is the scripted OpenAI-compatible server (core/testing/scripted_server.py) in a separate
process, so its CPU does not compete with the client's for the GIL. Every route is timed in the
same rounds (interleaved), and the medians are compared. Run: python bench/llm_client.py [--all]
(--all adds the other routes considered: litellm's hosted_vllm/ route with a pooled client, and
litellm's provider-config transform with a pooled httpx client)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from core.llm import LiteLLMClient, load_litellm
from core.messages import ChatMessage, ToolCall, ToolSpec

HISTORIES = (1, 50, 200, 800)
STREAM_CHUNKS = 2000
BENCH_MODEL = "bench"  # the scripted server answers every call with a tool call
STREAM_MODEL = "bench-stream"  # ... and this model with a text of STREAM_CHUNKS chunks

TOOLS = [
    ToolSpec(
        name="bash",
        description="Run a command in the sandbox's persistent shell.",
        parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    ),
    ToolSpec(
        name="finish",
        description="End the task with a message to the user.",
        parameters={"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
    ),
]


def history(steps: int) -> list[ChatMessage]:
    """A prompt after `steps` agent steps: each one assistant tool call and one tool result (~200 B)."""
    out = [
        ChatMessage(role="system", content="You are Sidehand, a coding agent working in a sandbox. " * 4),
        ChatMessage(role="user", content="The test suite fails on the parser; find out why and fix it."),
    ]
    for i in range(steps):
        command = f"grep -rn 'def parse_{i}' src/ | head -20 && sed -n 1,40p src/parser/part_{i}.py"
        call = ToolCall(id=f"call_{i:06d}", name="bash", arguments=json.dumps({"command": command}))
        out.append(ChatMessage(role="assistant", tool_calls=(call,)))
        result = (
            f"src/parser/part_{i}.py:12:def parse_{i}(tokens, position):\n"
            + "    return tokens[position:]\n" * 4
        )
        out.append(ChatMessage(role="tool", tool_call_id=call.id, content=result))
    return out


def wire_body(model: str, messages: list[ChatMessage]) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [m.to_openai() for m in messages],
        "tools": [t.to_openai() for t in TOOLS],
    }


@contextmanager
def scripted_server() -> Iterator[str]:
    """The scripted server in a child process; yields its base URL."""
    scripts = {
        "models": {
            BENCH_MODEL: {
                # three commands in turn: the same one over and over would be stopped as stuck
                "turns": [
                    {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]}
                    for command in ("ls", "pwd", "echo step")
                ],
                "repeat": True,
            },
            STREAM_MODEL: {
                "turns": [{"text": "abcdefgh" * STREAM_CHUNKS, "chunks": STREAM_CHUNKS}],
                "repeat": True,
            },
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.json"
        path.write_text(json.dumps(scripts))
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.testing.scripted_server", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# -- one call per route (each returns a function making one call) ------------------------------------


def raw_httpx_call(client: httpx.Client, base_url: str, body: dict[str, Any]) -> Callable[[], object]:
    """The floor: serialize the body, POST it on a pooled client, parse the JSON answer."""
    url = base_url + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    return lambda: client.post(url, content=json.dumps(body).encode(), headers=headers).json()


def litellm_default_call(base_url: str, body: dict[str, Any]) -> Callable[[], object]:
    """litellm.completion on `openai/<name>`: the route through the openai SDK."""
    litellm = load_litellm().module
    kwargs = {
        "messages": body["messages"],
        "tools": body["tools"],
        "api_base": base_url,
        "api_key": "sk-bench",
    }
    return lambda: litellm.completion(model=f"openai/{body['model']}", max_retries=0, **kwargs)


def litellm_hosted_vllm_call(base_url: str, body: dict[str, Any]) -> Callable[[], object]:
    """litellm.completion on `hosted_vllm/<name>` with a pooled litellm HTTPHandler."""
    litellm = load_litellm().module
    from litellm.llms.custom_httpx.http_handler import HTTPHandler

    handler = HTTPHandler(timeout=60.0)
    kwargs = {"messages": body["messages"], "tools": body["tools"], "api_base": base_url, "client": handler}
    return lambda: litellm.completion(model=f"hosted_vllm/{body['model']}", max_retries=0, **kwargs)


def litellm_transform_call(client: httpx.Client, base_url: str, body: dict[str, Any]) -> Callable[[], object]:
    """litellm's provider config (transform_request / transform_response) over a pooled httpx client."""
    litellm = load_litellm().module
    from litellm.utils import ProviderConfigManager

    config: Any = ProviderConfigManager.get_provider_chat_config(
        model=body["model"], provider=litellm.LlmProviders.OPENAI
    )
    url = base_url + "/chat/completions"

    class _NoLogging:  # transform_response reports to a litellm Logging object; nobody listens here
        def post_call(self, *args: object, **kwargs: object) -> None:
            pass

    def call() -> object:
        request = config.transform_request(
            model=body["model"],
            messages=[dict(m) for m in body["messages"]],
            optional_params={"tools": body["tools"]},
            litellm_params={},
            headers={},
        )
        response = client.post(
            url, content=json.dumps(request).encode(), headers={"Content-Type": "application/json"}
        )
        return config.transform_response(
            model=body["model"],
            raw_response=response,
            model_response=litellm.ModelResponse(),
            logging_obj=_NoLogging(),
            request_data=request,
            messages=body["messages"],
            optional_params={},
            litellm_params={},
            encoding=None,
        )

    return call


# -- measurements ------------------------------------------------------------------------------------


def measure_history(base_url: str, steps: int, rounds: int, all_routes: bool = False) -> dict[str, float]:
    """Median ms per call for each route at this history size, the routes timed in the same rounds."""
    messages = history(steps)
    body = wire_body(BENCH_MODEL, messages)
    pool = httpx.Client()
    calls: dict[str, Callable[[], object]] = {
        "raw": raw_httpx_call(pool, base_url, body),
        "litellm_openai": litellm_default_call(base_url, body),
    }  # and "ours", timed right after "raw"
    if all_routes:
        calls["litellm_hosted_vllm"] = litellm_hosted_vllm_call(base_url, body)
        calls["litellm_transform"] = litellm_transform_call(pool, base_url, body)
    ours = LiteLLMClient(f"openai/{BENCH_MODEL}", api_base=base_url, api_key="sk-bench", max_retries=0)

    async def call_ours() -> None:
        # As in a session: the history sent before (its messages encoded then), plus the step's two
        # new messages (new objects, encoded on this call).
        await ours.complete([*messages[:-2], *(m.model_copy() for m in messages[-2:])], TOOLS)

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name in ["raw", "ours", *calls]}
        for i in range(rounds + 3):  # the first 3 rounds warm up connections and caches
            for name in times:
                # Each call starts with the garbage of the previous one collected: a route that
                # allocates a lot (litellm's) must not bill the next route for its collection.
                gc.collect()
                start = time.perf_counter()
                if name == "ours":
                    await call_ours()
                else:
                    calls[name]()
                if i >= 3:
                    times[name].append(time.perf_counter() - start)
        await ours.aclose()
        return times

    try:
        times = asyncio.run(run())
    finally:
        pool.close()
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def measure_stream(base_url: str, rounds: int) -> dict[str, float]:
    """Microseconds per chunk of a STREAM_CHUNKS-chunk reply: raw httpx SSE read vs our client."""
    messages = history(1)
    body = {**wire_body(STREAM_MODEL, messages), "stream": True, "stream_options": {"include_usage": True}}
    url = base_url + "/chat/completions"
    pool = httpx.Client()

    def raw() -> int:
        count = 0
        with pool.stream("POST", url, content=json.dumps(body).encode()) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and line != "data: [DONE]":
                    event = json.loads(line[5:])
                    if event["choices"] and event["choices"][0]["delta"].get("content"):
                        count += 1
        return count

    ours = LiteLLMClient(f"openai/{STREAM_MODEL}", api_base=base_url, api_key="sk-bench", max_retries=0)

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"raw": [], "ours": []}
        for i in range(rounds + 2):
            gc.collect()
            start = time.perf_counter()
            count = raw()
            elapsed = time.perf_counter() - start
            assert count == STREAM_CHUNKS, count
            if i >= 2:
                times["raw"].append(elapsed)
            chunks: list[str] = []
            gc.collect()
            start = time.perf_counter()
            await ours.complete(messages, TOOLS, on_text=chunks.append)
            elapsed = time.perf_counter() - start
            # Every chunk read; the ones that arrived while the loop was busy were delivered joined.
            assert "".join(chunks) == "abcdefgh" * STREAM_CHUNKS, len(chunks)
            if i >= 2:
                times["ours"].append(elapsed)
        await ours.aclose()
        return times

    try:
        times = asyncio.run(run())
    finally:
        pool.close()
    return {name: statistics.median(t) / STREAM_CHUNKS * 1e6 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--all", action="store_true", help="also time the other candidate routes")
    parser.add_argument("--rounds", type=int, default=30, help="calls per route and history size")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    start = time.perf_counter()
    load_litellm()
    print(f"import litellm: {time.perf_counter() - start:.1f} s")
    with scripted_server() as base_url:
        columns = [
            "raw",
            "litellm_openai",
            *(["litellm_hosted_vllm", "litellm_transform"] if args.all else []),
            "ours",
        ]
        print(f"\nmedian ms per call (server: scripted, {base_url})")
        print(f"{'history':>8} " + " ".join(f"{c:>20}" for c in columns) + f" {'ours/raw':>9}")
        for steps in HISTORIES:
            rounds = args.rounds if steps < 800 else max(5, args.rounds // 2)
            result = measure_history(base_url, steps, rounds, args.all)
            row = " ".join(f"{result[c]:20.2f}" for c in columns)
            print(f"{steps:>8} {row} {result['ours'] / result['raw']:9.2f}", flush=True)
        stream = measure_stream(base_url, rounds=max(5, args.rounds // 3))
        print(f"\nstreamed reply of {STREAM_CHUNKS} chunks, client time per chunk (µs)")
        print(f"{'raw httpx SSE':>16} {'ours':>10} {'ours/raw':>9}")
        print(f"{stream['raw']:16.1f} {stream['ours']:10.1f} {stream['ours'] / stream['raw']:9.2f}")


if __name__ == "__main__":
    main()

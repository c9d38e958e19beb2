"""Per-step cost as a session grows (issue 10). One scripted session of up to 800 steps, each step
one `bash` call in the real Docker sandbox, the model being the scripted server in another process
reached through Sidehand's LLM client. Printed per history size, all measured in this one run:

- harness time per step excluding the model request and the command (target <= 5 ms, flat);
- the LLM client's time per call against a raw httpx POST of the identical body (target <= 3x);
- whole-step wall time with the instant model, and the command's round trip;
- the event loop's worst stall and p99 lag while the session runs (target: no stall over 10 ms);
- a streamed reply of 2,000 chunks: client time per chunk against a raw SSE read.

Run: python bench/step_cost.py [--steps 800]"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.llm_client import BENCH_MODEL, STREAM_CHUNKS, measure_stream, raw_httpx_call, scripted_server
from core.config import Settings
from core.host_watch import HostWatch
from core.messages import ChatMessage, LLMReply, ToolSpec
from core.output import OutputFile
from core.protocols import LLM, CommandResult, Sandbox, TextSink, Wait
from core.sessions import SessionManager, default_llm_factory
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandboxFactory

SIZES = (1, 50, 200, 800)
WINDOW = 10


class TimedLLM:
    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.model = inner.model
        self.calls: list[tuple[float, float, list[ChatMessage], list[ToolSpec]]] = []

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        start = time.perf_counter()
        reply = await self.inner.complete(messages, tools, on_text=on_text)
        if tools:  # a step's call (the condenser's summary calls carry no tools)
            self.calls.append((start, time.perf_counter(), list(messages), list(tools)))
        return reply

    async def supports_tools(self) -> bool | None:
        return await self.inner.supports_tools()

    async def aclose(self) -> None:
        await self.inner.aclose()


class TimedSandbox:
    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.runs: list[float] = []

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        output_file: OutputFile | None = None,
        wait: Wait | None = None,
    ) -> CommandResult:
        start = time.perf_counter()
        result = await self.inner.run(command, timeout=timeout, output_file=output_file, wait=wait)
        self.runs.append(time.perf_counter() - start)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late a 1 ms sleep wakes up: the loop's stall at that moment."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        samples.append(time.perf_counter() - start - 0.001)


async def run_session(base_url: str, steps: int, root: Path) -> tuple[TimedLLM, TimedSandbox, list[float]]:
    settings = Settings.model_validate(
        {
            "model": f"openai/{BENCH_MODEL}",
            "api_base": base_url,
            "api_key": "sk-bench",
            "approval_mode": "never",
            "max_iterations": steps,
            "sessions_dir": root / "sessions",
        }
    )
    docker_factory = DockerSandboxFactory(SandboxSettings.from_settings(settings))
    boxes: list[TimedSandbox] = []

    class TimedFactory:
        async def __call__(self, workspace: Path, session_id: str) -> Sandbox:
            boxes.append(TimedSandbox(await docker_factory(workspace, session_id)))
            return boxes[-1]

        async def reap(self) -> int:
            return await docker_factory.reap()

        async def prewarm(self, workspace: Path, watch: HostWatch) -> None:
            await docker_factory.prewarm(workspace, watch)

        async def aclose(self) -> None:
            await docker_factory.aclose()

    llms: list[TimedLLM] = []

    def llm_factory(s: Settings) -> LLM:
        llms.append(TimedLLM(default_llm_factory(s)))
        return llms[-1]

    manager = SessionManager(settings, TimedFactory(), llm_factory)
    workspace = root / "ws"
    workspace.mkdir()
    (workspace / "README.md").write_text("bench\n")
    session = await manager.create(workspace)
    await session.sandbox()
    await session.controller.llm.complete(
        [ChatMessage(role="user", content="warm up")], []
    )  # imports litellm, opens the connection
    llms[0].calls.clear()
    lag: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_lag(lag, stop))
    end = await session.prompt("Run the benchmark step.")
    stop.set()
    await monitor
    assert end.stop_reason == "max_iterations", end
    await manager.aclose()
    return llms[0], boxes[0], lag


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800)
    args = parser.parse_args()
    sizes = [s for s in SIZES if s <= args.steps]
    with scripted_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        llm, box, lag = asyncio.run(run_session(base_url, args.steps, Path(tmp)))
        calls = llm.calls
        n = len(calls) - 1  # step i spans call i to call i+1
        step_wall = [calls[i + 1][0] - calls[i][0] for i in range(n)]
        llm_time = [calls[i][1] - calls[i][0] for i in range(n)]
        tool_time = box.runs[:n]
        harness = [w - m - t for w, m, t in zip(step_wall, llm_time, tool_time, strict=True)]
        pool = httpx.Client()
        print(f"steps: {len(calls)}; machine: see docs/benchmarks.md; model server: scripted ({base_url})")
        print(
            f"{'history':>8} {'prompt msgs':>11} {'harness ms':>10} {'command ms':>10} {'llm client ms':>13} "
            f"{'raw POST ms':>11} {'client/raw':>10} {'step wall ms':>12}"
        )
        first_harness = None
        for size in sizes:
            lo, hi = max(0, min(size, n) - WINDOW), min(n, max(size, WINDOW))
            _, _, messages, tools = calls[min(size, n) - 1]
            body = {
                "model": BENCH_MODEL,
                "messages": [m.to_openai() for m in messages],
                "tools": [t.to_openai() for t in tools],
            }
            post = raw_httpx_call(pool, base_url, body)
            raw = []
            for _ in range(WINDOW * 2):
                t = time.perf_counter()
                post()
                raw.append(time.perf_counter() - t)
            h = median_ms(harness[lo:hi])
            first_harness = first_harness or h
            client = median_ms(llm_time[lo:hi])
            print(
                f"{size:>8} {len(messages):>11} {h:>10.2f} {median_ms(tool_time[lo:hi]):>10.2f} {client:>13.2f} "
                f"{median_ms(raw):>11.2f} {client / median_ms(raw):>10.2f} {median_ms(step_wall[lo:hi]):>12.2f}"
            )
        last = median_ms(harness[max(0, n - WINDOW) : n])
        print(
            f"harness at the last steps / first steps: {last / (first_harness or last):.2f}x (target <= 1.5x)"
        )
        lag_sorted = sorted(lag)
        p99 = lag_sorted[int(len(lag_sorted) * 0.99)] if lag_sorted else 0.0
        print(
            f"event loop lag during the session: max {max(lag) * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms (target: max <= 10 ms)"
        )
        stream = measure_stream(base_url, rounds=5)
        print(
            f"streamed reply of {STREAM_CHUNKS} chunks: client {stream['ours']:.1f} µs/chunk vs raw SSE "
            f"{stream['raw']:.1f} µs/chunk ({stream['ours'] / stream['raw']:.2f}x)"
        )
        pool.close()


if __name__ == "__main__":
    main()

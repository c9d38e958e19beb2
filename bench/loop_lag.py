"""The event loop's stalls inside the servers while an 800-step session runs (issue 10, part 2).

Each server runs as a user runs it: `sidehand lsp` over stdio driven by a JSON-RPC client that
declares sidehand support (so every update is sent), and `sidehand mcp` over stdio driven by the
official MCP client; the session uses the real Docker sandbox and Sidehand's LLM client against
the scripted model server (another process). The only thing added to the server process is a
watcher on its event loop: a 1 ms sleep, over and over, whose lateness is the loop's stall at
that moment (installed through the event loop policy, so the servers' own code runs untouched).

Printed per server, in one run: the lateness while the 800-step session runs (target: no stall
over 10 ms), against the same loop idle (the baseline); and at start-up (litellm's background
import, the first sandbox and model call), which the target does not cover.

    python -m bench.loop_lag [--steps 800] [--front lsp|mcp|both] [--trace]

--trace also records, at each stall of 6 ms or more, what every thread of the server was doing,
and prints those that fell in the session (for finding what stalls the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from array import array
from collections.abc import Callable
from pathlib import Path

from bench.llm_client import BENCH_MODEL, STREAM_MODEL, scripted_server
from bench.lsp_responsiveness import Client

IDLE_SECONDS = 3.0
WATCH_INTERVAL = 0.001
TRACE_MS = 6.0
TRACE_ENV = "SIDEHAND_BENCH_TRACE"

Windows = dict[str, tuple[float, float]]  # name -> (start, end) on the monotonic clock

# -- in the server process --------------------------------------------------------------------------


async def watch(samples: array[float]) -> None:
    """(wake-up time, lateness) pairs of a 1 ms sleep, for the loop's whole life."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(WATCH_INTERVAL)
        now = time.monotonic()
        samples.append(now)
        samples.append(now - start - WATCH_INTERVAL)


class WatchedLoops(asyncio.DefaultEventLoopPolicy):
    def __init__(self, samples: array[float]) -> None:
        super().__init__()
        self.samples = samples
        self.tasks: set[asyncio.Task[None]] = set()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.call_soon(lambda: self.tasks.add(loop.create_task(watch(self.samples))))
        return loop


class StallTracer:
    """When the watcher is TRACE_MS late, writes what every thread is doing (innermost frames)."""

    def __init__(self, samples: array[float], out: Path) -> None:
        self.samples = samples
        self.out = out
        self.stalls: list[str] = []
        threading.Thread(target=self.run, daemon=True, name="stall-tracer").start()

    def run(self) -> None:
        seen = 0
        while True:
            time.sleep(0.001)
            if len(self.samples) < 2 or seen == len(self.samples):
                continue
            late = time.monotonic() - self.samples[-2]
            if late * 1e3 < TRACE_MS:
                continue
            seen = len(self.samples)
            names = {t.ident: t.name for t in threading.enumerate()}
            names[threading.main_thread().ident] = "LOOP"
            lines = [f"stall at {time.monotonic():.4f}: >= {late * 1e3:.1f} ms"]
            for ident, frame in sys._current_frames().items():
                stack = traceback.extract_stack(frame)[-5:]
                where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                lines.append(f"  [{names.get(ident, '?')}] {where}")
            self.stalls.append("\n".join(lines))
            self.out.write_text("\n\n".join(self.stalls) + "\n")


def serve(front: str, samples_path: Path, argv: list[str]) -> int:
    """Run the real entry point of `sidehand lsp|mcp` with the watcher on its loop."""
    samples: array[float] = array("d")
    asyncio.set_event_loop_policy(WatchedLoops(samples))
    if os.environ.get(TRACE_ENV):
        StallTracer(samples, samples_path.with_suffix(".stalls"))
    main: Callable[[list[str]], int]
    if front == "lsp":
        from agent_lsp.cli import main
    else:
        from agent_mcp.cli import main
    try:
        return main(argv)
    finally:
        samples_path.write_bytes(samples.tobytes())


def probe(samples_path: Path) -> int:
    """A loop that does nothing but watch itself, until SIGTERM: the machine's own noise."""
    import signal

    samples: array[float] = array("d")

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        watcher = asyncio.create_task(watch(samples))
        await stop.wait()
        watcher.cancel()

    asyncio.run(run())
    samples_path.write_bytes(samples.tobytes())
    return 0


# -- in the benchmark process -----------------------------------------------------------------------


def child(front: str, samples: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "bench.loop_lag", "--serve", front, "--samples", str(samples), "--", *argv]


async def run_lsp(base_url: str, steps: int, tmp: Path, env: dict[str, str]) -> Windows:
    proc = await asyncio.create_subprocess_exec(
        *child("lsp", tmp / "lsp.samples"), stdin=-1, stdout=-1, env=env
    )
    client = Client(proc)
    options = {
        "sidehand": {"protocolVersion": 1},  # the update stream flows, as to the VS Code extension
        "model": f"openai/{BENCH_MODEL}",
        "apiBase": base_url,
        "apiKey": "sk-bench",
        "approvalMode": "never",
        "maxIterations": steps,
    }
    init = {"processId": os.getpid(), "rootUri": (tmp / "ws").as_uri(), "capabilities": {}}
    await client.request("initialize", {**init, "initializationOptions": options})
    client.send({"method": "initialized", "params": {}})
    up = time.monotonic()
    # A one-reply turn (2,000 streamed chunks): litellm is loaded, the Docker client opened.
    warm = (await client.request("sidehand/session/new", {"model": f"openai/{STREAM_MODEL}"}))["sessionId"]
    await client.request("sidehand/session/prompt", {"sessionId": warm, "prompt": "warm up"}, timeout=120)
    warm_end = time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    start = time.monotonic()
    sid = (await client.request("sidehand/session/new", {}))["sessionId"]
    end_turn = await client.request(
        "sidehand/session/prompt", {"sessionId": sid, "prompt": "go"}, timeout=3600
    )
    end = time.monotonic()
    assert (end_turn["stopReason"], end_turn["iterations"]) == ("max_iterations", steps), end_turn
    await client.request("shutdown", None)
    client.send({"method": "exit"})
    await asyncio.wait_for(proc.wait(), 60)
    return {"start-up": (up, warm_end), "idle": (warm_end, start), "session": (start, end)}


async def run_mcp(base_url: str, steps: int, tmp: Path, env: dict[str, str]) -> Windows:
    from mcp import Client as MCPClient
    from mcp import StdioServerParameters

    argv = child(
        "mcp", tmp / "mcp.samples", "--root", str(tmp / "ws"), "--model", f"openai/{BENCH_MODEL}",
        "--api-base", base_url,
    )  # fmt: skip
    env = {**env, "SIDEHAND_API_KEY": "sk-bench", "SIDEHAND_MAX_ITERATIONS": str(steps)}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(tmp))
    async with MCPClient(params, read_timeout_seconds=120) as client:
        up = time.monotonic()
        warm = await client.call_tool(
            "run_task", {"task": "warm up", "approval": "never", "model": f"openai/{STREAM_MODEL}"}
        )
        assert not warm.is_error, warm
        warm_end = time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        start = time.monotonic()
        started = await client.call_tool("start_task", {"task": "go", "approval": "never"})
        assert started.structured_content is not None, started
        task_id = started.structured_content["info"]["task_id"]
        since = -1
        while True:
            got = await client.call_tool("get_task", {"task_id": task_id, "wait": 30, "since": since})
            report = got.structured_content or {}
            info, since = report["info"], report["next_seq"]
            if info["ended"] is not None:
                break
        end = time.monotonic()
        assert info["stop_reason"] == "max_iterations", info
    return {"start-up": (up, warm_end), "idle": (warm_end, start), "session": (start, end)}


def lateness(samples_file: Path, window: tuple[float, float]) -> list[tuple[float, float]]:
    """(seconds into the window, lateness in ms) of the watcher's samples in the window."""
    samples = array("d")
    samples.frombytes(samples_file.read_bytes())
    start, end = window
    pairs = zip(samples[::2], samples[1::2], strict=True)
    return [(at - start, lag * 1e3) for at, lag in pairs if start <= at <= end]


def summary(samples: list[tuple[float, float]]) -> str:
    ordered = sorted(lag for _, lag in samples)
    p99 = ordered[int(len(ordered) * 0.99)]
    over = sum(lag > 10 for lag in ordered)
    return (
        f"max {ordered[-1]:7.2f} ms  p99 {p99:5.2f} ms  median {statistics.median(ordered):5.3f} ms  "
        f"over 10 ms: {over:3d} of {len(ordered):5d}"
    )


def print_stalls(report: str, window: tuple[float, float]) -> None:
    for block in report.strip().split("\n\n"):
        words = block.split()
        if len(words) > 2 and window[0] <= float(words[2].rstrip(":")) <= window[1]:
            print(block)


async def main(steps: int, fronts: list[str], trace: bool) -> None:
    with scripted_server() as base_url, tempfile.TemporaryDirectory(prefix="sidehand-lag-") as name:
        tmp = Path(name)
        (tmp / "ws").mkdir()
        (tmp / "ws" / "README.md").write_text("bench\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
        env.update(SIDEHAND_SESSIONS_DIR=str(tmp / "sessions"), SIDEHAND_CONFIG=str(tmp / "none.toml"))
        if trace:
            env[TRACE_ENV] = "1"
        print(f"{steps}-step session, each step one bash call in Docker; lateness of a 1 ms sleep")
        for front in fronts:
            run = run_lsp if front == "lsp" else run_mcp
            t0 = time.monotonic()
            bystander = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.loop_lag", "--probe", str(tmp / "probe.samples")
            )
            windows = await run(base_url, steps, tmp, env)
            bystander.terminate()
            await bystander.wait()
            samples = tmp / f"{front}.samples"
            print(f"sidehand {front} ({time.monotonic() - t0:.0f} s)")
            print(f"  idle (baseline):       {summary(lateness(samples, windows['idle']))}")
            session = lateness(samples, windows["session"])
            print(f"  during the session:    {summary(session)}   (target: max <= 10 ms)")
            noise = lateness(tmp / "probe.samples", windows["session"])
            print(f"  bystander (baseline):  {summary(noise)}   (an empty loop in another process)")
            print(f"  start-up (not target): {summary(lateness(samples, windows['start-up']))}")
            worst = sorted(session, key=lambda sample: sample[1], reverse=True)[:5]
            print(f"  session's worst: {', '.join(f'{lag:.1f} ms at {at:.1f} s' for at, lag in worst)}")
            if trace and (stalls := samples.with_suffix(".stalls")).exists():
                print_stalls(stalls.read_text(), windows["session"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--front", choices=["lsp", "mcp", "both"], default="both")
    parser.add_argument("--trace", action="store_true", help="what the threads do at each stall")
    parser.add_argument("--serve", choices=["lsp", "mcp"], help=argparse.SUPPRESS)
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.exit(serve(args.serve, args.samples, args.rest))
    if args.probe:
        sys.exit(probe(args.probe))
    asyncio.run(main(args.steps, ["lsp", "mcp"] if args.front == "both" else [args.front], args.trace))

"""Language-server responsiveness (a script, not a test): time from process start to `initialize`
answered and to the first `sidehand/*` request answered (the server loaded), resident memory
before the first session, and textDocument/codeAction latency (p50/p99) while two sessions run
turns. Targets: initialize ≤ 300 ms, ≤ 100 MB, p99 ≤ 20 ms. The server is `sidehand lsp`, the
command an editor starts; the baseline is a bare `python -c pass` started in the same run.

    python -m bench.lsp_responsiveness                 # in-process scripted model + sandbox
    python -m bench.lsp_responsiveness --docker        # the scripted HTTP server + Docker sandbox
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Three commands in turn: the same one over and over would be stopped as stuck.
BUSY_TURNS = [
    {
        "text": "working " * 40,
        "tool_calls": [{"name": "bash", "arguments": {"command": command}}],
        "delay": 0.01,
    }
    for command in ("ls", "pwd", "echo step")
]


class Client:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.ensure_future(self._read())

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        msg_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[msg_id] = future
        self.send({"id": msg_id, "method": method, "params": params})
        return await asyncio.wait_for(future, timeout)

    async def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while (line := await stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            message = json.loads(await stream.readexactly(length))
            if "id" in message and "method" in message:  # a request from the server: say yes
                self.send({"id": message["id"], "result": None})
            elif "id" in message and (future := self.waiting.pop(message["id"], None)) is not None:
                future.set_result(message.get("result", message.get("error")))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


START_RUNS = 5


def server_command(fake_script: Path | None) -> list[str]:
    """`sidehand lsp` as installed next to this Python (what an editor starts), or the same entry
    point on the fakes (`tests/support/fake_server.py`) when a script for the fake model is given."""
    if fake_script is not None:
        return [sys.executable, "-m", "tests.support.fake_server", "lsp", "--script", str(fake_script)]
    script = Path(sys.executable).with_name("sidehand")
    return [str(script), "lsp"] if script.exists() else [sys.executable, "-m", "sidehand", "lsp"]


async def start(
    env: dict[str, str], init_params: dict[str, Any], fake_script: Path | None = None
) -> tuple[Client, float, float]:
    """Start the server; (client, ms to `initialize` answered, ms to the first sidehand/* answer)."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*server_command(fake_script), stdin=-1, stdout=-1, env=env)
    client = Client(proc)
    await client.request("initialize", init_params)
    init_ms = (time.perf_counter() - started) * 1000
    client.send({"method": "initialized", "params": {}})
    await client.request("sidehand/session/list", {})
    return client, init_ms, (time.perf_counter() - started) * 1000


async def stop(client: Client) -> None:
    try:
        await client.request("shutdown", None)
        client.send({"method": "exit"})
        await asyncio.wait_for(client.proc.wait(), 20)
    finally:
        if client.proc.returncode is None:
            client.proc.kill()
            await client.proc.wait()


async def bare_python_ms() -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()
    return (time.perf_counter() - started) * 1000


async def main(docker: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="sidehand-bench-"))
    workspace = tmp / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("def f(x):\n    return x + 1\n" * 50)
    script = tmp / "script.json"
    script.write_text(json.dumps({"turns": BUSY_TURNS, "repeat": True} if docker else BUSY_TURNS * 700))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(SIDEHAND_SESSIONS_DIR=str(tmp / "sessions"), SIDEHAND_CONFIG=str(tmp / "none.toml"))
    options: dict[str, Any] = {
        "sidehand": {"protocolVersion": 1},
        "approvalMode": "never",
        "maxIterations": 1000,
    }
    server = None
    fake_script = None
    if docker:
        from core.testing.scripted_server import ScriptedLLMServer, ScriptSet

        server = ScriptedLLMServer(ScriptSet.from_file(script))
        options.update(model="openai/scripted", apiBase=server.start(), apiKey="sk-bench")
    else:
        fake_script = script
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    init_params = {
        "processId": os.getpid(),
        "rootUri": workspace.as_uri(),
        "capabilities": {},
        "initializationOptions": options,
    }
    try:
        inits, readies, bare = [], [], []
        for _ in range(START_RUNS):
            bare.append(await bare_python_ms())
            client, init_ms, ready_ms = await start(env, init_params, fake_script)
            inits.append(init_ms)
            readies.append(ready_ms)
            await stop(client)
        client, _, _ = await start(env, init_params, fake_script)
        try:
            rss = rss_mb(client.proc.pid)
            p50, p99, running = await code_action_latency(client, workspace)
        finally:
            await stop(client)
        base = statistics.median(bare)
        init = statistics.median(inits)
        label = "sidehand lsp on the fakes" if fake_script else "sidehand lsp"
        print(f"`{label}`, {START_RUNS} starts; medians (max):")
        print(f"  bare `python -c pass` start to exit:       {base:7.1f} ms ({max(bare):.1f})   baseline")
        print(
            f"  initialize answered after process start:   {init:7.1f} ms ({max(inits):.1f})   "
            f"{init / base:.1f}x the baseline (target ≤ 300 ms)"
        )
        print(
            f"  first sidehand/* request answered:         {statistics.median(readies):7.1f} ms "
            f"({max(readies):.1f})   (pygls and the core loaded, litellm importing in the background)"
        )
        print(f"resident memory before the first session: {rss:7.1f} MB   (target ≤ 100 MB)")
        print(
            f"codeAction with {running} sessions running:   p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 ≤ 20 ms)"
        )
    finally:
        if server is not None:
            server.stop()
    return 0


async def code_action_latency(client: Client, workspace: Path) -> tuple[float, float, int]:
    turns = []
    for _ in range(2):
        sid = (await client.request("sidehand/session/new", {}))["sessionId"]
        turns.append(
            asyncio.ensure_future(
                client.request("sidehand/session/prompt", {"sessionId": sid, "prompt": "go"})
            )
        )
    await asyncio.sleep(0.5)  # let both turns get going
    uri = (workspace / "app.py").as_uri()
    params = {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
        "context": {"diagnostics": []},
    }
    latencies = []
    for _ in range(300):
        t0 = time.perf_counter()
        await client.request("textDocument/codeAction", params)
        latencies.append((time.perf_counter() - t0) * 1000)
    running = sum(not t.done() for t in turns)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], running


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--docker", action="store_true", help="real Docker sandbox + scripted HTTP model server"
    )
    sys.exit(asyncio.run(main(parser.parse_args().docker)))

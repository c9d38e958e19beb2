"""A llama-server for the real-model benchmarks, started and stopped through scripts/real-model
(which installs llama.cpp and assembles the model; see docs/llm.md "Running the offline real
model"). Used by bench/real_model.py and bench/record_model_replies.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REAL_MODEL = ROOT / "scripts" / "real-model"
# llama-server serves whichever model it loaded, whatever the request names.
MODEL_NAME = "qwen2.5-coder-1.5b-instruct"


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT, without /v1
    pid: int | None  # None: a server someone else started (--api-base)
    load_seconds: float | None
    log: Path | None


@contextmanager
def llama_server(
    api_base: str | None,
    *,
    jinja: bool,
    threads: int = 2,
    ctx: int = 8192,
    seed: int = 42,
    temperature: float | None = None,
) -> Iterator[Server]:
    """The server at `api_base`, or one started now (and stopped on exit). `temperature` is the
    server's default for requests that send none (Sidehand sends none)."""
    if api_base:
        yield Server(api_base.removesuffix("/").removesuffix("/v1"), None, None, None)
        return
    subprocess.run([str(REAL_MODEL), "setup"], check=True, stdout=sys.stderr)
    started = time.perf_counter()
    args = [str(REAL_MODEL), "start", "--threads", str(threads), "--ctx", str(ctx), "--seed", str(seed)]
    if temperature is not None:
        args += ["--temp", str(temperature)]
    out = subprocess.run(
        [*args, "--jinja" if jinja else "--no-jinja"], check=True, capture_output=True, text=True
    ).stdout
    fields = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    server = Server(fields["URL"], int(fields["PID"]), time.perf_counter() - started, Path(fields["LOG"]))
    try:
        yield server
    finally:
        subprocess.run([str(REAL_MODEL), "stop", str(server.pid)], check=False)


def chat(url: str, body: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """One non-streamed chat completion: the server's reply as JSON."""
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply: dict[str, Any] = json.loads(response.read())
    return reply


def server_version(url: str) -> str:
    """llama.cpp's build as /props reports it, with the PyPI package scripts/real-model builds from
    (a build from the sdist has no git metadata: it reports "b0-unknown")."""
    try:
        with urllib.request.urlopen(f"{url}/props", timeout=10) as response:
            build = str(json.loads(response.read()).get("build_info") or "unknown")
    except OSError:
        build = "unknown"
    paths = subprocess.run([str(REAL_MODEL), "paths"], capture_output=True, text=True, check=False).stdout
    package = dict(line.split(" ", 1) for line in paths.splitlines() if " " in line).get("PACKAGE")
    return f"{package} (build_info {build})" if package else build

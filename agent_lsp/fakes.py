"""FOR TESTS AND BENCHMARKS ONLY: a SessionManager with the in-process scripted LLM and an
in-memory sandbox, selected by the environment variable SIDEHAND_TEST_LLM=<script.json> (the
scripted server's format: a list of turns, a Script or a ScriptSet). Nothing else reaches it.

The script file is read when each session starts, so a test may rewrite it between sessions.
A turn's `delay` is honoured (the reply waits); a bash command `sleep N` runs until cancelled."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from core.config import Settings
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import TextSink
from core.sessions import SessionManager
from core.testing.fake_sandbox import InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM
from core.testing.scripted_server import ScriptSet, Turn

ENV = "SIDEHAND_TEST_LLM"
MAX_SEED_BYTES = 1_000_000


def enabled() -> bool:
    return bool(os.environ.get(ENV))


class DelayedScriptedLLM(ScriptedLLM):
    def __init__(self, turns: Sequence[Turn], model: str) -> None:
        super().__init__([_reply(t, i) for i, t in enumerate(turns)], model=model)
        self.delays = [t.delay for t in turns]

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        if self.delays:
            delay = self.delays.pop(0)
            if delay:
                await asyncio.sleep(delay)
        return await super().complete(messages, tools, on_text=on_text)


def _reply(turn: Turn, index: int) -> LLMReply:
    calls = tuple(
        ToolCall(id=c.id or f"call_{index}_{n}", name=c.name, arguments=c.arguments_text())
        for n, c in enumerate(turn.tool_calls)
    )
    return LLMReply(text=turn.text, tool_calls=calls, usage=Usage(prompt_tokens=10, completion_tokens=5))


def _seed(workspace: Path) -> dict[str, bytes]:
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


def build_fake_manager(settings: Settings) -> SessionManager:
    script_path = Path(os.environ[ENV])

    async def sandbox_factory(workspace: Path, session_id: str, session_dir: Path) -> InMemorySandbox:
        return InMemorySandbox(_seed(workspace))

    def llm_factory(s: Settings) -> DelayedScriptedLLM:
        scripts = ScriptSet.from_file(script_path)
        model = s.model or "scripted"
        script = scripts.models.get(model, scripts.default)
        return DelayedScriptedLLM(script.turns, model)

    if settings.model is None:
        settings = settings.model_copy(update={"model": "scripted"})
    return SessionManager(settings, sandbox_factory, llm_factory)

"""The model call of the `summary` and `auto` condensers: the middle of a session, written out as
plain text, summarized by a model (the cheaper `condenser_model` when set). The summary is for the
agent's own continuation; the facts that must survive are added beside it structurally
(core/facts.py), so the model need not get them right."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.condenser import CHARS_PER_TOKEN, StrategyCondenser
from core.config import Settings
from core.messages import ChatMessage, Usage
from core.protocols import LLM

MESSAGE_CHARS = 1_500  # of one message in what the summarizer reads
CALL_CHARS = 400  # of one tool call's arguments
MAX_SUMMARY_CHARS = 8_000

INSTRUCTIONS = """You summarize part of a coding agent's session so that the agent can continue \
without it. Write a compact summary, in the agent's own terms (it will read it as its memory):
- what was tried and what was found (errors, causes, decisions and why);
- the state of the work: what is done, what is half done, what is next;
- anything the user asked for in these messages.
Do not list every file edited or repeat the user's messages word for word: those are kept \
separately. No preamble: start with the summary."""


def transcript(messages: Sequence[ChatMessage], max_chars: int) -> str:
    """The messages as text for the summarizer, each cut, the whole cut in the middle."""
    parts = []
    for message in messages:
        text = _cut(message.content or "", MESSAGE_CHARS)
        calls = "".join(f"\n→ {c.name}({_cut(c.arguments, CALL_CHARS)})" for c in message.tool_calls)
        parts.append(f"[{message.role}]\n{text}{calls}".rstrip())
    whole = "\n\n".join(parts)
    return _cut(whole, max_chars)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} […{len(text) - limit} characters cut…] {text[-half:]}"


class ModelSummarizer:
    """Summarizes messages with `llm` (the agent's model or the condenser's)."""

    def __init__(self, llm: LLM, max_input_chars: int) -> None:
        self.llm = llm
        self.max_input_chars = max_input_chars

    async def __call__(self, messages: Sequence[ChatMessage]) -> tuple[str, Usage, str | None]:
        request = [
            ChatMessage(role="system", content=INSTRUCTIONS),
            ChatMessage(role="user", content=transcript(messages, self.max_input_chars)),
        ]
        reply = await self.llm.complete(request, [])
        return _cut((reply.text or "").strip(), MAX_SUMMARY_CHARS), reply.usage, reply.model


def make_condenser(
    settings: Settings, llm: LLM, llm_factory: Callable[[Settings], LLM]
) -> tuple[StrategyCondenser, LLM | None]:
    """The session's condenser, summarizing with the `condenser_model` when set (its client is
    returned too, for the session to close), else with the agent's model."""
    own = (
        llm_factory(settings.model_copy(update={"model": settings.condenser_model}))
        if settings.condenser_model
        else None
    )
    summarize = ModelSummarizer(own or llm, settings.prompt_token_budget * CHARS_PER_TOKEN // 2)
    return StrategyCondenser(settings.condenser, summarize), own

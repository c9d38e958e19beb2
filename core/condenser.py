"""Keeping the prompt within the model's means, behind the `Condenser` seam: the view in, a shorter
view and the `Condensation` event that makes it out. The state folds the event
(`apply_condensation`), so the view after a condensation is a function of the log (replay, fork),
and the transcript shows it.

Strategies (the `condenser` setting):
- `none`: the view as it is (the prompt grows until the model refuses it);
- `window`: the head (up to the first user message) and the newest messages that fit are kept;
  the middle is replaced by a note and the session's facts;
- `masking`: old large tool results are replaced by one-line summaries; when that is not enough,
  as `window`;
- `summary`: the middle is summarized by a model (the `condenser_model`, else the agent's) and
  replaced by that summary and the facts (the window's note if the model call fails);
- `auto` (the default): masking first, a summary when masking is not enough.

The facts (core/facts.py: every file changed, every user message, the last command and test
status) are written into every summary whole: they never depend on a summary's luck.

When: the prompt's tokens (the last model call's as the provider counted them, plus an estimate
of what was added since) pass the budget: `prompt_token_budget`, or less when the model's context
window is smaller. A condensation brings the view down to half the budget, so the next one is many
steps away (and the prompt's prefix stays put for the provider's cache in between)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from core.errors import LLMError
from core.events import Condensation
from core.messages import ChatMessage, ToolCall, Usage, decode_arguments

CHARS_PER_TOKEN = 4  # a cheap, deterministic estimate; the provider's counts correct it each call
TARGET_SHARE = 0.5  # after a condensation the prompt is at most this share of the budget
TAIL_SHARE = 0.25  # the newest messages kept word for word, as a share of the budget
WINDOW_SHARE = 0.8  # of the model's context window, the most a prompt may take (the rest: the reply)
MIN_MIDDLE_SHARE = 0.1  # a middle smaller than this share of the budget is not worth condensing
MASK_MIN_CHARS = 800  # a tool result longer than this may be shown as one line once it is old
MASKED_MARK = "[output hidden"

Strategy = Literal["auto", "none", "window", "masking", "summary"]
# Summarizes messages; returns the summary and the call's usage (and the model that answered).
Summarize = Callable[[Sequence[ChatMessage]], Awaitable[tuple[str, Usage, str | None]]]


def estimate_tokens(message: ChatMessage) -> int:
    size = len(message.content or "")
    for call in message.tool_calls:
        size += len(call.name) + len(call.arguments) + 16
    return size // CHARS_PER_TOKEN + 4


def prompt_budget(token_budget: int, context_window: int | None) -> int:
    """The most tokens a prompt should hold: the setting, or less for a small context window."""
    if context_window:
        return max(1000, min(token_budget, int(context_window * WINDOW_SHARE)))
    return token_budget


@dataclass(frozen=True)
class View:
    messages: Sequence[ChatMessage]
    origins: Sequence[int]  # the seq of the event each message came from (non-decreasing)
    facts: Callable[[], str]  # the facts that must survive, written out (core/facts.py)
    prompt_tokens: int  # the whole prompt's (system prompt and tools included), best known
    budget: int


@dataclass(frozen=True)
class Condensed:
    messages: list[ChatMessage]
    event: Condensation
    usage: Usage | None = None  # of a summary's model call
    model: str | None = None


def apply_condensation(
    messages: Sequence[ChatMessage], origins: Sequence[int], event: Condensation
) -> tuple[list[ChatMessage], list[int]]:
    """The view after `event`: masked tool results shown as their line, the forgotten range
    replaced by the summary (which takes the range's first seq, so origins stay ordered)."""
    out: list[ChatMessage] = []
    kept: list[int] = []
    placed = False
    for message, origin in zip(messages, origins, strict=True):
        if 0 <= event.forgotten_from <= origin <= event.forgotten_to:
            if not placed:
                out.append(ChatMessage(role="user", content=event.summary))
                kept.append(event.forgotten_from)
                placed = True
            continue
        if origin in event.masked and message.role == "tool":
            message = message.model_copy(update={"content": event.masked[origin]})
        out.append(message)
        kept.append(origin)
    return out, kept


class StrategyCondenser:
    """The strategies above; `summarize` is the model call of `summary` and `auto`."""

    def __init__(self, strategy: Strategy = "auto", summarize: Summarize | None = None) -> None:
        self.strategy = strategy
        self.summarize = summarize

    async def condense(self, view: View) -> Condensed | None:
        if self.strategy == "none" or view.prompt_tokens <= view.budget:
            return None
        sizes = [estimate_tokens(m) for m in view.messages]
        overhead = max(0, view.prompt_tokens - sum(sizes))  # system prompt, tools, estimate error
        target = int(view.budget * TARGET_SHARE) - overhead
        head = _head_end(view.messages)
        tail = _tail_start(view.messages, sizes, head, int(view.budget * TAIL_SHARE))
        if self.strategy in ("auto", "masking"):
            masked = _masks(view.messages, view.origins, head, tail)
            saved = sum(sizes[i] - len(line) // CHARS_PER_TOKEN for i, line in masked.items())
            if masked and sum(sizes) - saved <= target:
                return self._event(view, sizes, strategy="masking", masked=masked)
        if sum(sizes[head:tail]) < view.budget * MIN_MIDDLE_SHARE:
            # Little between the first instruction and the newest steps (a last step larger than the
            # budget, say): summarizing it again would cost a model call per step and save nothing.
            return None
        text, usage, model = None, None, None
        if self.strategy in ("auto", "summary") and self.summarize is not None:
            try:
                text, usage, model = await self.summarize(view.messages[head:tail])
            except LLMError:
                text = None  # the facts and the note still go in: the window's way
        return self._event(
            view,
            sizes,
            strategy="summary" if text else "window",
            span=(head, tail),
            text=text,
            usage=usage,
            model=model,
        )

    def _event(
        self,
        view: View,
        sizes: list[int],
        *,
        strategy: str,
        masked: dict[int, str] | None = None,
        span: tuple[int, int] | None = None,
        text: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
    ) -> Condensed:
        fields: dict[str, object] = {"strategy": strategy, "tokens_before": view.prompt_tokens}
        if masked:
            fields["masked"] = {view.origins[i]: line for i, line in masked.items()}
        if span is not None:
            start, end = span
            fields.update(
                forgotten_from=view.origins[start],
                forgotten_to=view.origins[end - 1],
                summary=_summary_text(end - start, view.budget, text, view.facts),
            )
        draft = Condensation.model_validate(fields)
        messages, _ = apply_condensation(view.messages, view.origins, draft)
        overhead = max(0, view.prompt_tokens - sum(sizes))
        after = overhead + sum(estimate_tokens(m) for m in messages)
        event = draft.model_copy(update={"tokens_after": after})
        return Condensed(messages, event, usage, model)


def _head_end(messages: Sequence[ChatMessage]) -> int:
    """The index just past the first user message (the task as first given stays in place)."""
    first = next((i for i, m in enumerate(messages) if m.role == "user"), None)
    return 0 if first is None else first + 1


def _tail_start(messages: Sequence[ChatMessage], sizes: list[int], head: int, budget: int) -> int:
    """Where the newest messages that fit `budget` begin: never on a tool result (its call would
    be cut off) and never before `head`; the last step is kept whatever its size."""
    start, used = len(messages), 0
    while start > head and used + sizes[start - 1] <= budget:
        start -= 1
        used += sizes[start]
    while start < len(messages) and messages[start].role == "tool":
        start += 1
    if start == len(messages):  # the last step alone is over the budget: keep it all the same
        start = len(messages) - 1
        while start > head and messages[start].role == "tool":
            start -= 1
    return max(start, head)


def _masks(messages: Sequence[ChatMessage], origins: Sequence[int], head: int, tail: int) -> dict[int, str]:
    """One line for each large tool result before the tail (by index)."""
    calls: dict[str, ToolCall] = {c.id: c for m in messages[:tail] for c in m.tool_calls}
    out = {}
    for i in range(head, tail):
        message = messages[i]
        content = message.content or ""
        if message.role == "tool" and len(content) > MASK_MIN_CHARS and not content.startswith(MASKED_MARK):
            out[i] = _mask_line(content, calls.get(message.tool_call_id or ""))
    return out


def _mask_line(content: str, call: ToolCall | None) -> str:
    what = "this tool call"
    if call is not None:
        args = decode_arguments(call.arguments)
        detail = (
            args.get("command")
            if call.name == "bash"
            else " ".join(str(args.get(k, "")) for k in ("command", "path"))
        )
        what = f"{call.name} {' '.join(str(detail or '').split())[:120]}".strip()
    lines = content.strip().splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")[:120]
    status = lines[-1].strip() if lines and lines[-1].startswith("[exit code") else ""
    return (
        f"{MASKED_MARK} to save space: {len(lines)} lines from {what}; it began: {first!r}"
        + (f"; {status}" if status else "")
        + ". Run it again if you need it.]"
    )


def _summary_text(count: int, budget: int, summary: str | None, facts: Callable[[], str]) -> str:
    if summary:
        head = (
            f"[Sidehand condensed this session: {count} earlier messages were replaced by the summary "
            "below and the facts after it.]\n\n## Summary of the earlier work\n\n" + summary.strip()
        )
    else:
        head = (
            f"[{count} earlier messages of this session were dropped to keep the prompt within {budget} "
            "tokens. The facts below are exact; re-read files or re-run commands if you need what "
            "those messages showed.]"
        )
    return f"{head}\n\n{facts()}"

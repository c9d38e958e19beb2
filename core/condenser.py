"""Keeping the prompt bounded. `BoundedWindow` is the stopgap behind the Condenser seam until the
full condenser lands: it keeps the first user message and the most recent messages that fit a
token budget, and says in the prompt what was dropped. Its cost is proportional to what it keeps,
not to the session's length, so a step stays flat as the session grows."""

from __future__ import annotations

from collections.abc import Sequence

from core.messages import ChatMessage

CHARS_PER_TOKEN = 4  # a cheap, deterministic estimate; good enough to bound the prompt


def estimate_tokens(message: ChatMessage) -> int:
    size = len(message.content or "")
    for call in message.tool_calls:
        size += len(call.name) + len(call.arguments) + 16
    return size // CHARS_PER_TOKEN + 4


class NoCondenser:
    def condense(self, view: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
        return view


class BoundedWindow:
    def __init__(self, token_budget: int) -> None:
        self.token_budget = token_budget

    def condense(self, view: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
        first_user = next((i for i, m in enumerate(view) if m.role == "user"), None)
        if first_user is None:
            return view
        head = list(view[: first_user + 1])
        budget = self.token_budget - sum(estimate_tokens(m) for m in head)
        start = len(view)
        while start > first_user + 1:
            cost = estimate_tokens(view[start - 1])
            if cost > budget:
                break
            budget -= cost
            start -= 1
        if start == first_user + 1:
            return view
        # Never begin the kept tail with tool results whose call was dropped.
        while start < len(view) and view[start].role == "tool":
            start += 1
        dropped = start - first_user - 1
        note = ChatMessage(
            role="user",
            content=(
                f"[{dropped} earlier messages of this session were dropped to keep the prompt within "
                f"{self.token_budget} tokens. Re-read files or re-run commands if you need what they showed.]"
            ),
        )
        return [*head, note, *view[start:]]

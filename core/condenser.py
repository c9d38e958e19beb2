"""Keeping the prompt bounded. `BoundedWindow` is the stopgap behind the Condenser seam until the
full condenser lands: it keeps the first user message and the most recent messages that fit a
token budget, and says in the prompt what was dropped.

A step must cost the same at step 800 as at step 1, so the window keeps running token totals of
the view (prefix sums) and only estimates messages it has not seen: each call costs O(new
messages + log n), not O(n)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from core.messages import ChatMessage

CHARS_PER_TOKEN = 4  # a cheap, deterministic estimate; good enough to bound the prompt


def estimate_tokens(message: ChatMessage) -> int:
    size = len(message.content or "")
    for call in message.tool_calls:
        size += len(call.name) + len(call.arguments) + 16
    return size // CHARS_PER_TOKEN + 4


def window_budget(prompt_token_budget: int, context_window: int | None, fixed_tokens: int) -> int:
    """Tokens the conversation may take: the prompt budget, and within the model's context window
    what the system prompt and tools (`fixed_tokens`) and room for the reply leave."""
    if context_window is None:
        return prompt_token_budget
    reply_room = min(4096, context_window // 4)
    return max(1000, min(prompt_token_budget, context_window - fixed_tokens - reply_room))


class BoundedWindow:
    def __init__(self, token_budget: int) -> None:
        self.token_budget = token_budget
        self._seen: list[ChatMessage] = []  # the view's messages the totals below are for
        self._totals: list[int] = []  # _totals[i]: tokens of view[0..i]

    def _sync(self, view: Sequence[ChatMessage]) -> None:
        """Bring the running totals up to date. The view only grows at its end (the last message
        may be replaced when a reply's tool calls are merged into it), so compare from the end."""
        kept = min(len(self._seen), len(view))
        while kept and self._seen[kept - 1] is not view[kept - 1]:
            kept -= 1
        del self._seen[kept:], self._totals[kept:]
        total = self._totals[-1] if self._totals else 0
        for message in view[kept:]:
            total += estimate_tokens(message)
            self._seen.append(message)
            self._totals.append(total)

    def condense(self, view: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
        first_user = next((i for i, m in enumerate(view) if m.role == "user"), None)
        if first_user is None:
            return view
        self._sync(view)
        if self._totals[-1] <= self.token_budget:
            return view
        head_tokens = self._totals[first_user]
        # the first index whose tail (start..end) fits in what the head leaves
        need = self._totals[-1] - (self.token_budget - head_tokens)
        start = max(bisect_left(self._totals, need) + 1, first_user + 1)
        # Never begin the kept tail with tool results whose call was dropped.
        while start < len(view) and view[start].role == "tool":
            start += 1
        dropped = start - first_user - 1
        if dropped <= 0:
            return view
        note = ChatMessage(
            role="user",
            content=(
                f"[{dropped} earlier messages of this session were dropped to keep the prompt within "
                f"{self.token_budget} tokens. Re-read files or re-run commands if you need what they showed.]"
            ),
        )
        return [*view[: first_user + 1], note, *view[start:]]

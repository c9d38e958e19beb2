"""An in-process LLM fake that replays a list of replies, for fast unit tests of the controller.
End-to-end tests use the scripted HTTP server through litellm instead."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from core.errors import LLMError
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import TextSink


def call(name: str, arguments: dict[str, Any] | str | None = None, call_id: str | None = None) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(id=call_id or f"call_{name}_{abs(hash(raw)) % 10**8}", name=name, arguments=raw)


def reply(text: str | None = None, *calls: ToolCall, cost: float = 0.0) -> LLMReply:
    return LLMReply(
        text=text, tool_calls=calls, usage=Usage(prompt_tokens=10, completion_tokens=5, cost=cost)
    )


class ScriptedLLM:
    def __init__(
        self,
        replies: Sequence[LLMReply | LLMError],
        model: str = "scripted",
        *,
        native_tools: bool | None = None,
    ) -> None:
        self.model = model
        self.replies = list(replies)
        self.native_tools = native_tools  # what supports_tools answers (litellm's model information)
        self.requests: list[list[ChatMessage]] = []
        self.tools_sent: list[list[ToolSpec]] = []
        self.closed = False
        self.gate: asyncio.Event | None = None  # when set, each call waits for it (to hold a reply open)

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        self.requests.append(list(messages))
        self.tools_sent.append(list(tools))
        if self.gate is not None:
            await self.gate.wait()
        if not self.replies:
            return reply("Script finished.")
        item = self.replies.pop(0)
        if isinstance(item, LLMError):
            raise item
        if on_text is not None and item.text:
            for word in item.text.split(" "):
                on_text(word + " ")
        return item

    async def supports_tools(self) -> bool | None:
        return self.native_tools

    async def aclose(self) -> None:
        self.closed = True

"""How tool calls travel between Sidehand and a model, in one of two modes:

- `native`: the tools go in the request's `tools`, and calls come back as the API's `tool_calls`;
- `text`: for models with no tool calling (or a server whose chat template has none): the tools
  and the expected format are described in the system prompt, calls come back as text
  (core.text_calls), past calls are shown as that text and results as user messages.

In both modes a reply's text is read for calls too: many models write them as text even when the
request carries tools. `auto` (the default) asks litellm's model info first; for a model it does
not know, it starts native and turns to text when the server refuses tools or the model's first
reply with calls writes them as text.

A reply that gives neither calls nor an answer is not the end of the turn: an unreadable call or
a JSON object naming no tool gets a notice back, an empty reply gets one nudge, and a second empty
reply in a row ends the turn (`empty_reply`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.config import ToolCallMode
from core.errors import LLMError, LLMToolsUnsupportedError
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec
from core.text_calls import read_text_calls
from core.tool_calls import new_call_id, normalize_call, with_fresh_ids

log = logging.getLogger(__name__)


TEXT_PROTOCOL = """# Tools

You act by calling tools. Each tool is described by one JSON object: its name, what it does, and
its parameters (a JSON schema).

{tools}

To call a tool, write a JSON object with the tool's name and its arguments inside
<tool_call></tool_call> tags, like this:
<tool_call>
{{"name": "bash", "arguments": {{"command": "ls -la"}}}}
</tool_call>
You may call several tools in one reply, each in its own tags. The results come back in the next
message, inside <tool_response></tool_response> tags. When the task is done, call `finish`."""

# How a call looks, in a notice: no command a model could copy and run by mistake.
CALL_FORMAT = '{"name": <tool name>, "arguments": {<argument name>: <value>, ...}}'


@dataclass(frozen=True)
class Reading:
    """What a model reply amounts to."""

    text: str | None  # its prose, to show (calls written as text taken out)
    calls: tuple[ToolCall, ...] = ()
    notice: str | None = None  # no calls: tell the model this, and go on
    empty_again: bool = False  # a second empty reply in a row: the turn ends


class ToolProtocol:
    """One session's tool-call mode and how replies are read. `tools` maps names to tools (for
    normalizing calls and inferring a tool from its arguments)."""

    def __init__(self, mode: ToolCallMode, tools: Mapping[str, Any]) -> None:
        self.mode = mode
        self.native: bool | None = {"native": True, "text": False}.get(mode)  # None: not decided yet
        self._tools = tools
        self._text_system: tuple[ChatMessage, list[ToolSpec], ChatMessage] | None = None
        self._rendered: dict[tuple[int, ...], tuple[tuple[ChatMessage, ...], ChatMessage]] = {}
        self._empty_replies = 0
        self._consulted = False
        self._task = ""  # the user's latest request, to remind a model that lost its way
        self._said: set[str] = set()  # the notices given (user messages, but not the user's)

    async def consult(self, supports_tools: bool | None) -> None:
        """litellm's word on the model, once, for `auto`."""
        if self.native is None and not self._consulted and supports_tools is not None:
            self._set_native(supports_tools, "litellm's model information")
        self._consulted = True

    @property
    def needs_consulting(self) -> bool:
        return self.native is None and not self._consulted

    def request(
        self, prompt: Sequence[ChatMessage], specs: list[ToolSpec]
    ) -> tuple[list[ChatMessage], list[ToolSpec]]:
        """The messages and tools to send for `prompt` (the system message first, then the view)
        and `specs`: as they are in native mode; in text mode the tools described in the system
        message and the history written as text."""
        system, messages = prompt[0], prompt[1:]
        self._task = next(
            (
                m.content
                for m in reversed(messages)
                if m.role == "user" and m.content and m.content not in self._said
            ),
            "",
        )
        if self.native is not False:
            return [system, *messages], specs
        known = self._text_system
        if known is None or known[0] is not system or known[1] is not specs:
            text = ChatMessage(role="system", content=f"{system.content}\n\n{text_protocol(specs)}")
            known = self._text_system = (system, specs, text)
        return [known[2], *self._render(messages)], []

    def refused(self, exc: LLMError) -> bool:
        """True when `exc` says the server takes no tools and `auto` turned to text: call again."""
        if isinstance(exc, LLMToolsUnsupportedError) and self.mode == "auto" and self.native is not False:
            self._set_native(False, "the server refuses requests with tools")
            return True
        return False

    def read(self, reply: LLMReply, used_ids: set[str]) -> Reading:
        native = [normalize_call(call, self._tools) for call in reply.tool_calls]
        if native:
            if self.native is None:
                self._set_native(True, "its first calls came as tool_calls")
            self._empty_replies = 0
            return Reading(reply.text, tuple(with_fresh_ids(native, used_ids)))
        found = read_text_calls(reply.text or "", self._tools)
        if found.calls:
            if self.native is None:
                self._set_native(False, "its first calls came written in text")
            self._empty_replies = 0
            calls = [
                normalize_call(
                    ToolCall(id=new_call_id(), name=c.name, arguments=_json(c.arguments)), self._tools
                )
                for c in found.calls
            ]
            return Reading(found.prose or None, tuple(with_fresh_ids(calls, used_ids)))
        if found.problem is not None:
            self._empty_replies = 0
            return Reading(reply.text, notice=self._say(_unreadable(found.problem, self._tools)))
        if reply.finish_reason == "length":  # cut at max_tokens: never a finished answer
            self._empty_replies = 0
            return Reading(reply.text, notice=self._say(CUT_OFF))
        if not (reply.text or "").strip():
            self._empty_replies += 1
            if self._empty_replies > 1:
                return Reading(None, empty_again=True)
            return Reading(None, notice=self._say(_empty_reply(self._task)))
        self._empty_replies = 0
        return Reading(reply.text)

    def _say(self, notice: str) -> str:
        self._said.add(notice)
        return notice

    def _set_native(self, native: bool, why: str) -> None:
        self.native = native
        log.info("tool calls for this session: %s (%s)", "native" if native else "text", why)

    def _render(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The history as a model without tool calling reads it: calls as the text it writes, results
        as user messages. Each message (or run of results) is converted once and kept, so the
        request's encoding can be reused from step to step."""
        out: list[ChatMessage] = []
        rendered: dict[tuple[int, ...], tuple[tuple[ChatMessage, ...], ChatMessage]] = {}
        i = 0
        while i < len(messages):
            group: tuple[ChatMessage, ...] = (messages[i],)
            if messages[i].role == "tool":
                j = i + 1
                while j < len(messages) and messages[j].role == "tool":
                    j += 1
                group = tuple(messages[i:j])
            key = tuple(id(m) for m in group)
            cached = self._rendered.get(key)
            if cached is None or any(a is not b for a, b in zip(cached[0], group, strict=True)):
                cached = (group, _as_text(group))
            rendered[key] = cached
            out.append(cached[1])
            i += len(group)
        self._rendered = rendered
        return out


CUT_OFF = (
    "Your last reply was cut off at the length limit before it called a tool. Keep replies short: "
    "call one tool, or call `finish` with a summary if the task is done."
)
EMPTY_REPLY = (
    "Your last reply was empty. Go on with the task: call a tool, or call `finish` with a summary if "
    "the task is done."
)


def _empty_reply(task: str) -> str:
    if not task or task.startswith("<tool_response>"):
        return EMPTY_REPLY
    brief = task if len(task) <= 500 else task[:500] + "…"
    return f"{EMPTY_REPLY} The task was:\n{brief}"


def text_protocol(specs: Sequence[ToolSpec]) -> str:
    """The system prompt's description of the tools and the call format, for text mode."""
    tools = "\n".join(
        json.dumps(
            {"name": s.name, "description": s.description, "parameters": s.parameters}, ensure_ascii=False
        )
        for s in specs
    )
    return TEXT_PROTOCOL.format(tools=tools)


def _as_text(group: tuple[ChatMessage, ...]) -> ChatMessage:
    first = group[0]
    if first.role == "tool":
        results = "\n".join(f"<tool_response>\n{m.content or ''}\n</tool_response>" for m in group)
        return ChatMessage(role="user", content=results)
    if first.role == "assistant" and first.tool_calls:
        calls = "\n".join(
            f'<tool_call>\n{{"name": {json.dumps(c.name)}, "arguments": {c.arguments or "{}"}}}\n</tool_call>'
            for c in first.tool_calls
        )
        return ChatMessage(role="assistant", content=f"{first.content}\n{calls}" if first.content else calls)
    return first


def _json(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _unreadable(problem: str, tools: Mapping[str, Any]) -> str:
    return (
        f"Your last reply was not acted on: {problem}. Decide your next step: to call a tool, write "
        f"one JSON object {CALL_FORMAT}, where the tools are {', '.join(sorted(tools))}. When the "
        "task is done, call `finish` with a summary."
    )

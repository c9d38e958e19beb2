"""Tool calls a model wrote as text: what small local models do when their server's chat template
has no tool calling, or when they ignore the format it asks for.

Read, in any number and mixed with prose: `<tool_call>{json}</tool_call>` (Qwen, Hermes),
`<function=NAME><parameter=KEY>value</parameter></function>` (Qwen3-Coder, OpenHands' prompt
format), `<invoke name="NAME"><parameter name="KEY">value</parameter></invoke>` (Anthropic-style
XML), `[TOOL_CALLS][...]` (Mistral), `<|python_tag|>{json}` (Llama 3), and JSON objects or arrays
of calls in ```json fences or bare in the text (`{"name": ..., "arguments": {...}}`, with
`parameters`, `args` or an OpenAI-style `function` object too). Code in other fences (```python,
```bash) is an example for the user, never a call.

What looks like a call but cannot be read (broken JSON in a tag, a reply that is one JSON object
naming no tool, an echoed `<tool_response>`) is reported as `problem`, so the model is told
instead of the reply ending the turn as an answer."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.tool_calls import EDITOR_COMMANDS, decode_object, tool_name

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.S)
_FUNCTION = re.compile(r"<function=([^>\s]+)>(.*?)(?:</function>|\Z)", re.S)
_FUNCTION_PARAM = re.compile(r"<parameter=([^>\s]+)>(.*?)(?:</parameter>|(?=<parameter=)|\Z)", re.S)
_INVOKE = re.compile(r"<invoke\s+name=[\"']([^\"']+)[\"']\s*>(.*?)(?:</invoke>|\Z)", re.S)
_INVOKE_PARAM = re.compile(r"<parameter\s+name=[\"']([^\"']+)[\"']\s*>(.*?)</parameter>", re.S)
_WRAPPERS = re.compile(r"</?tool_call>|</?function_calls>|\[TOOL_CALLS\]|<\|python_tag\|>")
_FENCE = re.compile(r"```([\w-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_JSON_FENCES = {"", "json", "jsonc", "json5", "tool_call", "tool_code", "tool", "javascript", "js"}
_NAMED = re.compile(r"[\"'](?:name|tool|function)[\"']\s*:\s*[\"']", re.S)
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_MAX_TEXT = 200_000  # longer replies are read only this far


@dataclass(frozen=True)
class TextCall:
    name: str
    arguments: dict[str, Any] | str  # a string: arguments that could not be read, as written


@dataclass
class TextCalls:
    """The calls in a reply's text, in order; the prose without them; or what went wrong."""

    calls: list[TextCall] = field(default_factory=list)
    prose: str = ""
    problem: str | None = None


def read_text_calls(text: str, tools: Mapping[str, Any]) -> TextCalls:
    """The calls written in `text` (see the module's docstring). `tools` maps tool names to tools
    with a pydantic `params` model (to know names, and to infer a call's tool from its keys)."""
    reader = _Reader(text[:_MAX_TEXT], tools)
    reader.read()
    return reader.result()


class _Reader:
    def __init__(self, text: str, tools: Mapping[str, Any]) -> None:
        self.text = text
        self.tools = tools
        self.found: list[tuple[int, TextCall]] = []
        self.taken: list[tuple[int, int]] = []  # spans that were calls (or their wrappers)
        self.code: list[tuple[int, int]] = []  # fences of code (```python, ```bash): never calls
        self.problem: str | None = None

    def read(self) -> None:
        self._tagged()
        self._xml(_FUNCTION, _FUNCTION_PARAM)
        self._xml(_INVOKE, _INVOKE_PARAM)
        self._fences()
        self._bare()
        if not self.found:
            self._whole_reply_object()
        if not self.found and self.problem is None and "<tool_response>" in self.text:
            self.problem = (
                "it repeats a <tool_response> block (results come from Sidehand after each call, "
                "they are not to be written)"
            )
        if self.found:
            for wrapper in _WRAPPERS.finditer(self.text):
                self.taken.append(wrapper.span())

    def result(self) -> TextCalls:
        self.found.sort(key=lambda item: item[0])
        return TextCalls(
            [call for _, call in self.found], self._prose(), None if self.found else self.problem
        )

    # -- forms -------------------------------------------------------------------------------------
    def _tagged(self) -> None:
        for match in _TAGGED.finditer(self.text):
            if self._is_taken(match.start()):
                continue
            body = _unfence(match[1])
            if "<function=" in body or "<invoke" in body:
                continue  # Qwen3-Coder's XML inside the tags: read as that
            calls = self._calls_in_json(body)
            if calls is None:
                self.problem = self.problem or f"the JSON in a <tool_call> tag cannot be read ({_why(body)})"
                continue
            self._take(match.span(), calls)

    def _xml(self, form: re.Pattern[str], parameter: re.Pattern[str]) -> None:
        for match in form.finditer(self.text):
            if self._is_taken(match.start()):
                continue
            body = match[2]
            arguments: dict[str, Any] = {p[1]: _xml_value(p[2]) for p in parameter.finditer(body)}
            if not arguments and body.strip().startswith("{"):
                decoded = _decode(body.strip())
                arguments = decoded if isinstance(decoded, dict) else {}
            self._take(match.span(), [TextCall(match[1], arguments)])

    def _fences(self) -> None:
        for match in _FENCE.finditer(self.text):
            if self._is_taken(match.start()):
                continue
            if match[1].lower() not in _JSON_FENCES:
                self.code.append(match.span())
                continue
            calls = self._calls_in_text(match[2])
            if calls:
                self._take(match.span(), calls)
            elif _NAMED.search(match[2]) and _decode(match[2].strip()) is None:
                self.problem = self.problem or f"the JSON in a ``` block cannot be read ({_why(match[2])})"

    def _bare(self) -> None:
        for start, end, value in _json_values(self.text):
            if self._is_taken(start) or self._in_code(start):
                continue
            calls = self._calls_in_value(value)
            if calls:
                self._take((start, end), calls)

    def _whole_reply_object(self) -> None:
        """A reply that is nothing but one JSON object naming no tool: its tool is inferred from
        its keys when exactly one tool (not `finish`) takes them; else it is a problem."""
        body = _unfence(self.text.strip())
        value = _decode(body) if body.startswith("{") else None
        if value is None and body.startswith("{") and _NAMED.search(body):
            self.problem = self.problem or f"the JSON of the call cannot be read ({_why(body)})"
            return
        if not isinstance(value, dict) or not value:
            return
        matches = [
            name
            for name, tool in self.tools.items()
            if set(value) <= set(tool.params.model_fields)
            and {k for k, f in tool.params.model_fields.items() if f.is_required()} <= set(value)
        ]
        if len(matches) == 1 and matches[0] != "finish":
            self._take((0, len(self.text)), [TextCall(matches[0], value)])
        else:
            keys = ", ".join(sorted(value))
            self.problem = f"it is a JSON object ({keys}) that names no tool"

    # -- calls from JSON -------------------------------------------------------------------------
    def _calls_in_text(self, text: str) -> list[TextCall]:
        calls = []
        for _, _, value in _json_values(text):
            calls += self._calls_in_value(value) or []
        return calls

    def _calls_in_json(self, body: str) -> list[TextCall] | None:
        value = _decode(body)
        if value is None:
            calls = self._calls_in_text(body)  # several objects, one per line
            return calls or None
        return self._calls_in_value(value)

    def _calls_in_value(self, value: Any) -> list[TextCall] | None:
        if isinstance(value, list):
            calls = [call for item in value for call in (self._calls_in_value(item) or [])]
            return calls or None
        if not isinstance(value, dict):
            return None
        function = value.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            value = function
        name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
        if name is None:
            return None
        has_arguments = any(k in value for k in _ARGUMENT_KEYS)
        if not has_arguments and not self._known(name):
            return None  # {"name": "my-app", "version": "1.0"} is data, not a call
        written: Any = next((value[k] for k in _ARGUMENT_KEYS if k in value), {})
        arguments = _decode(written) if isinstance(written, str) and written.strip() else written
        if isinstance(written, str) and not written.strip():
            arguments = {}
        if not isinstance(arguments, dict):  # left as written: parsing the call says what is wrong
            arguments = written if isinstance(written, str) else json.dumps(written)
        return [TextCall(name, arguments)]

    def _known(self, name: str) -> bool:
        return tool_name(name, self.tools) in self.tools or name in EDITOR_COMMANDS

    # -- spans -----------------------------------------------------------------------------------
    def _take(self, span: tuple[int, int], calls: list[TextCall]) -> None:
        self.taken.append(span)
        self.found += [(span[0], call) for call in calls]

    def _is_taken(self, at: int) -> bool:
        return any(start <= at < end for start, end in self.taken)

    def _in_code(self, at: int) -> bool:
        return any(start <= at < end for start, end in self.code)

    def _prose(self) -> str:
        if not self.found:
            return self.text.strip()
        parts, at = [], 0
        for start, end in sorted(self.taken):
            if start >= at:
                parts.append(self.text[at:start])
                at = end
            else:
                at = max(at, end)
        parts.append(self.text[at:])
        return re.sub(r"\n{3,}", "\n\n", "".join(parts)).strip()


def _json_values(text: str) -> list[tuple[int, int, Any]]:
    """(start, end, value) of each JSON object or array that starts at a `{` or `[` in `text`,
    outermost only (raw control characters in strings allowed)."""
    decoder = json.JSONDecoder(strict=False)
    found: list[tuple[int, int, Any]] = []
    at = 0
    while True:
        starts = [i for i in (text.find("{", at), text.find("[", at)) if i != -1]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            at = start + 1
            continue
        except RecursionError:  # nested past Python's limit: no call is; skip the run of brackets
            at = start + 1
            while at < len(text) and text[at] in "[{":
                at += 1
            continue
        found.append((start, end, value))
        at = end


def _decode(text: str) -> Any:
    try:
        return decode_object(text)
    except (ValueError, RecursionError):
        return None


def _why(text: str) -> str:
    try:
        json.loads(text.strip(), strict=False)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at position {exc.pos}"
    except RecursionError:
        return "nested too deeply"
    return "not a tool call"


def _unfence(text: str) -> str:
    match = re.fullmatch(r"```[\w-]*[^\n]*\n(.*?)\n?```", text.strip(), re.S)
    return match[1].strip() if match else text.strip()


def _xml_value(value: str) -> Any:
    """A parameter's text: one newline around it is layout, not content."""
    return value.removeprefix("\n").removesuffix("\n")

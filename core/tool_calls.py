"""Tool calls as models write them, made into calls Sidehand's tools take, before validation.

Models trained on other agents call tools by those agents' names (OpenHands' `execute_bash`,
`terminal`, `str_replace_editor`, `file_editor`), with their extra fields (`security_risk`,
`summary`, `is_input: false`), name the editor's sub-command as the tool (`"name": "create"`),
leave the editor's `command` out, write a list as a JSON string (`"view_range": "[1, 20]"`), or
put raw newlines inside JSON strings. Each of these is forgiven here, so it costs no turn."""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from core.messages import ToolCall

# Other agents' names for our tools.
ALIASES = {
    "execute_bash": "bash",
    "terminal": "bash",
    "run_shell_command": "bash",
    "shell": "bash",
    "str_replace_editor": "editor",
    "file_editor": "editor",
    "str_replace_based_edit_tool": "editor",
}
EDITOR = "editor"
EDITOR_COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
# Fields other agents' tools have and ours do not; dropped (is_input only when false).
DROPPED = ("security_risk", "summary")
# A tool name followed by the rest of an XML form it was cut from: `bash</function>`, `editor>`.
_NAME_TAIL = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:[<>/\"'].*)?$", re.S)


class ArgumentsError(ValueError):
    """The arguments are not a JSON object (the message says what is wrong with them)."""


def decode_object(text: str) -> Any:
    """JSON, leniently: raw control characters in strings (strict=False), then a Python literal
    (a model writing a dict with single quotes). Raises ValueError with JSON's message."""
    try:
        return json.loads(text, strict=False)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        if len(text) > 200_000:
            raise
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise exc from None
        if isinstance(value, dict):
            return value
        raise exc from None


def tool_name(name: str, tools: Iterable[str]) -> str:
    """Our name for the tool a model named (unknown names are returned cleaned, for the error)."""
    known = set(tools)
    cleaned = name.strip()
    if cleaned not in known and (match := _NAME_TAIL.match(cleaned)) is not None:
        cleaned = match[1]
    cleaned = ALIASES.get(cleaned, ALIASES.get(cleaned.lower(), cleaned))
    if cleaned not in known and cleaned.lower() in known:
        cleaned = cleaned.lower()
    return cleaned


def normalize(
    name: str, arguments: Mapping[str, Any], tools: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The call as our tools take it: our tool name, the arguments with other agents' quirks
    undone. `tools` maps tool names to tools with a pydantic `params` model."""
    name = tool_name(name, tools)
    args = dict(arguments)
    if name in EDITOR_COMMANDS and name not in tools and EDITOR in tools:
        args.setdefault("command", name)  # the editor's sub-command called as a tool
        name = EDITOR
    for field in DROPPED:
        args.pop(field, None)
    if args.get("is_input") in (False, "false", "False"):
        args.pop("is_input")
    tool = tools.get(name)
    if tool is None:
        return name, args
    fields = tool.params.model_fields
    for key, value in list(args.items()):
        if isinstance(value, str) and key in fields and _takes_list(fields[key].annotation):
            try:
                decoded = json.loads(value)
            except ValueError:
                continue
            if isinstance(decoded, list):
                args[key] = decoded
    if name == EDITOR and "command" not in args:
        args["command"] = _editor_command(args)
    return name, args


def _takes_list(annotation: Any) -> bool:
    return "list" in str(annotation)


def _editor_command(args: Mapping[str, Any]) -> str:
    """The editor sub-command its other arguments imply."""
    if "file_text" in args:
        return "create"
    if "old_str" in args:
        return "str_replace"
    if "insert_line" in args:
        return "insert"
    return "view"


def normalize_call(call: ToolCall, tools: Mapping[str, Any]) -> ToolCall:
    """`call` with our tool name and normalized arguments (as JSON text); unchanged when its
    arguments cannot be read (parsing then reports why)."""
    try:
        raw = decode_object(call.arguments or "{}")
    except ValueError:
        return call.model_copy(update={"name": tool_name(call.name, tools)})
    if not isinstance(raw, dict):
        return call.model_copy(update={"name": tool_name(call.name, tools)})
    name, args = normalize(call.name, raw, tools)
    if name == call.name and args == raw:
        return call
    return ToolCall(id=call.id, name=name, arguments=json.dumps(args, ensure_ascii=False))


def with_fresh_ids(calls: Iterable[ToolCall], used: set[str]) -> list[ToolCall]:
    """The calls, each with an id not in `used` (and not repeated among them): some servers give
    every call the same id, or reuse ids across replies, and a result must answer one call."""
    out = []
    for call in calls:
        if not call.id or call.id in used:
            call = call.model_copy(update={"id": new_call_id()})
        used.add(call.id)
        out.append(call)
    return out


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"

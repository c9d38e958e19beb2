"""What every tool is: a name, a pydantic parameter model (its JSON schema is what the model sees),
and an async `execute` that turns validated parameters into an Observation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from core.config import Settings
from core.events import PlanEntry, ToolCallEvent, ToolResultEvent
from core.messages import ToolCall, ToolSpec
from core.output import OutputBudget
from core.protocols import Sandbox
from core.tool_calls import decode_object, normalize


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Observation:
    output: str
    error: bool = False
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    full_output_path: str | None = None
    diff: str | None = None
    path: str | None = None
    finish: bool = False  # the agent said it is done
    plan: tuple[PlanEntry, ...] | None = None  # the agent's plan, changed by this call


@dataclass
class ToolContext:
    sandbox: Sandbox
    outputs: OutputBudget  # where (and how much of) a command's full output is kept when it is cut
    call_id: str
    command_timeout: float  # seconds a command may run before it is killed
    # per-path contents before each edit, for the editor's undo_edit (lives as long as the session)
    edit_history: dict[str, list[bytes | None]] = field(default_factory=dict)
    # a call returns once its command printed nothing for this long (the command runs on); None:
    # a call waits for its command to end (or be killed at command_timeout)
    quiet_timeout: float | None = 10.0


def result_event(action: ToolCallEvent, obs: Observation) -> ToolResultEvent:
    """The event that logs `obs`, the result of `action`."""
    return ToolResultEvent(
        call_id=action.call_id,
        tool=action.tool,
        output=obs.output,
        error=obs.error,
        exit_code=obs.exit_code,
        timed_out=obs.timed_out,
        truncated=obs.truncated,
        full_output_path=obs.full_output_path,
        diff=obs.diff,
        path=obs.path,
    )


class Tool:
    name: str  # a class attribute of each built-in tool (an external tool sets its own)
    description: ClassVar[str]
    params: ClassVar[type[Params]]

    def spec(self) -> ToolSpec:
        """What the model is told of the tool."""
        return tool_spec(type(self), self.description)

    def spec_for(self, settings: Settings) -> ToolSpec:
        """What the model is told of the tool under these settings (a tool whose description
        states a setting says it here)."""
        return self.spec()

    def title(self, params: Params) -> str:
        """A one-line label for the action, shown in the editor and the terminal."""
        return self.name

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        raise NotImplementedError


_SPECS: dict[tuple[str, str], ToolSpec] = {}


def tool_spec(cls: type[Tool], description: str) -> ToolSpec:
    """A built-in tool's spec, made once per class and description (building the JSON schema
    takes milliseconds, and every session asks). Nested models are inlined: some servers'
    grammars cannot follow `$ref`."""
    key = (f"{cls.__module__}.{cls.__qualname__}", description)
    if (known := _SPECS.get(key)) is None:
        schema = cls.params.model_json_schema()
        definitions = schema.pop("$defs", {})
        schema = _inline(schema, definitions)
        schema.pop("title", None)
        known = _SPECS[key] = ToolSpec(name=cls.name, description=description, parameters=schema)
    return known


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with every `$ref` to `#/$defs/X` replaced by X, and no `title`s."""
    if isinstance(node, dict):
        if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


def _only_required(name: str, tools: dict[str, Tool], kind: type) -> str | None:
    """The name of the tool's one required argument, when it has exactly one and it is a `kind`."""
    tool = tools.get(normalize(name, {}, tools)[0])
    if tool is None:
        return None
    required = [(k, f) for k, f in tool.params.model_fields.items() if f.is_required()]
    if len(required) != 1 or (get_origin(required[0][1].annotation) or required[0][1].annotation) is not kind:
        return None
    return required[0][0]


def _single_text_argument(call: ToolCall, tools: dict[str, Tool]) -> tuple[Tool, Params] | None:
    """A tool with one required text argument, given that text instead of a JSON object (a small
    model wrote `{"name": "think", "arguments": "I should ..."}`): the text is that argument. Not
    for text that was meant as JSON (broken JSON is reported, never run as a command)."""
    if call.arguments.lstrip().startswith(("{", "[")):
        return None
    field = _only_required(call.name, tools, str)
    if field is None:
        return None
    tool = tools[normalize(call.name, {}, tools)[0]]
    try:
        return tool, tool.params.model_validate({field: call.arguments})
    except ValidationError:
        return None


class ToolCallError(Exception):
    """The model's tool call cannot be run; the message goes back to the model as an observation."""


def parse_call(call: ToolCall, tools: dict[str, Tool]) -> tuple[Tool, Params]:
    """The tool and its validated parameters, after forgiving what models commonly get wrong
    (core.tool_calls); ToolCallError says what is still wrong, for the model."""
    try:
        raw: Any = decode_object(call.arguments or "{}")
    except ValueError as exc:
        if (single := _single_text_argument(call, tools)) is not None:
            return single
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ToolCallError(
            f"The arguments of tool {call.name!r} are not valid JSON ({detail}{where}). "
            "Send the arguments as one JSON object."
        ) from exc
    if isinstance(raw, list) and (field := _only_required(call.name, tools, list)) is not None:
        raw = {field: raw}  # a small model gave the plan tool its list of items, unwrapped
    if not isinstance(raw, dict):
        raise ToolCallError(
            f"The arguments of tool {call.name!r} must be a JSON object, got {type(raw).__name__}."
        )
    name, arguments = normalize(call.name, raw, tools)
    tool = tools.get(name)
    if tool is None:
        raise ToolCallError(f"Unknown tool {call.name!r}. Available tools: {', '.join(sorted(tools))}.")
    try:
        return tool, tool.params.model_validate(arguments)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            problems.append(
                f"missing required argument {where!r}"
                if err["type"] == "missing"
                else f"{where}: {err['msg']}"
            )
        raise ToolCallError(f"Invalid arguments for tool {name!r}: {'; '.join(problems)}.") from exc

"""What every tool is: a name, a pydantic parameter model (its JSON schema is what the model sees),
and an async `execute` that turns validated parameters into an Observation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.events import PlanEntry, ToolCallEvent, ToolResultEvent
from core.messages import ToolCall, ToolSpec
from core.output import OutputBudget
from core.protocols import Sandbox


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
    command_timeout: float
    # per-path contents before each edit, for the editor's undo_edit (lives as long as the session)
    edit_history: dict[str, list[bytes | None]] = field(default_factory=dict)


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
        return _class_spec(type(self))

    def title(self, params: Params) -> str:
        """A one-line label for the action, shown in the editor and the terminal."""
        return self.name

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        raise NotImplementedError


_SPECS: dict[str, ToolSpec] = {}


def _class_spec(cls: type[Tool]) -> ToolSpec:
    """A built-in tool's spec, made once per class (building the JSON schema takes milliseconds,
    and every session asks). Nested models are inlined: some servers' grammars cannot follow
    `$ref`."""
    key = f"{cls.__module__}.{cls.__qualname__}"
    if (known := _SPECS.get(key)) is None:
        known = _SPECS[key] = _make_spec(cls)
    return known


def _make_spec(cls: type[Tool]) -> ToolSpec:
    schema = cls.params.model_json_schema()
    definitions = schema.pop("$defs", {})
    schema = _inline(schema, definitions)
    schema.pop("title", None)
    return ToolSpec(name=cls.name, description=cls.description, parameters=schema)


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with every `$ref` to `#/$defs/X` replaced by X, and no `title`s."""
    if isinstance(node, dict):
        if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


class ToolCallError(Exception):
    """The model's tool call cannot be run; the message goes back to the model as an observation."""


def parse_call(call: ToolCall, tools: dict[str, Tool]) -> tuple[Tool, Params]:
    tool = tools.get(call.name)
    if tool is None:
        raise ToolCallError(f"Unknown tool {call.name!r}. Available tools: {', '.join(sorted(tools))}.")
    try:
        raw: Any = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ToolCallError(
            f"The arguments of tool {call.name!r} are not valid JSON ({exc.msg} at position {exc.pos}). "
            "Send the arguments as one JSON object."
        ) from exc
    if not isinstance(raw, dict):
        raise ToolCallError(
            f"The arguments of tool {call.name!r} must be a JSON object, got {type(raw).__name__}."
        )
    try:
        return tool, tool.params.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            problems.append(
                f"missing required argument {where!r}"
                if err["type"] == "missing"
                else f"{where}: {err['msg']}"
            )
        raise ToolCallError(f"Invalid arguments for tool {call.name!r}: {'; '.join(problems)}.") from exc

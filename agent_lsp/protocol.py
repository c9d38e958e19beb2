"""The `sidehand/*` protocol: the typed params of each request, with the method names and error
codes of `agent_lsp.methods`.

Modelled on the Agent Client Protocol (sessions, prompt turns, a `session/update` stream,
permission requests); the reference with examples is docs/protocol.md. Params are validated with
pydantic (camelCase on the wire); results are plain JSON objects built in `agent_lsp.sessions`."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from agent_lsp.methods import *  # noqa: F403  (the names and codes, re-exported as `protocol.X`)
from core.config import ApprovalMode


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Position(Params):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(Params):
    start: Position
    end: Position

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.start.line, self.start.character, self.end.line, self.end.character)


class ContextItemParams(Params):
    """A file or a selection attached to a prompt. `text` defaults to the open document's text."""

    type: Literal["file", "selection"]
    uri: str
    range: Range | None = None
    text: str | None = None


class NewSessionParams(Params):
    cwd: str | None = None  # a path or a file:// URI; default: the workspace root from initialize
    model: str | None = None
    approval_mode: ApprovalMode | None = None


class SessionParams(Params):
    session_id: str


class PromptParams(SessionParams):
    prompt: str = Field(min_length=1)
    context: tuple[ContextItemParams, ...] = ()


class ForkParams(SessionParams):
    upto_seq: int | None = Field(None, ge=0)


class HunkSelection(Params):
    path: str
    indexes: tuple[int, ...] = Field(min_length=1)


class ChangesParams(SessionParams):
    """Which changes: `paths` (whole files) and/or `hunks` (some hunks of a file). Neither: all."""

    paths: tuple[str, ...] | None = None
    hunks: tuple[HunkSelection, ...] | None = None
    force: bool = False  # accept even when the host file changed since the sandbox copied it
    write: Literal["editor", "disk"] | None = None  # default: editor (workspace/applyEdit) if it can


class RestoreParams(SessionParams):
    checkpoint_id: str = Field(min_length=1)
    # Also go back in the conversation: a new session forked at the checkpoint (this one stays).
    conversation: bool = False


P = TypeVar("P", bound=Params)


class RunCodeActionArgs(Params):
    action: Literal["fix", "explain", "tests", "refactor", "document"]
    uri: str
    range: Range
    diagnostics: tuple[dict[str, Any], ...] = ()


def parse(model: type[P], params: Any) -> P:
    """Validate raw params; the error names each bad field (raised as JSON-RPC InvalidParams)."""
    from pygls.exceptions import JsonRpcInvalidParams

    params = to_plain(params)
    try:
        return model.model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()
        )
        raise JsonRpcInvalidParams(message=f"invalid params: {problems}") from None


def to_plain(value: Any) -> Any:
    """JSON data as dicts and lists (pygls may hand over untyped JSON objects as named tuples)."""
    if hasattr(value, "_asdict"):
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value

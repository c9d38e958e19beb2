"""Asking the MCP client something in the middle of a tool call, in both protocol eras.

Through 2025-11-25 the server sends the question as a request of its own (`elicitation/create`,
`roots/list`) and waits for the answer. From 2026-07-28 on a server may not send requests: the
tool returns an `InputRequiredResult` naming what it needs, and the client calls the tool again
with the answers and the `request_state` it was given (sealed by the SDK, so a client cannot forge
it). `needs_input` carries such a result out of the code that found it needs one."""

from __future__ import annotations

import json
import warnings
from typing import Any

from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, JsonValue, create_model

from core.events import ApprovalRequested
from core.messages import decode_arguments
from core.policy import ApprovalDecision, ApprovalOption, approval_options

ROOTS_KEY = "roots"  # the key of the roots question in input_requests / input_responses


class InputNeeded(Exception):
    """The call cannot go on without the client's answers: return `result` from the tool."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


def is_modern(ctx: Context[Any, Any] | None) -> bool:
    """Whether this request speaks 2026-07-28 or later (questions ride InputRequiredResult)."""
    return ctx is not None and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def can_elicit(ctx: Context[Any, Any]) -> bool:
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return False
    return is_modern(ctx) or ctx.session.can_send_request


def can_list_roots(ctx: Context[Any, Any]) -> bool:
    caps = ctx.client_capabilities
    if caps is None or caps.roots is None:
        return False
    return is_modern(ctx) or ctx.session.can_send_request


def resumed_state(ctx: Context[Any, Any] | None) -> dict[str, Any]:
    """What an earlier round of this call left in `request_state` ({} on the first round)."""
    if not is_modern(ctx) or ctx is None or not ctx.request_state:
        return {}
    try:
        state = json.loads(ctx.request_state)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def input_required(requests: dict[str, Any], state: dict[str, Any]) -> InputRequiredResult:
    return InputRequiredResult(input_requests=requests, request_state=json.dumps(state))


# ---- roots ---------------------------------------------------------------------------------------
async def client_root_uris(ctx: Context[Any, Any]) -> list[str] | None:
    """The client's root URIs: asked over the back channel (older protocol), or read from this
    call's answers (2026-07-28; `InputNeeded` asks for them first). None: it gave none."""
    if not is_modern(ctx):
        with warnings.catch_warnings():  # roots are deprecated in 2026-07-28; older clients use them
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            listed = await ctx.session.list_roots()
        return [str(r.uri) for r in listed.roots]
    answer = (ctx.input_responses or {}).get(ROOTS_KEY)
    if answer is None:
        raise InputNeeded(input_required({ROOTS_KEY: ListRootsRequest()}, {"phase": ROOTS_KEY}))
    if not isinstance(answer, ListRootsResult):
        return None
    return [str(r.uri) for r in answer.roots]


# ---- approvals -----------------------------------------------------------------------------------
def approval_message(task_id: str, request: ApprovalRequested) -> str:
    why = f"\nWhy asked: {request.reason}" if request.reason else ""
    return (
        f"Sidehand task {task_id} wants to run {request.tool} ({request.risk} risk): "
        f"{request.arguments[:1000]}{why}"
    )


def options_for(request: ApprovalRequested) -> list[ApprovalOption]:
    return approval_options(request.tool, decode_arguments(request.arguments), request.risk)


def answer_schema(request: ApprovalRequested) -> type[BaseModel]:
    """The form asked: one choice among this request's options, each with its label."""
    choices: list[JsonValue] = [{"const": o.id, "title": o.label} for o in options_for(request)]
    field = Field(description="What to do with this action", json_schema_extra={"oneOf": choices})
    model: type[BaseModel] = create_model("ApprovalAnswer", decision=(str, field))
    return model


def elicit_request(task_id: str, request: ApprovalRequested) -> ElicitRequest:
    return ElicitRequest(
        params=ElicitRequestFormParams(
            message=approval_message(task_id, request),
            requested_schema=render_elicitation_schema(answer_schema(request)),
        )
    )


def decision_from(
    action: str, content: dict[str, Any] | None, request: ApprovalRequested
) -> ApprovalDecision:
    """The decision an elicitation's answer means: a chosen option, or a rejection."""
    chosen = (content or {}).get("decision") if action == "accept" else None
    for option in options_for(request):
        if option.id == chosen and option.id != "reject":
            return option.decision
    return ApprovalDecision(allow=False, reason=f"the user answered {chosen or action}")


def decision_from_result(answer: object, request: ApprovalRequested) -> ApprovalDecision:
    if not isinstance(answer, ElicitResult):
        return ApprovalDecision(allow=False, reason="the client answered something else than the question")
    content = answer.content if isinstance(answer.content, dict) else None
    return decision_from(answer.action, content, request)

"""The step loop: view → condense → model → tool calls → policy → sandbox → observation.

It leaves through a typed outcome (TurnOutcome.stop_reason). Every event goes through `emit`,
which appends to the log and updates the state. The log is fsynced (off the event loop's thread)
before any action runs, so a crash mid-action is reported on load, never re-run; a step's results
are made durable by the next step's fsync or the turn's end (an OS crash loses at most the step in
flight; a crashed process loses nothing, every event being written as it happens)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from core.condenser import BoundedWindow, window_budget
from core.config import Settings
from core.errors import LLMError
from core.events import (
    AgentMessage,
    AgentMessageChunk,
    Event,
    ReplyNotice,
    StopReason,
    ToolCallEvent,
    ToolResultEvent,
    ToolStarted,
    UsageRecorded,
)
from core.messages import ChatMessage, ToolCall
from core.output import OutputBudget
from core.policy import Policy, Verdict
from core.prompts import system_prompt
from core.protocols import LLM, Condenser, Sandbox
from core.state import State
from core.tool_protocol import ToolProtocol
from core.tools import Observation, Params, Tool, ToolCallError, ToolContext, parse_call

log = logging.getLogger(__name__)

# Asks the user about one action; returns True to run it. Emits the approval events itself.
Approver = Callable[[ToolCallEvent, Verdict], Awaitable[bool]]


@dataclass(frozen=True)
class TurnOutcome:
    stop_reason: StopReason
    message: str = ""
    iterations: int = 0


class Controller:
    def __init__(
        self,
        *,
        settings: Settings,
        llm: LLM,
        sandbox: Callable[[], Awaitable[Sandbox]],
        tools: dict[str, Tool],
        policy: Policy,
        state: State,
        emit: Callable[[Event], Event],
        sync: Callable[[], Awaitable[None]],
        approve: Approver,
        after_tool: Callable[[], Awaitable[object]],
        sandbox_note: Callable[[], str | None],
        outputs: OutputBudget,
        condenser: Condenser | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self._sandbox = sandbox
        self.tools = tools
        self.policy = policy
        self.state = state
        self.emit = emit
        self.sync = sync
        self.approve = approve
        self.after_tool = after_tool
        self.sandbox_note = sandbox_note
        self.outputs = outputs
        self.edit_history: dict[str, list[bytes | None]] = {}
        self._specs = [t.spec_for(settings) for t in tools.values()]
        self._system = ChatMessage(role="system", content=system_prompt(settings))
        profile = settings.profile()
        self.tool_protocol = ToolProtocol(profile.tool_calls or "auto", self._system, self._specs, tools)
        fixed = self.tool_protocol.fixed_tokens()
        budget = window_budget(settings.prompt_token_budget, profile.context_window, fixed)
        self.condenser = condenser or BoundedWindow(budget)
        self._call_ids = {c.id for m in state.messages for c in m.tool_calls}

    async def run_turn(self) -> TurnOutcome:
        """Steps until the agent finishes, a limit is hit, or an error stops it. Cancellation
        (task.cancel) propagates; the session records it."""
        protocol = self.tool_protocol
        if protocol.needs_consulting:
            await protocol.consult(await self.llm.supports_tools())
        iteration = 0
        while iteration < self.settings.max_iterations:
            iteration += 1
            if (budget := self.settings.max_budget) is not None and self.state.usage.cost >= budget:
                return TurnOutcome("budget", f"the session's budget of ${budget:g} is spent", iteration - 1)
            messages, specs = protocol.request(self.condenser.condense(self.state.messages))
            try:
                reply = await self.llm.complete(messages, specs, on_text=self._stream)
            except LLMError as exc:
                if protocol.refused(exc):  # the server takes no tools: the same step, in text mode
                    iteration -= 1
                    continue
                return TurnOutcome("error", str(exc), iteration)
            self.emit(
                UsageRecorded(call=reply.usage, session=self.state.usage + reply.usage, model=reply.model)
            )
            reading = protocol.read(reply, self._call_ids)
            if reading.text:
                self.emit(AgentMessage(text=reading.text))
            if reading.calls:
                if (finished := await self._run_calls(reading.calls)) is not None:
                    return TurnOutcome("end_turn", finished, iteration)
            elif reading.notice is not None:
                self.emit(ReplyNotice(text=reading.notice))
            elif reading.empty_again:
                return TurnOutcome("empty_reply", "the model replied with nothing, twice in a row", iteration)
            else:
                return TurnOutcome("end_turn", reading.text or "", iteration)
        return TurnOutcome(
            "max_iterations",
            f"stopped after {self.settings.max_iterations} steps",
            self.settings.max_iterations,
        )

    def _stream(self, text: str) -> None:
        self.emit(AgentMessageChunk(text=text))

    async def _run_calls(self, calls: tuple[ToolCall, ...]) -> str | None:
        """Log every call of the reply (so they form one assistant message), then run them in order.
        Returns the finish message if the agent called `finish`."""
        parsed: list[tuple[Tool, Params] | ToolCallError] = []
        actions = []
        for call in calls:
            try:
                tool, params = parse_call(call, self.tools)
            except ToolCallError as exc:
                parsed.append(exc)
                title = call.name
            else:
                parsed.append((tool, params))
                title = tool.title(params)
            action = self.emit(
                ToolCallEvent(call_id=call.id, tool=call.name, arguments=call.arguments, title=title)
            )
            assert isinstance(action, ToolCallEvent)
            actions.append(action)
        await self.sync()  # an action is durable before it runs: a crash mid-action is reported on load
        finished = None
        for action, call_parsed in zip(actions, parsed, strict=True):
            if isinstance(call_parsed, ToolCallError):
                observation = Observation(str(call_parsed), error=True)
            else:
                observation = await self._run_one(action, *call_parsed)
            self.emit(_result_event(action, observation))
            if not isinstance(call_parsed, ToolCallError):
                await self._record_files()
            if observation.finish:
                finished = observation.output
        return finished

    async def _run_one(self, action: ToolCallEvent, tool: Tool, params: Params) -> Observation:
        verdict = self.policy.decide(action.tool, params.model_dump(exclude_none=True))
        if verdict.decision == "deny":
            return Observation(f"Not allowed: {verdict.reason}. Choose another way.", error=True)
        if verdict.decision == "ask" and not await self.approve(action, verdict):
            return Observation("The user rejected this action. Ask them or try another approach.", error=True)
        ctx = ToolContext(
            sandbox=await self._sandbox(),
            outputs=self.outputs,
            call_id=action.call_id,
            command_timeout=self.settings.command_timeout,
            edit_history=self.edit_history,
            quiet_timeout=self.settings.command_quiet_timeout,
        )
        note = self.sandbox_note()
        self.emit(ToolStarted(call_id=action.call_id))
        try:
            observation = await tool.execute(params, ctx)
        except asyncio.CancelledError:
            await asyncio.shield(ctx.sandbox.interrupt())
            raise
        return replace(observation, output=f"{note}\n{observation.output}") if note else observation

    async def _record_files(self) -> None:
        """Log what the tool changed in the sandbox. A failure here must not end the turn: the
        next call records it (changes are collected since the last success)."""
        try:
            await self.after_tool()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not record the sandbox's changes after a tool call")


def _result_event(action: ToolCallEvent, obs: Observation) -> ToolResultEvent:
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

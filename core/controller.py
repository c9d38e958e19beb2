"""The step loop: limits → skills → view (condensed) → model → tool calls → policy → sandbox →
observation → rules, stuck check.

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

from core.budgets import TurnBudget
from core.config import Settings
from core.errors import LLMError
from core.events import (
    AgentMessage,
    AgentMessageChunk,
    Event,
    Nudge,
    PlanUpdated,
    ReplyNotice,
    StopReason,
    ToolCallEvent,
    ToolStarted,
    UsageRecorded,
)
from core.messages import ToolCall
from core.next_prompt import PromptBuilder
from core.output import OutputBudget
from core.policy import Policy, Verdict
from core.protocols import LLM, Condenser, Sandbox
from core.skill_guide import SkillGuide
from core.state import State
from core.stuck import Call, StuckDetector
from core.tool_protocol import ToolProtocol
from core.tools import Observation, Params, Tool, ToolCallError, ToolContext, parse_call, result_event

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
        after_tool: Callable[[ToolCallEvent], Awaitable[object]],
        sandbox_note: Callable[[], str | None],
        outputs: OutputBudget,
        condenser: Condenser,
        guide: SkillGuide,
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
        self.guide = guide
        self.prompt = PromptBuilder(settings, state, emit, condenser, tools)
        self.tool_protocol = ToolProtocol(settings.profile().tool_calls or "auto", tools)
        self.stuck = StuckDetector()
        self.edit_history: dict[str, list[bytes | None]] = {}
        self._call_ids = {c.id for m in state.messages for c in m.tool_calls}
        self._steps_done = 0

    async def run_turn(self) -> TurnOutcome:
        """Steps until the agent finishes, a limit is hit, or an error stops it. Cancellation
        (task.cancel) propagates; the session records it."""
        budget = TurnBudget(self.settings, self.state.usage)
        self.stuck.start_turn()
        self._steps_done = 0
        deadline = asyncio.timeout(self.settings.turn_timeout)  # a step still running then is cancelled
        try:
            async with deadline:
                return await self._steps(budget)
        except TimeoutError:
            if not deadline.expired():
                raise
            return TurnOutcome("timeout", budget.timeout_message(), self._steps_done)

    async def _steps(self, budget: TurnBudget) -> TurnOutcome:
        protocol = self.tool_protocol
        if protocol.needs_consulting:
            await protocol.consult(await self.llm.supports_tools())
        self.guide.start_turn()  # the prompt's trigger words are looked at on the first refresh
        iteration = 0
        while iteration < self.settings.max_iterations:
            iteration += 1
            self._steps_done = iteration - 1
            if (limit := budget.check(self.state.usage)) is not None:
                return TurnOutcome(*limit, iteration - 1)
            await self.guide.refresh()  # a skill file edited meanwhile takes effect now
            messages, specs = protocol.request(*await self.prompt.build())
            try:
                reply = await self.llm.complete(messages, specs, on_text=self._stream)
            except LLMError as exc:
                if protocol.refused(exc):  # the server takes no tools: the same step, in text mode
                    iteration -= 1
                    continue
                return TurnOutcome("error", str(exc), iteration)
            window = reply.context_window
            session = self.state.usage + reply.usage
            self.emit(
                UsageRecorded(call=reply.usage, session=session, model=reply.model, context_window=window)
            )
            reading = protocol.read(reply, self._call_ids)
            if reading.text:
                self.emit(AgentMessage(text=reading.text))
            if reading.empty_again:
                return TurnOutcome("empty_reply", "the model replied with nothing, twice in a row", iteration)
            if reading.notice is not None:  # the reply did nothing: a failed step, to the stuck check
                self.emit(ReplyNotice(text=reading.notice))
                calls = [Call("reply", reading.text or "", reading.notice, error=True)]
            elif reading.calls:
                finished, calls = await self._run_calls(reading.calls)
                if finished is not None:
                    return TurnOutcome("end_turn", finished, iteration)
                await self.guide.after_step()
            else:
                return TurnOutcome("end_turn", reading.text or "", iteration)
            if (verdict := self.stuck.after_step(calls)) is not None:
                if verdict.action == "stop":
                    return TurnOutcome("stuck", verdict.text, iteration)
                self.emit(Nudge(pattern=verdict.finding.pattern, text=verdict.text))
        return TurnOutcome(
            "max_iterations",
            f"stopped after {self.settings.max_iterations} steps",
            self.settings.max_iterations,
        )

    def _stream(self, text: str) -> None:
        self.emit(AgentMessageChunk(text=text))

    async def _run_calls(self, calls: tuple[ToolCall, ...]) -> tuple[str | None, list[Call]]:
        """Log every call of the reply (so they form one assistant message), then run them in order.
        Returns the finish message if the agent called `finish`, and what each call returned."""
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
        done: list[Call] = []
        for action, call_parsed in zip(actions, parsed, strict=True):
            if isinstance(call_parsed, ToolCallError):
                observation = Observation(str(call_parsed), error=True)
            elif call_parsed[0].name == "finish" and (failed := sum(c.error for c in done)):
                # written before the results it claims: the reply's other calls failed
                observation = Observation(_unfinished(failed), error=True)
            else:
                observation = await self._run_one(action, *call_parsed)
            self.emit(result_event(action, observation))
            if observation.plan is not None:
                self.emit(PlanUpdated(entries=observation.plan))
            if not isinstance(call_parsed, ToolCallError):
                await self._record_files(action)
            if observation.finish:
                finished = observation.output
            done.append(Call(action.tool, action.arguments, observation.output, observation.error))
        return finished, done

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

    async def _record_files(self, action: ToolCallEvent) -> None:
        """Log what the tool changed in the sandbox (and a checkpoint). A failure here must not end
        the turn: the next call records it (changes are collected since the last success)."""
        try:
            await self.after_tool(action)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not record the sandbox's changes after a tool call")


def _unfinished(failed: int) -> str:
    return (
        f"Not finished: {failed} of the calls before `finish` in this reply failed (their results "
        "are above). Fix what failed first; call `finish` on its own to end anyway."
    )

"""The next model call's messages and tools: the system prompt made from the session's context (the
log's last `ContextLoaded`) and tool set, and the view, condensed first when it has outgrown its
budget (the condensation, and the usage of a summary's model call, are logged)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core.condenser import CHARS_PER_TOKEN, View, estimate_tokens, prompt_budget
from core.config import Settings
from core.events import Event, UsageRecorded
from core.messages import ChatMessage, ToolSpec
from core.prompts import build_system_prompt
from core.protocols import Condenser
from core.state import State
from core.tools import Tool


class PromptBuilder:
    def __init__(
        self,
        settings: Settings,
        state: State,
        emit: Callable[[Event], Event],
        condenser: Condenser,
        tools: Mapping[str, Tool],
    ) -> None:
        self.settings = settings
        self.state = state
        self.emit = emit
        self.condenser = condenser
        self.tools = tools
        self._system: tuple[object, ChatMessage, list[ToolSpec], int] | None = None

    def system_and_tools(self) -> tuple[ChatMessage, list[ToolSpec], int]:
        """The system message, the tool specs and their estimated tokens (made again only when the
        context or the tool set changed)."""
        offered = [name for name in self.tools if name != "skill" or self.state.context.skills]
        key = (self.state.context.id, tuple(offered))
        if self._system is None or self._system[0] != key:
            context = self.state.context
            text = build_system_prompt(
                self.settings, instructions=context.instructions, skills=context.skills, tools=offered
            )
            specs = [self.tools[name].spec_for(self.settings) for name in offered]
            size = len(text) + sum(len(s.model_dump_json()) for s in specs)
            self._system = (key, ChatMessage(role="system", content=text), specs, size // CHARS_PER_TOKEN)
        _, system, specs, tokens = self._system
        return system, specs, tokens

    def prompt_tokens(self, overhead: int) -> int:
        """The prompt's tokens: the last call's count from the provider plus an estimate of what
        was added since; all estimated when there is no count (or the view was condensed since)."""
        messages = self.state.messages
        known = self.state.prompt_tokens
        if known is not None and known[1] <= len(messages):
            return known[0] + sum(estimate_tokens(m) for m in messages[known[1] :])
        return overhead + sum(estimate_tokens(m) for m in messages)

    @property
    def budget(self) -> int:
        window = self.settings.profile().context_window or self.state.context_window
        return prompt_budget(self.settings.prompt_token_budget, window)

    async def build(self) -> tuple[list[ChatMessage], list[ToolSpec]]:
        system, specs, overhead = self.system_and_tools()
        view = View(
            messages=self.state.messages,
            origins=self.state.origins,
            facts=self.state.facts.render,
            prompt_tokens=self.prompt_tokens(overhead),
            budget=self.budget,
        )
        condensed = await self.condenser.condense(view)
        if condensed is not None:
            if condensed.usage is not None:
                self.emit(
                    UsageRecorded(
                        call=condensed.usage,
                        session=self.state.usage + condensed.usage,
                        model=condensed.model,
                        purpose="condenser",
                    )
                )
            self.emit(condensed.event)
        return [system, *self.state.messages], specs

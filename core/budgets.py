"""A task's limits, checked before each model call (so a turn overshoots by one call at most):
its cost in dollars (`max_budget`), its tokens (`max_tokens`: prompt and completion), and its wall
clock (`turn_timeout`; the controller also cancels a step still running at the deadline). Each ends
the turn with its own stop reason. `max_iterations` is the controller's loop bound."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.config import Settings
from core.events import StopReason
from core.messages import Usage

Limit = tuple[StopReason, str]


class TurnBudget:
    """What one turn (one task) may still spend, from the session's usage when it started."""

    def __init__(
        self, settings: Settings, usage_at_start: Usage, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.start = usage_at_start
        self.clock = clock
        self.started = clock()

    @property
    def deadline(self) -> float | None:
        """When the turn must end (on `clock`'s scale), or None."""
        timeout = self.settings.turn_timeout
        return None if timeout is None else self.started + timeout

    def spent(self, usage: Usage) -> Usage:
        return Usage(
            prompt_tokens=usage.prompt_tokens - self.start.prompt_tokens,
            completion_tokens=usage.completion_tokens - self.start.completion_tokens,
            cost=usage.cost - self.start.cost,
        )

    def check(self, usage: Usage) -> Limit | None:
        """The limit this turn has reached, given the session's usage now."""
        spent = self.spent(usage)
        if (budget := self.settings.max_budget) is not None and spent.cost >= budget:
            return "budget", f"the task's budget of ${budget:g} is spent (${spent.cost:.4f})"
        tokens = spent.prompt_tokens + spent.completion_tokens
        if (cap := self.settings.max_tokens) is not None and tokens >= cap:
            return "max_tokens", f"the task used {tokens} tokens (the limit is {cap})"
        if (deadline := self.deadline) is not None and self.clock() >= deadline:
            return "timeout", self.timeout_message()
        return None

    def timeout_message(self) -> str:
        return f"the task ran out of time ({self.settings.turn_timeout:g} s)"

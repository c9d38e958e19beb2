"""The condenser strategies (core/condenser.py) and the facts they keep (core/facts.py), on views
built from events through the state, as a session builds them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.condenser import (
    MASKED_MARK,
    Condensed,
    Strategy,
    StrategyCondenser,
    View,
    estimate_tokens,
    prompt_budget,
)
from core.errors import LLMServerError
from core.events import Event, ToolCallEvent, ToolResultEvent, UserMessage, WorkspaceDelta
from core.facts import REQUIREMENTS_CHARS, SessionFacts
from core.messages import ChatMessage, Usage
from core.state import State


def session(steps: int, output: str = "x" * 2000) -> State:
    """A state after a user message and `steps` edit + test steps."""
    state = State()
    seq = 0

    def add(event: Event) -> None:
        nonlocal seq
        state.apply(event.model_copy(update={"seq": seq}))
        seq += 1

    add(UserMessage(text="Build the app. Requirement: use SQLite."))
    for i in range(steps):
        args = (
            f'{{"command": "str_replace", "path": "/workspace/src/m{i}.py", "old_str": "a", "new_str": "b"}}'
        )
        add(ToolCallEvent(call_id=f"e{i}", tool="editor", arguments=args))
        add(ToolResultEvent(call_id=f"e{i}", tool="editor", output="edited", diff="--- a\n+++ b\n-a\n+b\n"))
        add(WorkspaceDelta(sandbox={f"src/m{i}.py": None} if i == 0 else {}))
        add(ToolCallEvent(call_id=f"t{i}", tool="bash", arguments='{"command": "pytest -q"}'))
        add(
            ToolResultEvent(
                call_id=f"t{i}", tool="bash", output=f"{output}\n{i} passed\n[exit code: 0]", exit_code=0
            )
        )
        if i == steps // 2:
            add(UserMessage(text="Change of plan: use PostgreSQL instead of SQLite."))
    return state


def view_of(state: State, budget: int) -> View:
    tokens = sum(estimate_tokens(m) for m in state.messages)
    return View(state.messages, state.origins, state.facts.render, tokens, budget)


def condenser(
    strategy: Strategy, summary: str | None = "We refactored modules; tests pass."
) -> StrategyCondenser:
    async def summarize(messages: Sequence[ChatMessage]) -> tuple[str, Usage, str | None]:
        if summary is None:
            raise LLMServerError("the summary model is down")
        assert messages and messages[0].role != "tool"
        return summary, Usage(prompt_tokens=100, completion_tokens=20), "cheap-model"

    return StrategyCondenser(strategy, summarize)


def apply(state: State, condensed: Condensed) -> None:
    state.apply(condensed.event.model_copy(update={"seq": state.last_seq + 1}))
    assert state.messages == condensed.messages  # the event and the condenser agree


async def test_a_view_within_budget_is_left_alone() -> None:
    state = session(3)
    strategies: list[Strategy] = ["auto", "none", "window", "masking", "summary"]
    for strategy in strategies:
        assert await condenser(strategy).condense(view_of(state, 1_000_000)) is None


async def test_none_never_condenses() -> None:
    assert await condenser("none").condense(view_of(session(40), 2000)) is None


@pytest.mark.parametrize("strategy", ["window", "summary", "auto"])
async def test_the_facts_survive_every_condensation(strategy: Strategy) -> None:
    state = session(40)
    before = view_of(state, 4000)
    condensed = await condenser(strategy).condense(before)
    assert condensed is not None
    apply(state, condensed)
    prompt = "\n".join(m.content or "" for m in state.messages)
    assert all(f"src/m{i}.py" in prompt for i in range(40))  # every file edited
    assert "Change of plan: use PostgreSQL instead of SQLite." in prompt  # the latest requirement
    assert "Requirement: use SQLite" in prompt and "(latest) Change of plan" in prompt
    assert "Last test run: `pytest -q` → exit 0: 39 passed" in prompt
    assert state.messages[0].content == "Build the app. Requirement: use SQLite."  # the head stays
    assert state.messages[2].role != "tool"  # no result without its call
    assert condensed.event.tokens_after < before.budget // 2 < condensed.event.tokens_before
    assert sum(estimate_tokens(m) for m in state.messages) == condensed.event.tokens_after
    if strategy == "window":
        assert "were dropped to keep the prompt within 4000 tokens" in (state.messages[1].content or "")
        assert condensed.usage is None
    else:
        assert "We refactored modules; tests pass." in (state.messages[1].content or "")
        assert condensed.usage == Usage(prompt_tokens=100, completion_tokens=20)
        assert condensed.event.strategy == "summary"


async def test_a_failed_summary_falls_back_to_the_window() -> None:
    state = session(40)
    condensed = await condenser("summary", summary=None).condense(view_of(state, 4000))
    assert condensed is not None and condensed.event.strategy == "window"
    assert "src/m0.py" in condensed.event.summary


async def test_masking_hides_old_large_results_first() -> None:
    state = session(8, output="y" * 3000)
    tokens = sum(estimate_tokens(m) for m in state.messages)
    condensed = await condenser("auto").condense(view_of(state, tokens - 500))
    assert condensed is not None and condensed.event.strategy == "masking"
    assert condensed.event.forgotten_from == -1 and condensed.event.masked
    apply(state, condensed)
    masked = [m for m in state.messages if (m.content or "").startswith(MASKED_MARK)]
    assert len(masked) == len(condensed.event.masked)
    assert "bash pytest -q" in (masked[0].content or "") and "[exit code: 0]" in (masked[0].content or "")
    assert len(state.messages) == len(view_of(session(8), 0).messages)  # nothing forgotten
    assert "y" * 3000 in (state.messages[-1].content or "")  # the newest result stays whole


async def test_condensing_again_replaces_the_earlier_summary() -> None:
    state = session(40)
    strategy = condenser("window")
    first = await strategy.condense(view_of(state, 4000))
    assert first is not None
    apply(state, first)
    for i in range(40, 80):
        seq = state.last_seq
        state.apply(ToolCallEvent(seq=seq + 1, call_id=f"n{i}", tool="bash", arguments='{"command": "ls"}'))
        state.apply(ToolResultEvent(seq=seq + 2, call_id=f"n{i}", tool="bash", output="z" * 2000))
    second = await strategy.condense(view_of(state, 4000))
    assert second is not None
    apply(state, second)
    summaries = [m for m in state.messages if "were dropped" in (m.content or "")]
    assert len(summaries) == 1  # the first summary was condensed too, its facts carried on
    assert state.origins == sorted(state.origins)


def test_the_budget_follows_a_small_context_window() -> None:
    assert prompt_budget(60_000, None) == 60_000
    assert prompt_budget(60_000, 128_000) == 60_000
    assert prompt_budget(60_000, 8192) == 6553


def test_requirements_too_long_become_a_digest_keeping_the_latest_whole() -> None:
    facts = SessionFacts()
    for i in range(30):
        facts.apply(UserMessage(text=f"Requirement {i}: " + "detail " * 200))
    facts.apply(UserMessage(text="Final: ship it on Friday."))
    text = facts.render()
    assert "31. (latest) Final: ship it on Friday." in text
    assert "1. Requirement 0:" in text  # the first is kept
    assert "messages left out" in text
    assert len(text) < REQUIREMENTS_CHARS + 2000


def test_files_changed_by_commands_and_deleted_are_facts() -> None:
    facts = SessionFacts()
    facts.apply(
        ToolCallEvent(call_id="c", tool="bash", arguments='{"command": "sed -i s/a/b/ x.py && rm y.py"}')
    )
    facts.apply(ToolResultEvent(call_id="c", tool="bash", output="[exit code: 0]", exit_code=0))
    facts.apply(WorkspaceDelta(sandbox={"x.py": None, "y.py": None}))
    facts.apply(WorkspaceDelta(reason="host", sandbox={"z.py": None}))  # the user's, not the agent's
    assert set(facts.edited) == {"x.py", "y.py"}
    assert facts.edited["x.py"] == "deleted by `sed -i s/a/b/ x.py && rm y.py`"
    assert "Last command: `sed -i s/a/b/ x.py && rm y.py` → exit 0" in facts.render()


async def test_a_last_step_larger_than_the_budget_is_not_condensed_again_and_again() -> None:
    state = State()
    state.apply(UserMessage(seq=0, text="go"))
    state.apply(ToolCallEvent(seq=1, call_id="c", tool="bash", arguments='{"command": "cat big.log"}'))
    state.apply(ToolResultEvent(seq=2, call_id="c", tool="bash", output="x" * 40_000))
    assert await condenser("auto").condense(view_of(state, 4000)) is None  # nothing to gain: no model call


def test_a_condensation_survives_the_log_format() -> None:
    from core.events import EVENT_ADAPTER, Condensation

    event = Condensation(
        seq=9, masked={3: "[output hidden]"}, strategy="masking", tokens_before=5, tokens_after=2
    )
    again = EVENT_ADAPTER.validate_json(event.model_dump_json())
    assert again == event and isinstance(again, Condensation) and again.masked == {3: "[output hidden]"}

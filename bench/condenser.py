"""What the condenser saves, and what it keeps: a scripted 300-step session (three turns: the task,
then the user's requirements changed twice) that edits 40 files, runs tests and views files, run
through the real session and controller with the default condenser and with none.

    python -m bench.condenser [--steps 300] [--window 128000]

The model is in-process and scripted; it reports each request's size as its prompt tokens (the
JSON of the messages and tools / 4, as the scripted server does), so the condenser decides on
"tokens the provider counted". The summarizer (the `condenser_model`) answers a deliberately vague
summary that names no file: what survives, survives structurally.

Figures:
(a) total prompt tokens of the agent's calls (plus the summarizer's, for the default) against
    `condenser = "none"`                                          target: <= 35 %
(b) the largest single prompt                                   target: <= the budget (+ one step)
(c) after every condensation, in the next prompt: the share of the files edited so far that it
    names, and the share of the latest requirement's sentences  target: 100 % each

Not a test: it prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.condenser import prompt_budget
from core.config import CondenserStrategy, Settings
from core.events import Condensation, ToolCallEvent
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import LLM, CommandResult, TextSink
from core.sessions import SessionManager
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox

FILES = 40
REQUIREMENTS = (
    "Build a command-line inventory tool in Python. Store the items in JSON files under data/. "
    "Every command prints a table. Cover each module with a test.",
    "Change of plan: store the items in SQLite instead of JSON files. Keep the table output. "
    "Add an --export flag that writes CSV.",
    "Change again: the database is PostgreSQL now, reached through the DATABASE_URL variable. "
    "Drop the CSV export. Every command needs a --verbose flag.",
)
VAGUE_SUMMARY = "The agent kept working on the inventory tool; most tests pass now."


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def script(steps: int) -> list[list[tuple[str, dict[str, object]]]]:
    """Per turn, the calls of each step: an edit, a file view, a test run, in turn, over 40 files."""
    turns: list[list[tuple[str, dict[str, object]]]] = [[], [], []]
    created: set[int] = set()
    for step in range(steps):
        turn = turns[min(2, step * 3 // steps)]
        n = (step // 3 * 7) % FILES
        path = f"/workspace/inventory/mod{n}.py"
        if step % 3 == 0:
            if n not in created:
                created.add(n)
                body = "".join(
                    f"def f{n}_{k}(items):\n    return [i for i in items if i]\n\n" for k in range(12)
                )
                turn.append(("editor", {"command": "create", "path": path, "file_text": body}))
            else:
                old, new = f"def f{n}_0(items):", f"def f{n}_0(items, verbose=False):"
                turn.append(
                    ("editor", {"command": "str_replace", "path": path, "old_str": old, "new_str": new})
                )
                created.discard(n)  # the next edit of this file replaces back
        elif step % 3 == 1:
            turn.append(("editor", {"command": "view", "path": path}))
        else:
            turn.append(("bash", {"command": f"python -m pytest -q tests/test_mod{n}.py"}))
    for turn in turns:
        turn.append(("finish", {"message": "Done for now."}))
    return turns


@dataclass
class BenchModel:
    """Answers from a script; counts the request's size as its prompt tokens."""

    replies: list[tuple[str, dict[str, object]]]
    model: str = "bench"
    context_window: int = 128_000
    requests: list[tuple[str, int]] = field(default_factory=list)  # (prompt text, tokens)

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        wire = json.dumps([m.to_openai() for m in messages]) + json.dumps([t.to_openai() for t in tools])
        tokens = len(wire) // 4
        text = "\n".join((m.content or "") + "".join(c.arguments for c in m.tool_calls) for m in messages)
        self.requests.append((text, tokens))
        usage = Usage(prompt_tokens=tokens, completion_tokens=40)
        if self.model == "summarizer":
            return LLMReply(text=VAGUE_SUMMARY, usage=usage, model=self.model)
        tool, args = self.replies.pop(0)
        call = ToolCall(id=f"call_{len(self.requests)}", name=tool, arguments=json.dumps(args))
        return LLMReply(tool_calls=(call,), usage=usage, model=self.model, context_window=self.context_window)

    async def supports_tools(self) -> bool | None:
        return True

    async def aclose(self) -> None:
        pass


def pytest_output(command: str) -> CommandResult:
    lines = [f"tests/test_x.py::test_case_{i} PASSED" for i in range(60)]
    return CommandResult("\n".join(lines) + "\n60 passed in 0.42s\n", 0)


@dataclass
class Run:
    total: int
    largest: int
    summarizer: int
    shares: list[tuple[int, float, float, int]]  # (step, files named, latest requirement named, files so far)
    bare: list[tuple[float, float]]  # the same shares with the facts block taken out of the prompt
    condensations: list[str]


async def run(strategy: CondenserStrategy, steps: int, window: int, root: Path) -> Run:
    turns = script(steps)
    agent = BenchModel([call for turn in turns for call in turn], context_window=window)
    summarizer = BenchModel([], model="summarizer")
    workspace = root / strategy
    workspace.mkdir(parents=True)

    async def sandbox(ws: Path, session_id: str) -> InMemorySandbox:
        return InMemorySandbox({}, handler=pytest_output)

    def models(settings: Settings) -> LLM:
        return summarizer if settings.model == "summarizer" else agent

    settings = Settings(
        model="bench",
        sessions_dir=root / f"sessions-{strategy}",
        condenser=strategy,
        condenser_model="summarizer",
        max_iterations=steps + 10,
        user_skills_dir=None,
        mcp_config=None,
    )
    manager = SessionManager(settings, FakeSandboxFactory(sandbox), models)
    session = await manager.create(workspace)
    for requirement in REQUIREMENTS:
        await session.prompt(requirement)
    events = session.store.events(session.id)
    await manager.aclose()

    shares = []
    bare = []
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    for condensation in (e for e in events if isinstance(e, Condensation)):
        made = sum(1 for c in calls if c.seq < condensation.seq)  # agent requests made before it
        if made >= len(agent.requests):
            continue
        prompt = agent.requests[made][0]
        edited = {
            json.loads(c.arguments)["path"].removeprefix("/workspace/")
            for c in calls
            if c.seq < condensation.seq and c.tool == "editor" and '"view"' not in c.arguments
        }
        latest = next(
            r for r in reversed(REQUIREMENTS) if any(r == u for u in _users_before(events, condensation.seq))
        )
        shares.append((made, *_shares(prompt, edited, latest), len(edited)))
        facts = (
            condensation.summary[condensation.summary.find("## Facts kept") :] if condensation.summary else ""
        )
        bare.append(_shares(prompt.replace(facts, "") if facts else prompt, edited, latest))
    return Run(
        total=sum(t for _, t in agent.requests),
        largest=max(t for _, t in agent.requests),
        summarizer=sum(t for _, t in summarizer.requests),
        shares=shares,
        bare=bare,
        condensations=[e.strategy for e in events if isinstance(e, Condensation)],
    )


def _shares(prompt: str, edited: set[str], latest: str) -> tuple[float, float]:
    named = sum(1 for path in edited if path in prompt) / max(1, len(edited))
    kept = sum(1 for s in sentences(latest) if s in prompt) / len(sentences(latest))
    return named, kept


def _users_before(events: Sequence[object], seq: int) -> list[str]:
    return [e.text for e in events if getattr(e, "kind", "") == "user_message" and e.seq < seq]  # type: ignore[attr-defined]


def report(name: str, result: Run, baseline: Run, budget: int, shares: bool) -> None:
    total = result.total + result.summarizer
    kinds = ", ".join(f"{k} {result.condensations.count(k)}" for k in sorted(set(result.condensations)))
    print(
        f"{name:<34} {result.total:>11,} + summarizer {result.summarizer:>7,} = {total / baseline.total:6.1%}"
        f"   largest {result.largest:>7,} ({result.largest / budget:4.0%} of {budget:,})   condensations: {kinds}"
    )
    worst_files = min((named for _, named, _, _ in result.shares), default=1.0)
    worst_requirement = min((kept for _, _, kept, _ in result.shares), default=1.0)
    print(
        f"{'':<34} after every condensation: files named >= {worst_files:.0%}, latest requirement >= {worst_requirement:.0%}"
    )
    if shares:
        for (step, named, kept, count), (bare_named, bare_kept) in zip(
            result.shares, result.bare, strict=True
        ):
            print(
                f"{'':<36}after step {step:>3}: files {named:.0%} of {count}, latest requirement {kept:.0%}"
                f"   (without the facts block: files {bare_named:.0%}, requirement {bare_kept:.0%})"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--window", type=int, nargs="+", default=[128_000, 32_768], help="context windows")
    args = parser.parse_args()
    default_budget = Settings().prompt_token_budget
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline = await run("none", args.steps, args.window[0], root / "none")
        print(f"{args.steps} steps, {FILES} files edited, the requirements changed twice")
        print(f"{'none':<34} {baseline.total:>11,} prompt tokens   largest {baseline.largest:,}")
        for window in args.window:
            budget = prompt_budget(default_budget, window)
            result = await run("auto", args.steps, window, root / f"auto{window}")
            report(f"auto (the default), window {window:,}", result, baseline, budget, shares=True)
        budget = prompt_budget(default_budget, args.window[0])
        for strategy in ("window", "masking", "summary"):
            result = await run(strategy, args.steps, args.window[0], root / strategy)
            report(f"{strategy}, window {args.window[0]:,}", result, baseline, budget, shares=False)


if __name__ == "__main__":
    asyncio.run(main())

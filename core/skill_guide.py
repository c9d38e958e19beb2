"""A session's skills at work (the finding and parsing is core/skills.py's):

- before each model call, the repository's context is read again (cheap when nothing changed) and
  a `ContextLoaded` event is logged when it differs from the last one: the system prompt is built
  from the log, so replay and fork show exactly what the model was told;
- when a turn starts, skills whose trigger words occur in the user's message are given to the
  model (`SkillInjected`, at the turn's first refresh), each at most once per session;
- after each step, the nested AGENTS.md above the files the agent read or changed are given to it
  the same way (once each);
- a skill file that cannot be used becomes a `Notice` (once per session per problem);
- the `skill` tool loads a listed skill by name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from core.events import ContextFile, ContextLoaded, Event, Notice, SkillInjected, SkillListing
from core.skills import Catalog, InstructionFile, Skill, SkillFinder, SkillProblem
from core.state import State
from core.tools import Observation

MAX_SKILL_TEXT = 30_000  # characters of one skill given to the model (~7,500 tokens)


def skill_text(skill: Skill, trigger: str | None = None) -> str:
    why = f' trigger="{trigger}"' if trigger else ""
    body = skill.body
    if len(body) > MAX_SKILL_TEXT:
        body = (
            body[:MAX_SKILL_TEXT]
            + f"\n[… cut here: the skill has {len(skill.body)} characters; read {skill.path}]"
        )
    return f'<skill name="{skill.name}" path="{skill.path}"{why}>\n{body}\n</skill>'


def rule_text(rule: InstructionFile, touched: str) -> str:
    folder = rule.path.rpartition("/")[0]
    return (
        f"[Rules for the files under {folder}/, from {rule.path} (you just worked on {touched}). "
        f"Follow them for everything in that folder.]\n\n{rule.text}"
    )


class SkillGuide:
    def __init__(
        self, workspace: Path, user_skills: Path | None, state: State, emit: Callable[[Event], Event]
    ) -> None:
        self.finder = SkillFinder(workspace, user_skills)
        self.state = state
        self.emit = emit
        self.catalog = Catalog()
        self._touched_seen = len(state.facts.touched)  # files before this point were handled
        self._new_prompt = False

    def start_turn(self) -> None:
        """A turn starts: the next refresh looks for trigger words in its user message."""
        self._new_prompt = True

    async def refresh(self) -> None:
        """Read the skills again; log the context when it changed, and new problems; at a turn's
        start, give the model the skills its message triggers."""
        self.catalog = await asyncio.to_thread(self.finder.scan)
        loaded = ContextLoaded(
            instructions=tuple(ContextFile(path=f.path, text=f.text) for f in self.catalog.instructions),
            skills=tuple(
                SkillListing(name=s.name, description=s.description, path=s.path)
                for s in self.catalog.skills.values()
            ),
        )
        current = self.state.context
        if (loaded.instructions, loaded.skills) != (current.instructions, current.skills):
            self.emit(loaded)
        self._notice(self.catalog.problems)
        if self._new_prompt:
            self._new_prompt = False
            requirements = self.state.facts.requirements
            self.on_prompt(requirements[-1] if requirements else "")

    def on_prompt(self, text: str) -> None:
        """Give the model the skills the user's message triggers (not given before)."""
        for skill in self.catalog.skills.values():
            if skill.path in self.state.injected or skill.name in self.state.facts.skills_used:
                continue
            if (trigger := skill.trigger_in(text)) is not None:
                self.emit(
                    SkillInjected(
                        name=skill.name,
                        path=skill.path,
                        reason="trigger",
                        trigger=trigger,
                        text=skill_text(skill, trigger),
                    )
                )

    async def after_step(self) -> None:
        """Give the model the nested AGENTS.md above the files it touched (not given before)."""
        touched = self.state.facts.touched[self._touched_seen :]
        self._touched_seen = len(self.state.facts.touched)
        for rel in dict.fromkeys(touched):
            found = await asyncio.to_thread(self._rules, rel)
            self._notice([f for f in found if isinstance(f, SkillProblem)])
            for rule in found:
                if isinstance(rule, InstructionFile) and rule.path not in self.state.injected:
                    self.emit(
                        SkillInjected(
                            name=rule.path,
                            path=rule.path,
                            reason="rule",
                            trigger=rel,
                            text=rule_text(rule, rel),
                        )
                    )

    def _rules(self, rel: str) -> list[InstructionFile | SkillProblem]:
        return list(self.finder.rules_for(rel))

    def load(self, name: str) -> Observation:
        """The `skill` tool: a listed skill's text."""
        skill = self.catalog.skills.get(name)
        if skill is None:
            known = ", ".join(self.catalog.skills) or "none"
            return Observation(f"There is no skill named {name!r}. The skills are: {known}.", error=True)
        return Observation(skill_text(skill))

    @property
    def has_skills(self) -> bool:
        return bool(self.catalog.skills)

    def _notice(self, problems: list[SkillProblem] | tuple[SkillProblem, ...]) -> None:
        for problem in problems:
            if str(problem) not in self.state.noticed:
                self.emit(Notice(level="warning", message=str(problem)))

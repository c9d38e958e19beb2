"""The workspace's skills offered to MCP clients as prompts, found and parsed by core.skills (as
the agent's own are): each always-on instruction file (`AGENTS.md` → `agents-md`, `CLAUDE.md` →
`claude-md`, …) and each skill under its name. Read again on each listing (a file is parsed again
only when it changed), so edits show up at once; a file that cannot be used is reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.skills import SkillFinder, SkillProblem

INSTRUCTION_PROMPTS = {
    "AGENTS.md": ("agents-md", "Project instructions"),
    "CLAUDE.md": ("claude-md", "Project instructions for Claude Code"),
    ".cursorrules": ("cursorrules", "Project rules for Cursor"),
    ".github/copilot-instructions.md": ("copilot-instructions", "Project instructions for Copilot"),
    ".openhands/microagents/repo.md": ("openhands-repo", "Project instructions for OpenHands"),
}


@dataclass(frozen=True)
class SkillPrompt:
    name: str
    description: str
    path: Path
    body: str


class SkillPrompts:
    """The prompts of the allowed roots; with several roots, a name found again gets its root's
    folder name in front."""

    def __init__(self) -> None:
        self._finders: dict[Path, SkillFinder] = {}

    def discover(self, roots: Sequence[Path]) -> tuple[dict[str, SkillPrompt], list[SkillProblem]]:
        found: dict[str, SkillPrompt] = {}
        problems: list[SkillProblem] = []
        for root in roots:
            finder = self._finders.setdefault(root, SkillFinder(root))
            catalog = finder.scan()
            problems += catalog.problems
            prompts = [
                SkillPrompt(name, f"{what} ({root / f.path})", root / f.path, f.text)
                for f in catalog.instructions
                for name, what in [INSTRUCTION_PROMPTS.get(f.path, (f.path, "Project instructions"))]
            ]
            prompts += [
                SkillPrompt(s.name, s.description, root / s.path, s.body) for s in catalog.skills.values()
            ]
            for prompt in prompts:
                name = prompt.name if prompt.name not in found else f"{root.name}-{prompt.name}"
                if name not in found:
                    found[name] = SkillPrompt(name, prompt.description, prompt.path, prompt.body)
        return found, problems

"""The system prompt, composed of sections: who the agent is and how it works, the repository's
always-on instructions (AGENTS.md and the files other agents' users bring), and the skills it may
load. Each section is a small function; `build_system_prompt` joins those that have something to
say."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from core.events import ContextFile, SkillListing
from core.protocols import WORKDIR


def role_section() -> str:
    return f"""You are Sidehand, an autonomous coding agent working in the user's project.

The project is at {WORKDIR} inside a sandbox (a Docker container holding a copy of the project).
Everything you do runs there; the user reviews your changes before they reach their own files."""


def working_section(tools: Collection[str]) -> str:
    lines = [
        "How to work:",
        "- Explore before you change things: look at the relevant files, then make focused edits.",
        "- Use the `editor` tool to view and edit files, and `bash` to run commands, tests and scripts.",
        "- Commands get no standard input: pass non-interactive flags. The sandbox may have no network.",
        "- After changing code, run it or its tests to check that it works.",
    ]
    if "plan" in tools:
        lines.append(
            "- For a task of several steps, write a plan with the `plan` tool and keep it up to date "
            "(one item in_progress at a time); the user sees it."
        )
    lines.append(
        "- When the task is done (or cannot be done), call `finish` with a short summary for the user."
    )
    return "\n".join(lines)


def instructions_section(files: Sequence[ContextFile]) -> str:
    if not files:
        return ""
    parts = [
        "## Project instructions\n\nThe repository gives these instructions. Follow them unless the "
        "user asks otherwise."
    ]
    parts += [f"### {f.path}\n\n{f.text}" for f in files]
    return "\n\n".join(parts)


MAX_LISTED_SKILLS = 100


def skills_section(skills: Sequence[SkillListing]) -> str:
    if not skills:
        return ""
    listed = "\n".join(f"- {s.name}: {s.description[:300]}" for s in skills[:MAX_LISTED_SKILLS])
    if len(skills) > MAX_LISTED_SKILLS:
        listed += f"\n- … and {len(skills) - MAX_LISTED_SKILLS} more (the `skill` tool names them all)"
    return (
        "## Skills\n\nSkills are instructions for particular kinds of work. When the task calls for "
        f"one, load it with the `skill` tool (by name) and follow it:\n{listed}"
    )


def build_system_prompt(
    *,
    instructions: Sequence[ContextFile] = (),
    skills: Sequence[SkillListing] = (),
    tools: Collection[str] = (),
) -> str:
    sections = [
        role_section(),
        working_section(tools),
        instructions_section(instructions),
        skills_section(skills),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


SYSTEM_PROMPT = build_system_prompt()  # with no instructions, skills or plan tool

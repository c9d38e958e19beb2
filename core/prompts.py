"""The system prompt, composed of sections: who the agent is and how it works, what the sandbox
has (and whether its network is on), the repository's always-on instructions (AGENTS.md and the
files other agents' users bring), and the skills it may load. Each section is a small function;
`build_system_prompt` joins those that have something to say."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from core.config import DEFAULT_IMAGE, DEFAULT_IMAGE_TOOLS, Settings
from core.events import ContextFile, SkillListing
from core.protocols import WORKDIR


def role_section() -> str:
    return f"""You are Sidehand, an autonomous coding agent working in the user's project.

The project is at {WORKDIR} inside a sandbox (a Docker container holding a copy of the project).
Everything you do runs there; the user reviews your changes before they reach their own files."""


def working_section(tools: Collection[str]) -> str:
    lines = [
        "How to work:",
        "- Do the work yourself with the tools: the user does not run commands or edit files for you.",
        "- Explore before you change things: look at the relevant files, then make focused edits.",
        "- Use the `editor` tool to view and edit files, and `bash` to run commands, tests and scripts.",
        "- Commands that read input wait for it: pass non-interactive flags (-y, --no-pager).",
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


def sandbox_section(settings: Settings) -> str:
    """What the sandbox has, and whether it can reach the network."""
    if settings.sandbox_image == DEFAULT_IMAGE:
        has = f"The sandbox is Debian Linux with {DEFAULT_IMAGE_TOOLS}."
    else:
        has = (
            f"The sandbox runs the image {settings.sandbox_image}; check what it has with "
            "`command -v NAME` before relying on a tool."
        )
    if settings.network:
        network = "The sandbox can reach the network."
    else:
        network = (
            "The network is off: nothing can be downloaded or installed (pip, apt, npm and git clone "
            "fail). Work with what is installed."
        )
    return f"The sandbox:\n- {has}\n- {network}"


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
    settings: Settings,
    *,
    instructions: Sequence[ContextFile] = (),
    skills: Sequence[SkillListing] = (),
    tools: Collection[str] = (),
) -> str:
    sections = [
        role_section(),
        working_section(tools),
        sandbox_section(settings),
        instructions_section(instructions),
        skills_section(skills),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


# with the default settings and no instructions, skills or plan tool
SYSTEM_PROMPT = build_system_prompt(Settings())

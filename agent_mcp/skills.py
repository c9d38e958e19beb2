"""Skills found in the allowed workspace roots, offered to MCP clients as prompts: `AGENTS.md`,
`.agents/skills/<name>/SKILL.md` and `.agents/skills/<name>.md` (name and description from the
front matter, else from the file). Read fresh on each listing, so edits show up at once."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SKILL_BYTES = 200_000
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path
    body: str


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """`key: value` pairs of a leading `---` block (flat YAML, quotes stripped), and the rest."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip() and not line.startswith((" ", "\t")):
                    meta[key.strip()] = value.strip().strip("\"'")
            return meta, "".join(lines[end + 1 :])
    return {}, text


def _first_line(body: str) -> str:
    for line in body.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:200]
    return ""


def _candidates(root: Path) -> Iterator[tuple[Path, str]]:
    agents = root / "AGENTS.md"
    if agents.is_file():
        yield agents, "agents-md"
    skills = root / ".agents" / "skills"
    if skills.is_dir():
        for path in sorted(skills.glob("*/SKILL.md")):
            yield path, path.parent.name
        for path in sorted(skills.glob("*.md")):
            yield path, path.stem


def load_skill(path: Path, default_name: str) -> Skill | None:
    try:
        if path.stat().st_size > MAX_SKILL_BYTES:
            log.warning("skill %s is larger than %d bytes; skipped", path, MAX_SKILL_BYTES)
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read skill %s: %s", path, exc)
        return None
    meta, body = split_front_matter(text)
    name = _NAME.sub("-", meta.get("name") or default_name).strip("-") or default_name
    if default_name == "agents-md" and path.name == "AGENTS.md":
        description = meta.get("description") or f"Project instructions ({path})"
    else:
        description = meta.get("description") or _first_line(body) or name
    return Skill(name=name, description=description, path=path, body=body.strip())


def discover_skills(roots: Sequence[Path]) -> dict[str, Skill]:
    """Skills by name; with several roots, a name found again gets its root's folder name in front."""
    found: dict[str, Skill] = {}
    for root in roots:
        for path, default_name in _candidates(root):
            skill = load_skill(path, default_name)
            if skill is None:
                continue
            name = skill.name if skill.name not in found else f"{root.name}-{skill.name}"
            if name in found:
                continue
            found[name] = Skill(name=name, description=skill.description, path=skill.path, body=skill.body)
    return found

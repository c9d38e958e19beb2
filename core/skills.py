"""Skills: what a repository (and its user) tells the agent, found and parsed in this one place for
every front (the agent's system prompt and its `skill` tool, the MCP server's prompts).

- Instruction files, always on (they go in the system prompt): `AGENTS.md`, `CLAUDE.md`,
  `.cursorrules` and `.github/copilot-instructions.md` at the workspace root, and the legacy
  `.openhands/microagents/repo.md`.
- Nested `AGENTS.md` files: rules for their folder, given to the model the first time it reads or
  edits a file below them (`rules_for`).
- Skills: `.agents/skills/<name>/SKILL.md` (the AgentSkills format: YAML front matter with `name`,
  `description`, optional `triggers`), plain `.agents/skills/<name>.md`, the legacy
  `.openhands/microagents/<name>.md`, and the user's own in `~/.agents/skills` (same layout). The
  model sees their names and descriptions and loads one through the `skill` tool; a skill with
  `triggers` is also given to the model when one of them appears, as a whole word, in a user
  message.

Files are read through HostWorkspace, so a symlink never leads a read out of the folder. A file
that cannot be used (unreadable, not UTF-8, too large, bad YAML, a field of the wrong type) is a
`SkillProblem` that the fronts report; it is skipped, never fatal. `SkillFinder.scan` parses a file
again only when its size or modification time changed, so it is cheap to call before every step:
edits to skills take effect at once."""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import UnsafePathError
from core.host_workspace import HostWorkspace

log = logging.getLogger(__name__)

MAX_SKILL_BYTES = 200_000  # a larger file is refused: it would crowd out the work
MAX_INSTRUCTION_CHARS = 20_000  # of one always-on file in the system prompt (cut beyond, with a notice)
MAX_DESCRIPTION_CHARS = 1024  # the AgentSkills limit
INSTRUCTION_FILES = (
    "AGENTS.md",
    "CLAUDE.md",
    ".cursorrules",
    ".github/copilot-instructions.md",
    ".openhands/microagents/repo.md",
)
SKILL_DIRS = (".agents/skills", ".openhands/microagents")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class InstructionFile:
    path: str  # as shown to the model and the user: workspace-relative
    text: str


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: str  # workspace-relative, or under ~/.agents/skills for the user's own
    body: str  # the text after the front matter
    triggers: tuple[str, ...] = ()

    def trigger_in(self, text: str) -> str | None:
        """The first trigger that occurs in `text` as a whole word (case-insensitive), or None."""
        return next((t for t in self.triggers if trigger_pattern(t).search(text)), None)


@dataclass(frozen=True)
class SkillProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"skill file {self.path}: {self.message}; it is skipped"


@dataclass(frozen=True)
class Catalog:
    instructions: tuple[InstructionFile, ...] = ()
    skills: dict[str, Skill] = field(default_factory=dict)  # by name, in the order found
    problems: tuple[SkillProblem, ...] = ()


def trigger_pattern(trigger: str) -> re.Pattern[str]:
    """`trigger` as a whole word or phrase: "react" matches "React app", never "reactor"."""
    words = r"\s+".join(re.escape(w) for w in trigger.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


class SkillError(ValueError):
    """Why one skill file cannot be used (becomes a SkillProblem)."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML mapping of a leading `---` block and the text after it. Raises SkillError for a
    block that is not closed, not valid YAML, or not a mapping."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("".join(lines[1:end]))
            except yaml.YAMLError as exc:
                raise SkillError(f"its front matter is not valid YAML ({_one_line(str(exc))})") from exc
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise SkillError("its front matter is not a mapping of `key: value` lines")
            return meta, "".join(lines[end + 1 :])
    raise SkillError("its front matter (the block after the first `---` line) is never closed by `---`")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _text_field(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise SkillError(f"`{key}` must be a string, not {type(value).__name__}")
    return str(value).strip() or None


def _triggers(meta: dict[str, Any]) -> tuple[str, ...]:
    value = meta.get("triggers")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str | int | float) for t in value):
        raise SkillError("`triggers` must be a list of words")
    return tuple(dict.fromkeys(str(t).strip() for t in value if str(t).strip()))


def _first_line(body: str) -> str:
    for line in body.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:200]
    return ""


def parse_skill(text: str, path: str, default_name: str) -> Skill | InstructionFile:
    """A skill file's text as a Skill (or, for a legacy `type: repo` microagent without triggers,
    an always-on InstructionFile). Raises SkillError."""
    meta, body = split_front_matter(text)
    triggers = _triggers(meta)
    if meta.get("type") == "repo" and not triggers:
        return InstructionFile(path, body.strip())
    name = _BAD_NAME_CHARS.sub("-", _text_field(meta, "name") or default_name).strip("-.")
    if not name:
        raise SkillError("it has no usable `name`")
    description = _text_field(meta, "description") or _first_line(body) or name
    return Skill(
        name=name[:64],
        description=_one_line(description)[:MAX_DESCRIPTION_CHARS],
        path=path,
        body=body.strip(),
        triggers=triggers,
    )


Stamp = tuple[int, int]  # a file's size and modification time (ns): re-read when it changes


class _Root:
    """One folder skills are read from: the workspace, or the user's skills folder."""

    def __init__(self, folder: Path, shown: str) -> None:
        self.host = HostWorkspace(folder)
        self.shown = shown  # prefix of the paths shown ("" for the workspace)

    def show(self, rel: str) -> str:
        return f"{self.shown}/{rel}" if self.shown else rel


def _shown_folder(folder: Path) -> str:
    """The user's folder as people write it (~/... under the home folder)."""
    try:
        return "~/" + folder.expanduser().relative_to(Path.home()).as_posix()
    except ValueError:
        return folder.as_posix()


class SkillFinder:
    """The skills of one workspace (and the user's own), re-read when their files change."""

    def __init__(self, workspace: Path, user_skills: Path | None = None) -> None:
        self.workspace = _Root(workspace, "")
        self.user = _Root(user_skills.expanduser(), _shown_folder(user_skills)) if user_skills else None
        self._cache: dict[str, tuple[Stamp, Skill | InstructionFile | SkillProblem]] = {}
        self._listings: dict[str, dict[str, tuple[str, int, int]]] = {}

    def scan(self) -> Catalog:
        self._listings = {}
        instructions: list[InstructionFile] = []
        skills: dict[str, Skill] = {}
        problems: list[SkillProblem] = []
        for root, rel, default_name, stamp in self._candidates(problems):
            found = self._load(root, rel, default_name, stamp)
            if isinstance(found, SkillProblem):
                problems.append(found)
            elif isinstance(found, InstructionFile):
                if found.text:
                    instructions.append(found)
            elif found.name in skills:
                other = skills[found.name].path
                problems.append(SkillProblem(found.path, f"another skill is named {found.name!r} ({other})"))
            else:
                skills[found.name] = found
        return Catalog(tuple(instructions), skills, tuple(problems))

    def rules_for(self, rel: str) -> Iterator[InstructionFile | SkillProblem]:
        """The nested AGENTS.md files of the folders that hold `rel` (a workspace-relative file
        path), outermost first; the root's is always on and not repeated here."""
        parts = posixpath.normpath(rel).split("/")[:-1]
        if not parts or parts[0] in ("", ".", ".."):
            return
        for depth in range(1, len(parts) + 1):
            path = "/".join([*parts[:depth], "AGENTS.md"])
            try:
                data = self.workspace.host.read(path)
            except UnsafePathError as exc:
                yield SkillProblem(path, str(exc))
                continue
            if data is None:
                continue
            try:
                text = _decode(data)
            except SkillError as exc:
                yield SkillProblem(path, str(exc))
                continue
            if text.strip():
                yield InstructionFile(path, _cut_instruction(text.strip()))

    # ---- finding and reading -------------------------------------------------------------------
    def _candidates(self, problems: list[SkillProblem]) -> Iterator[tuple[_Root, str, str, Stamp]]:
        """(root, relative path, default skill name, (size, mtime)) of every file that may hold a
        skill; the default name is "" for an always-on instruction file."""
        for rel in INSTRUCTION_FILES:
            folder, _, name = rel.rpartition("/")
            kind, size, mtime = self._listing(self.workspace, folder, problems).get(name, ("", 0, 0))
            if kind == "file":
                yield self.workspace, rel, "", (size, mtime)
        for folder in SKILL_DIRS:
            yield from self._skill_files(self.workspace, folder, problems)
        if self.user is not None:
            yield from self._skill_files(self.user, "", problems)

    def _skill_files(
        self, root: _Root, folder: str, problems: list[SkillProblem]
    ) -> Iterator[tuple[_Root, str, str, Stamp]]:
        prefix = f"{folder}/" if folder else ""
        for name, (kind, size, mtime) in sorted(self._listing(root, folder, problems).items()):
            if kind == "dir" and not name.startswith("."):
                sub = self._listing(root, prefix + name, problems)
                if (entry := sub.get("SKILL.md")) is not None and entry[0] == "file":
                    yield root, f"{prefix}{name}/SKILL.md", name, entry[1:]
                elif folder.startswith(".openhands"):  # the legacy layout: microagents/knowledge/*.md
                    for sub_name, (sub_kind, sub_size, sub_mtime) in sorted(sub.items()):
                        if sub_kind == "file" and sub_name.endswith(".md"):
                            rel = f"{prefix}{name}/{sub_name}"
                            yield root, rel, sub_name.removesuffix(".md"), (sub_size, sub_mtime)
            elif (
                kind == "file"
                and name.endswith(".md")
                and f"{prefix}{name}" not in INSTRUCTION_FILES
                and name.upper() not in ("README.MD", "SKILL.MD")
            ):
                yield root, prefix + name, name.removesuffix(".md"), (size, mtime)

    def _listing(
        self, root: _Root, folder: str, problems: list[SkillProblem]
    ) -> dict[str, tuple[str, int, int]]:
        key = root.show(folder) or "."
        if key not in self._listings:  # each folder once per scan (the root holds several files)
            try:
                self._listings[key] = root.host.list_files(folder)
            except UnsafePathError as exc:
                problems.append(SkillProblem(key, str(exc)))
                self._listings[key] = {}
        return self._listings[key]

    def _load(
        self, root: _Root, rel: str, default_name: str, stamp: Stamp
    ) -> Skill | InstructionFile | SkillProblem:
        shown = root.show(rel)
        cached = self._cache.get(shown)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = self._read(root, rel, shown, default_name, stamp[0])
        self._cache[shown] = (stamp, found)
        if isinstance(found, SkillProblem):
            log.warning("%s", found)
        return found

    @staticmethod
    def _read(
        root: _Root, rel: str, shown: str, default_name: str, size: int
    ) -> Skill | InstructionFile | SkillProblem:
        if size > MAX_SKILL_BYTES:
            return SkillProblem(shown, f"it is larger than {MAX_SKILL_BYTES} bytes")
        try:
            data = root.host.read(rel)
            if data is None:
                raise SkillError("it disappeared while it was read")
            text = _decode(data)
            if not default_name:  # an always-on instruction file: its text, as it is
                return InstructionFile(shown, _cut_instruction(text.strip()))
            return parse_skill(text, shown, default_name)
        except (SkillError, UnsafePathError) as exc:
            return SkillProblem(shown, str(exc))


def _decode(data: bytes) -> str:
    if len(data) > MAX_SKILL_BYTES:
        raise SkillError(f"it is larger than {MAX_SKILL_BYTES} bytes")
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise SkillError(f"it is not UTF-8 text (byte {exc.start})") from exc


def _cut_instruction(text: str) -> str:
    if len(text) <= MAX_INSTRUCTION_CHARS:
        return text
    return text[:MAX_INSTRUCTION_CHARS] + f"\n[… cut: the file has {len(text)} characters]"

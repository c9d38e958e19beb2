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
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import UnsafePathError
from core.host_workspace import HostWorkspace
from core.paths import escape_path, unescape_path

log = logging.getLogger(__name__)

MAX_SKILL_BYTES = 200_000  # a larger file is refused: it would crowd out the work
MAX_INSTRUCTION_CHARS = 20_000  # of one always-on file in the system prompt (cut beyond, marked)
MAX_INSTRUCTIONS_CHARS = 40_000  # of all of them together (later files are cut, marked)
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
    return "".join(ch for ch in " ".join(text.split()) if ch.isprintable())[:300]


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
        return InstructionFile(path, _cut_instruction(body.strip()))
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
        """`rel` as shown to the model and the user (escaped: a name may hold control characters)."""
        return escape_path(f"{self.shown}/{rel}" if self.shown else rel)


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
        self._cache: dict[str, tuple[tuple[str, Stamp], Skill | InstructionFile | SkillProblem]] = {}
        self._listings: dict[str, dict[str, tuple[str, int, int]]] = {}

    def scan(self) -> Catalog:
        self._listings = {}
        instructions: list[InstructionFile] = []
        skills: dict[str, Skill] = {}
        problems: list[SkillProblem] = []
        for candidate in self._candidates(problems):
            found = self._load(candidate)
            if isinstance(found, SkillProblem):
                problems.append(found)
            elif isinstance(found, InstructionFile):
                # CLAUDE.md is often a link to AGENTS.md: the same text once is enough
                if found.text and all(found.text != known.text for known in instructions):
                    room = MAX_INSTRUCTIONS_CHARS - sum(len(known.text) for known in instructions)
                    if room > 0:
                        instructions.append(InstructionFile(found.path, _cut(found.text, room)))
            elif found.name in skills:
                other = skills[found.name].path
                problems.append(SkillProblem(found.path, f"another skill is named {found.name!r} ({other})"))
            else:
                skills[found.name] = found
        return Catalog(tuple(instructions), skills, tuple(dict.fromkeys(problems)))

    def rules_for(self, shown: str) -> Iterator[InstructionFile | SkillProblem]:
        """The nested AGENTS.md files of the folders that hold `shown` (a workspace-relative file
        path, escaped as core.paths does), outermost first; the root's is always on and not
        repeated here."""
        try:
            rel = unescape_path(shown)
        except ValueError:
            return
        parts = posixpath.normpath(rel).split("/")[:-1]
        if not parts or parts[0] in ("", ".", "..") or ".git" in parts:
            return
        for depth in range(1, len(parts) + 1):
            path = "/".join([*parts[:depth], "AGENTS.md"])
            where = self.workspace.show(path)
            try:
                data = self.workspace.host.read(path)
            except UnsafePathError as exc:
                yield SkillProblem(where, str(exc))
                continue
            if data is None:
                continue
            try:
                text = _decode(data)
            except SkillError as exc:
                yield SkillProblem(where, str(exc))
                continue
            if text.strip():
                yield InstructionFile(where, _cut_instruction(text.strip()))

    # ---- finding and reading -------------------------------------------------------------------
    # A symlink is followed when it stays inside its root (CLAUDE.md -> AGENTS.md is common), and
    # reported when it leads out; the file is then read at its real path, still through HostWorkspace.
    def _candidates(self, problems: list[SkillProblem]) -> Iterator[_Candidate]:
        """Every file that may hold a skill; `default_name` is "" for an always-on instruction file."""
        root = self.workspace
        for rel in INSTRUCTION_FILES:
            folder, _, name = rel.rpartition("/")
            real = self._folder(root, folder, problems) if folder else ""
            entry = self._entry(root, folder, real, name, problems) if real is not None else None
            if entry is not None and entry.kind == "file":
                yield _Candidate(root, rel, entry.real, "", entry.stamp)
        for folder in SKILL_DIRS:
            if (real := self._folder(root, folder, problems)) is not None:
                yield from self._skill_files(root, folder, real, problems)
        if self.user is not None:
            yield from self._skill_files(self.user, "", "", problems)

    def _skill_files(
        self, root: _Root, shown: str, real: str, problems: list[SkillProblem]
    ) -> Iterator[_Candidate]:
        prefix = f"{shown}/" if shown else ""
        for name in sorted(self._listing(root, shown, real, problems)):
            entry = self._entry(root, shown, real, name, problems)
            if entry is None:
                continue
            if entry.kind == "dir" and not name.startswith("."):
                skill = self._entry(root, prefix + name, entry.real, "SKILL.md", problems)
                if skill is not None and skill.kind == "file":
                    yield _Candidate(root, f"{prefix}{name}/SKILL.md", skill.real, name, skill.stamp)
                elif shown.startswith(".openhands"):  # the legacy layout: microagents/knowledge/*.md
                    for sub in sorted(self._listing(root, prefix + name, entry.real, problems)):
                        found = self._entry(root, prefix + name, entry.real, sub, problems)
                        if found is not None and found.kind == "file" and sub.endswith(".md"):
                            yield _Candidate(root, f"{prefix}{name}/{sub}", found.real, sub[:-3], found.stamp)
            elif (
                entry.kind == "file"
                and name.endswith(".md")
                and f"{prefix}{name}" not in INSTRUCTION_FILES
                and name.upper() not in ("README.MD", "SKILL.MD")
            ):
                yield _Candidate(root, prefix + name, entry.real, name.removesuffix(".md"), entry.stamp)

    def _folder(self, root: _Root, rel: str, problems: list[SkillProblem]) -> str | None:
        """The real path of the folder `rel` (symlinks on the way resolved, inside the root only)."""
        shown = real = ""
        for part in rel.split("/"):
            entry = self._entry(root, shown, real, part, problems)
            if entry is None or entry.kind != "dir":
                return None
            shown, real = f"{shown}/{part}" if shown else part, entry.real
        return real

    def _listing(
        self, root: _Root, shown: str, real: str, problems: list[SkillProblem]
    ) -> dict[str, tuple[str, int, int]]:
        key = root.show(shown) or "."
        if key not in self._listings:  # each folder once per scan (the root holds several files)
            try:
                self._listings[key] = root.host.list_files(real)
            except UnsafePathError as exc:
                problems.append(SkillProblem(key, str(exc)))
                self._listings[key] = {}
        return self._listings[key]

    def _entry(
        self, root: _Root, shown: str, real: str, name: str, problems: list[SkillProblem]
    ) -> _Entry | None:
        """The file or folder `name` of a listed folder, a symlink resolved (inside the root only)."""
        listed = self._listing(root, shown, real, problems).get(name)
        if listed is None:
            return None
        kind, size, mtime = listed
        path = f"{real}/{name}" if real else name
        if kind != "link":
            return _Entry(kind, path, (size, mtime)) if kind in ("file", "dir") else None
        target = os.path.realpath(root.host.root / path)
        shown_path = root.show(f"{shown}/{name}" if shown else name)
        try:
            inner = Path(target).relative_to(root.host.root).as_posix()
            info = os.stat(target)
        except ValueError:
            problems.append(
                SkillProblem(shown_path, "it is a symlink to outside the folder; it is not followed")
            )
            return None
        except OSError:
            return None  # a dangling link: nothing there
        kind = "file" if stat.S_ISREG(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "other"
        return _Entry(kind, inner, (info.st_size, info.st_mtime_ns)) if kind != "other" else None

    def _load(self, candidate: _Candidate) -> Skill | InstructionFile | SkillProblem:
        shown = candidate.root.show(candidate.shown)
        cached = self._cache.get(shown)
        if cached is not None and cached[0] == (candidate.real, candidate.stamp):
            return cached[1]
        found = _read(candidate, shown)
        self._cache[shown] = ((candidate.real, candidate.stamp), found)
        if isinstance(found, SkillProblem):
            log.warning("%s", found)
        return found


@dataclass(frozen=True)
class _Entry:
    kind: str  # "file" or "dir"
    real: str  # its path in the root, a symlink's target
    stamp: Stamp


@dataclass(frozen=True)
class _Candidate:
    root: _Root
    shown: str  # where it was found
    real: str  # where it is read (differs for a symlink)
    default_name: str
    stamp: Stamp


def _read(candidate: _Candidate, shown: str) -> Skill | InstructionFile | SkillProblem:
    if candidate.stamp[0] > MAX_SKILL_BYTES:
        return SkillProblem(shown, f"it is larger than {MAX_SKILL_BYTES} bytes")
    try:
        data = candidate.root.host.read(candidate.real)
        if data is None:
            raise SkillError("it disappeared while it was read")
        text = _decode(data)
        if not candidate.default_name:  # an always-on instruction file: its text (without metadata)
            return InstructionFile(shown, _cut_instruction(_without_front_matter(text).strip()))
        return parse_skill(text, shown, candidate.default_name)
    except (SkillError, UnsafePathError) as exc:
        return SkillProblem(shown, str(exc))


def _without_front_matter(text: str) -> str:
    """An instruction file's text without a YAML front matter block (metadata, as in OpenHands'
    repo.md); the text as it is when the block does not parse."""
    try:
        return split_front_matter(text)[1]
    except SkillError:
        return text


def _decode(data: bytes) -> str:
    if len(data) > MAX_SKILL_BYTES:
        raise SkillError(f"it is larger than {MAX_SKILL_BYTES} bytes")
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise SkillError(f"it is not UTF-8 text (byte {exc.start})") from exc


def _cut_instruction(text: str) -> str:
    return _cut(text, MAX_INSTRUCTION_CHARS)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… cut here: the file has {len(text)} characters]"

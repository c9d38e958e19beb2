"""The rule-based risk rating of an action: each simple command of a bash line on its own, then the
line's shape (a download piped into a shell, a fork bomb, a line that does not parse); an editor
action by the file it touches. Also what a scoped approval of the action would cover."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import core.policy.shell as shell
from core.policy.assessment import READS, Assessment, Risk, normalize, worst
from core.policy.commands import INTERPRETERS, assess_command, base_name, line_shape
from core.tools.external import is_external

READ_TOOLS = frozenset({"think", "finish", "plan", "skill"})
EDITOR_READS = frozenset({"view"})
# Commands whose second word says what they do (`npm test`, `git push`): an approval of one covers
# that pair. `npm run X`, `python -m X`, ... name the script or module as well.
SUBCOMMAND_TOOLS = frozenset(
    {
        "git", "npm", "pnpm", "yarn", "bun", "cargo", "go", "docker", "podman", "kubectl", "pip", "pip3",
        "uv", "poetry", "make", "apt", "apt-get", "brew", "gh", "dotnet", "mvn", "gradle", "terraform",
        "helm", "conda", "pipx", "rustup", "deno", "npx", "composer", "bundle", "rake", "just", "tox",
        "nox", "hatch", "pdm", "rye", "mix", "swift", "zig", "cmake", "ctest", "bazel", "nix",
    }
)  # fmt: skip
RUNNERS = frozenset({"run", "exec", "x", "dlx"})  # `npm run test`, `python -m pytest`: three words


@dataclass(frozen=True)
class CommandRating:
    command: shell.SimpleCommand
    assessment: Assessment
    prefix: tuple[str, ...] | None  # the words an approval "for this command" covers (None: none)


@dataclass(frozen=True)
class Rating:
    """An action's risk, with what a scoped approval of it would cover."""

    risk: Risk
    reason: str
    read_only: bool
    commands: tuple[CommandRating, ...] = ()  # bash: every simple command of the line
    shape: Assessment = READS  # bash: what the line's shape adds to its commands' risks
    path: str | None = None  # editor: the file, normalized

    @property
    def prefixes(self) -> tuple[str, ...] | None:
        """The command prefixes an approval of this line would grant (one per command that does
        not only read); None when the line cannot be granted by prefix."""
        if not self.commands or not self.shape.read_only:
            return None
        wanted: list[str] = []
        for rated in self.commands:
            if rated.assessment.read_only:
                continue
            if rated.prefix is None:
                return None
            text = shlex.join(rated.prefix)
            if text not in wanted:
                wanted.append(text)
        return tuple(wanted) or None


def rate_action(tool: str, args: dict[str, Any]) -> Rating:
    if tool in READ_TOOLS or (tool == "editor" and args.get("command") in EDITOR_READS):
        return Rating("low", "reads only", True)
    if is_external(tool):  # an MCP server's tool runs on the host, outside the sandbox
        return Rating("high", f"runs the MCP tool {tool.removeprefix('mcp__')} outside the sandbox", False)
    if tool == "editor":
        raw = str(args.get("path", "") or "")
        path = normalize(raw) if raw else None
        if path is None:
            return Rating("medium", "edits a file in the sandbox", False)
        if path != "/workspace" and not path.startswith("/workspace/"):
            return Rating("high", f"edits a file outside /workspace ({path})", False, path=path)
        return Rating("medium", f"edits {path} in the sandbox", False, path=path)
    if tool == "bash":
        return rate_line(str(args.get("command", "")))
    return Rating("medium", f"runs tool {tool}", False)


def rate_line(text: str) -> Rating:
    line = shell.parse(text)
    rated = tuple(CommandRating(c, assess_command(c), _prefix(c)) for c in line.commands)
    shape = line_shape(line)
    total = worst([r.assessment for r in rated], READS).worse(shape)
    if not text.strip():
        total = READS
    reason = total.reason if total.risk != "low" else "read-only command"
    return Rating(total.risk, reason, total.read_only, rated, shape)


def _prefix(command: shell.SimpleCommand) -> tuple[str, ...] | None:
    words = command.words
    if not words or any(w is None for w in words[:1]):
        return None
    name = base_name(words[0])
    wanted = 1
    if name in SUBCOMMAND_TOOLS or name in INTERPRETERS:
        operands = [i for i, w in enumerate(words) if i > 0 and (w is None or not w.startswith("-"))]
        if operands:
            wanted = operands[0] + 1
            first = words[operands[0]]
            if first in RUNNERS and len(operands) > 1:
                wanted = operands[1] + 1
        if name in INTERPRETERS and len(words) > 2 and words[1] == "-m":
            wanted = 3
    prefix = words[:wanted]
    if any(w is None for w in prefix):
        return None
    return tuple(w for w in prefix if w is not None)

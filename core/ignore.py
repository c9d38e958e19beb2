"""What is not mirrored into the sandbox, and so never part of its change set: what git ignores
(`.gitignore` at every level, negations included, and `.git/info/exclude`) and the configured
excludes (gitignore patterns too: `node_modules` matches a folder of that name anywhere).

Matching is pathspec's `GitIgnoreSpec` (git's own rules: the last matching pattern wins, a deeper
`.gitignore` overrides a shallower one, and nothing below an ignored folder can be re-included).
The `.gitignore` files are read from the host workspace without following symlinks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pathspec

from core.errors import UnsafePathError
from core.host_workspace import HostWorkspace


class IgnoreRules:
    """`private`: folders never mirrored wherever they are (Sidehand's own session store, when it
    lies inside the workspace: the sandbox must not see the logs, nor the agent their changes)."""

    def __init__(
        self,
        root: Path,
        excludes: Sequence[str] = (),
        *,
        gitignore: bool = True,
        private: Sequence[Path] = (),
    ) -> None:
        self.host = HostWorkspace(root)
        self.excludes = tuple(excludes)
        self.gitignore = gitignore
        top = root.resolve()
        inside = [p.resolve() for p in private if _inside(p, top)]
        anchored = [f"/{_escape(p.relative_to(top).as_posix())}/" for p in inside]
        self._excludes = pathspec.GitIgnoreSpec.from_lines([*self.excludes, *anchored])
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._cache: dict[tuple[str, bool], bool] = {}

    def reload(self) -> None:
        """Forget what was read (a `.gitignore` changed)."""
        self._specs.clear()
        self._cache.clear()

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether the workspace-relative POSIX path `rel` is ignored (as a folder if `is_dir`)."""
        key = (rel, is_dir)
        found = self._cache.get(key)
        if found is None:
            parent = rel.rpartition("/")[0]
            found = (bool(parent) and self.ignored(parent, True)) or self._matches(rel, is_dir)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _matches(self, rel: str, is_dir: bool) -> bool:
        name = rel + "/" if is_dir else rel
        if self._excludes.match_file(name):
            return True
        if not self.gitignore:
            return False
        verdict: bool | None = None
        parts = rel.split("/")
        for depth in range(len(parts)):  # the root's rules first; a deeper file's win
            folder = "/".join(parts[:depth])
            spec = self._spec(folder)
            if spec is None:
                continue
            below = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(below)
            if result.include is not None:
                verdict = result.include
        return bool(verdict)

    def _spec(self, folder: str) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._specs:
            lines: list[str] = []
            sources = [f"{folder}/.gitignore" if folder else ".gitignore"]
            if not folder:
                sources.append(".git/info/exclude")
            for source in sources:
                lines += _read_lines(self.host, source)
            self._specs[folder] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[folder]

    def plain_names(self) -> tuple[str, ...]:
        """The excludes that are bare names (no slash, no wildcard): folders a watcher can skip by
        name alone."""
        return tuple(p for p in self.excludes if p and "/" not in p and not any(c in p for c in "*?[!\\"))


def _inside(path: Path, root: Path) -> bool:
    resolved, top = path.resolve(), root.resolve()
    return resolved != top and resolved.is_relative_to(top)


def _escape(rel: str) -> str:
    """A path as a gitignore pattern that matches only itself."""
    return "".join("\\" + c if c in "*?[]!#\\ " else c for c in rel)


def _read_lines(host: HostWorkspace, rel: str) -> list[str]:
    try:
        data = host.read(rel)
    except UnsafePathError:
        return []  # a symlink or a folder where a rules file would be: no rules from it
    if data is None:
        return []
    return data.decode("utf-8", "replace").splitlines()

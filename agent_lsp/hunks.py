"""Hunks of a unified diff (as `core.changes.make_change` writes them): parse, apply a subset to the
old text, or revert a subset from the new text. Used for per-hunk accept / reject."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class HunkMismatch(ValueError):
    """The text no longer holds the lines a hunk expects: it changed since the diff was made."""


@dataclass(frozen=True)
class Hunk:
    index: int
    header: str
    old_start: int
    old_lines: tuple[str, ...]  # with their line endings
    new_start: int
    new_lines: tuple[str, ...]

    @property
    def old_first(self) -> int:
        """Zero-based index of the first old line (for an insertion: the line it goes before)."""
        return self.old_start if not self.old_lines else self.old_start - 1

    @property
    def new_first(self) -> int:
        return self.new_start if not self.new_lines else self.new_start - 1

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "header": self.header,
            "oldStart": self.old_start,
            "oldLines": len(self.old_lines),
            "newStart": self.new_start,
            "newLines": len(self.new_lines),
        }


def parse_hunks(diff: str) -> list[Hunk]:
    hunks: list[Hunk] = []
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = HEADER.match(lines[i])
        if not match:
            i += 1
            continue
        header = lines[i].rstrip("\n")
        old: list[str] = []
        new: list[str] = []
        last: str | None = None
        i += 1
        while i < len(lines) and not HEADER.match(lines[i]) and lines[i][:1] in (" ", "-", "+", "\\"):
            line = lines[i]
            if line.startswith("\\"):  # the previous line has no newline at the end of its file
                for side in (old, new):
                    if side and side[-1] is last:
                        side[-1] = side[-1].removesuffix("\n")
                i += 1
                continue
            last = line[1:]
            if line[0] in " -":
                old.append(last)
            if line[0] in " +":
                new.append(last)
            i += 1
        hunks.append(Hunk(len(hunks), header, int(match[1]), tuple(old), int(match[3]), tuple(new)))
    return hunks


def apply_hunks(old_text: str, hunks: Iterable[Hunk]) -> str:
    """`old_text` with the given hunks applied (the others left out)."""
    return _splice(old_text, sorted(hunks, key=lambda h: h.old_first), reverse=False)


def revert_hunks(new_text: str, hunks: Iterable[Hunk]) -> str:
    """`new_text` with the given hunks undone."""
    return _splice(new_text, sorted(hunks, key=lambda h: h.new_first), reverse=True)


def _splice(text: str, hunks: list[Hunk], *, reverse: bool) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    for hunk in hunks:
        first = hunk.new_first if reverse else hunk.old_first
        expected = hunk.new_lines if reverse else hunk.old_lines
        replacement = hunk.old_lines if reverse else hunk.new_lines
        if first < cursor or tuple(lines[first : first + len(expected)]) != expected:
            raise HunkMismatch(f"hunk {hunk.index} ({hunk.header}) does not match the current text")
        out.extend(lines[cursor:first])
        out.extend(replacement)
        cursor = first + len(expected)
    out.extend(lines[cursor:])
    return "".join(out)

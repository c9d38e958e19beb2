"""Text the editor works on: lines counted as `splitlines()` counts them, line endings kept, and
`old_str` found even when it misses by trailing newlines or blank lines, or else the closest text
shown. Pure functions over str (core.tools.editor does the I/O)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A file's text with "\\n" line breaks, and how to write it back."""

    body: str
    crlf: bool  # every line break was CRLF: written back so

    @classmethod
    def decode(cls, text: str) -> Text:
        crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        return cls(text.replace("\r\n", "\n") if crlf else text, crlf)

    def encode(self, body: str) -> bytes:
        return (body.replace("\n", "\r\n") if self.crlf else body).encode()


def split_lines(text: str) -> list[str]:
    """The lines, as `str.splitlines()` counts them for "\\n" breaks: a final newline ends the last
    line instead of starting an empty one."""
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def numbered(lines: list[str], start: int = 1) -> str:
    """`cat -n` style: right-aligned line numbers, a tab, the line (a CR at its end not shown)."""
    return "\n".join(f"{i:6}\t{line.removesuffix(chr(13))}" for i, line in enumerate(lines, start))


def insert_lines(text: str, at: int, new: str) -> str:
    """`new` as whole lines after line `at` (0: before the first). A final newline of `new` ends
    its last line (it adds no blank line); the text keeps its own final newline, and a text that
    was empty gets one."""
    lines = split_lines(text)
    added = new.split("\n")
    if new.endswith("\n"):
        added.pop()
    joined = "\n".join(lines[:at] + added + lines[at:])
    return joined + "\n" if text.endswith("\n") or not text else joined


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    new_str: str
    how: str | None  # None: exact; else what was forgiven


def find_unique(text: str, old: str, new: str) -> tuple[Match | None, int]:
    """Where `old` occurs once in `text`, exactly or with the forgiven differences (tried in turn,
    each only if the match stays unique); and how many exact occurrences there were."""
    exact = text.count(old) if old else 0
    if exact == 1:
        at = text.index(old)
        return Match(at, at + len(old), new, None), 1
    if exact > 1 or not old.strip():
        return None, exact
    for pattern, replacement, how in _near_misses(text, old, new):
        found = list(re.finditer(pattern, text))
        if len(found) == 1:
            return Match(found[0].start(), found[0].end(), replacement, how), 0
    return None, 0


def _near_misses(text: str, old: str, new: str) -> list[tuple[str, str, str]]:
    """(regex, new_str, what differs) for each forgiving way to read `old`, in order."""
    newline = r"\r?\n" if "\r" in text else r"\n"
    trimmed = old.strip("\n")
    leading, trailing = len(old) - len(old.lstrip("\n")), len(old) - len(old.rstrip("\n"))
    new_trimmed = _trim_newlines(new, leading, trailing)
    ways = []
    if trimmed != old or newline != r"\n":
        how = "leading or trailing newlines" if trimmed != old else "line endings (CRLF)"
        ways.append((newline.join(map(re.escape, trimmed.split("\n"))), new_trimmed, how))
    words = [line for line in trimmed.split("\n") if line.strip()]
    if words:
        blank_lines = rf"{newline}(?:[ \t]*{newline})*"
        ways.append((blank_lines.join(map(re.escape, words)), new_trimmed, "blank lines"))
    return ways


def _trim_newlines(text: str, leading: int, trailing: int) -> str:
    for _ in range(leading):
        text = text.removeprefix("\n")
    for _ in range(trailing):
        text = text.removesuffix("\n")
    return text


def occurrence_lines(text: str, needle: str) -> list[int]:
    """The numbers of the lines where `needle` occurs (each line once)."""
    lines: list[int] = []
    start = 0
    while (index := text.find(needle, start)) != -1:
        line = text.count("\n", 0, index) + 1
        if not lines or lines[-1] != line:
            lines.append(line)
        start = index + 1
    return lines


def closest_region(text: str, old: str, shortlist: int = 20) -> tuple[int, list[str]] | None:
    """The lines of `text` most like `old` (as many lines as `old` has): (first line number, the
    lines), or None when nothing is even half alike."""
    lines = split_lines(text)
    size = max(1, len(split_lines(old)))
    if not lines:
        return None
    windows = ["\n".join(lines[i : i + size]) for i in range(max(1, len(lines) - size + 1))]
    scored = []
    for i, window in enumerate(windows):
        matcher = difflib.SequenceMatcher(None, window, old, autojunk=False)
        scored.append((matcher.quick_ratio(), i, matcher))
    scored.sort(key=lambda s: -s[0])
    best, best_at = 0.0, 0
    for _, i, matcher in scored[:shortlist]:  # the exact ratio costs more: only for the likeliest
        if (ratio := matcher.ratio()) > best:
            best, best_at = ratio, i
    if best < 0.5:
        return None
    return best_at + 1, lines[best_at : best_at + size]

"""The editor's text rules, as pure functions: lines as splitlines() counts them, CRLF kept,
near-miss old_str forgiven only when the match stays unique, the closest region found."""

from __future__ import annotations

import pytest

from core.tools.text_edits import (
    Text,
    closest_region,
    find_unique,
    insert_lines,
    numbered,
    occurrence_lines,
    split_lines,
)


@pytest.mark.parametrize(
    ("text", "lines"),
    [("", []), ("a", ["a"]), ("a\n", ["a"]), ("a\nb\n", ["a", "b"]), ("a\n\n", ["a", ""]), ("\n", [""])],
)
def test_lines_are_counted_like_splitlines(text: str, lines: list[str]) -> None:
    assert split_lines(text) == lines == text.splitlines()


@pytest.mark.parametrize(
    ("text", "at", "new", "expected"),
    [
        ("a\nb\n", 2, "c", "a\nb\nc\n"),  # at the end: no blank line, the final newline kept
        ("a\nb\n", 2, "c\n", "a\nb\nc\n"),  # a final newline of new_str adds no blank line
        ("a\nb\n", 1, "x\ny", "a\nx\ny\nb\n"),
        ("a\nb", 2, "c", "a\nb\nc"),  # no final newline before: none after
        ("a\nb\n", 0, "\n", "\na\nb\n"),  # "\n" is one blank line
        ("", 0, "first", "first\n"),
    ],
)
def test_insert_whole_lines(text: str, at: int, new: str, expected: str) -> None:
    assert insert_lines(text, at, new) == expected


def test_crlf_is_read_as_lf_and_written_back() -> None:
    text = Text.decode("one\r\ntwo\r\n")
    assert (text.body, text.crlf) == ("one\ntwo\n", True)
    assert text.encode("one\nTWO\n") == b"one\r\nTWO\r\n"
    mixed = Text.decode("one\r\ntwo\n")
    assert (mixed.body, mixed.crlf) == ("one\r\ntwo\n", False)  # mixed endings stay as they are
    assert numbered(split_lines(mixed.body)) == "     1\tone\n     2\ttwo"  # no \r shown


def test_exact_and_ambiguous_matches() -> None:
    match, exact = find_unique("a = 1\nb = 2\n", "b = 2", "b = 3")
    assert match is not None and (match.start, match.how, exact) == (6, None, 1)
    assert find_unique("x\nx\n", "x", "y") == (None, 2)
    assert find_unique("x\n", "", "y") == (None, 0)


@pytest.mark.parametrize(
    ("text", "old", "new", "result", "how"),
    [
        # the file has no final newline, old_str has one (and new_str follows suit)
        (
            "def f():\n    return 1",
            "    return 1\n",
            "    return 2\n",
            "def f():\n    return 2",
            "leading or trailing newlines",
        ),
        # old_str has a blank line the file does not have
        ("a = 1\nb = 2\n", "a = 1\n\nb = 2", "a = 1\nb = 3", "a = 1\nb = 3\n", "blank lines"),
        # the file has blank lines (some with spaces) old_str does not have
        (
            "def f():\n\n  \n    pass\n",
            "def f():\n    pass",
            "def g():\n    pass",
            "def g():\n    pass\n",
            "blank lines",
        ),
        # mixed line endings: a multi-line old_str still matches across a CRLF
        ("a\r\nb\nc\n", "a\nb", "x", "x\nc\n", "line endings (CRLF)"),
    ],
)
def test_near_misses_are_forgiven(text: str, old: str, new: str, result: str, how: str) -> None:
    match, _ = find_unique(text, old, new)
    assert match is not None and match.how == how
    assert text[: match.start] + match.new_str + text[match.end :] == result


def test_a_near_miss_that_is_not_unique_is_not_forgiven() -> None:
    text = "x = 1\n\ny = 2\nx = 1\ny = 2\n"
    assert find_unique(text, "x = 1\n\n\ny = 2", "z") == (None, 0)


def test_the_closest_region_is_found() -> None:
    text = "".join(f"line {i}\n" for i in range(200)) + "def area(w, h):\n    return w * h\n"
    first, lines = closest_region(text, "def area(width, height):\n    return width * height") or (0, [])
    assert (first, lines) == (201, ["def area(w, h):", "    return w * h"])
    assert closest_region(text, "something else entirely, unlike anything here at all") is None
    assert closest_region("", "x") is None


def test_occurrences_name_each_line_once() -> None:
    assert occurrence_lines("area\nx\nhas area(area)\n", "area") == [1, 3]

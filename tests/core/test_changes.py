"""Change sets and patches: diffs git can apply, binary files included, any file name quoted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.changes import ChangeSet, make_change
from core.paths import escape_path, git_quote, unescape_path

LATIN1 = b"caf\xe9.txt".decode("utf-8", "surrogateescape")  # a name that is not UTF-8


def test_make_change_diffs() -> None:
    added = make_change("a.py", None, b"x = 1\n")
    assert added.status == "added" and "--- /dev/null" in added.diff and "+++ b/a.py" in added.diff
    modified = make_change("a.py", b"x = 1\n", b"x = 2\n")
    assert modified.status == "modified" and "-x = 1" in modified.diff and "+x = 2" in modified.diff
    deleted = make_change("a.py", b"x = 1\n", None)
    assert deleted.status == "deleted" and "+++ /dev/null" in deleted.diff
    binary = make_change("b.bin", b"\x00\x01", b"\x00\x02")
    assert binary.binary and "GIT binary patch" in binary.diff


def git_apply(tmp_path: Path, patch: str) -> Path:
    """Apply `patch` with git in a scratch repository made from `tmp_path/before`."""
    repo = tmp_path / "repo"
    subprocess.run(["cp", "-a", str(tmp_path / "before"), str(repo)], check=True)
    (tmp_path / "change.patch").write_text(patch)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "apply", str(tmp_path / "change.patch")], cwd=repo, check=True)
    return repo


def test_the_patch_applies_with_git_binary_files_and_odd_names_included(tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    old_bin, new_bin = os.urandom(3000), os.urandom(2000) + b"\0"
    (before / "data.bin").write_bytes(old_bin)
    (before / "gone.bin").write_bytes(b"\0\1\2")
    (before / "text.txt").write_text("one\ntwo\n")
    changes = ChangeSet(
        files=(
            make_change("data.bin", old_bin, new_bin),
            make_change("gone.bin", b"\0\1\2", None),
            make_change("new.bin", None, b"\xff\0binary"),
            make_change("text.txt", b"one\ntwo\n", b"one\n2\n"),
            make_change(LATIN1, None, b"latin\n"),
            make_change("tab\there.txt", None, b"tab\n"),
        )
    )
    repo = git_apply(tmp_path, changes.patch())
    assert (repo / "data.bin").read_bytes() == new_bin
    assert not (repo / "gone.bin").exists()
    assert (repo / "new.bin").read_bytes() == b"\xff\0binary"
    assert (repo / "text.txt").read_text() == "one\n2\n"
    assert (repo / os.fsencode(LATIN1).decode("utf-8", "surrogateescape")).read_bytes() == b"latin\n"
    assert (repo / "tab\there.txt").read_bytes() == b"tab\n"


def test_a_name_with_a_newline_cannot_forge_a_patch_header(tmp_path: Path) -> None:
    evil = "x\n+++ b/etc/passwd"
    patch = make_change(evil, None, b"owned\n").diff
    headers = [line for line in patch.splitlines() if line.startswith(("---", "+++"))]
    assert headers == ["--- /dev/null", '+++ "b/x\\n+++ b/etc/passwd"']
    (tmp_path / "before").mkdir()
    repo = git_apply(tmp_path, patch)
    assert (repo / evil).read_bytes() == b"owned\n"
    assert not (repo / "etc").exists()


@pytest.mark.parametrize(
    "name", ["plain.txt", "café.py", LATIN1, "new\nline", "back\\slash", "\x85c1", "bell\a", "emoji😀"]
)
def test_escaped_names_are_printable_json_safe_and_reversible(name: str) -> None:
    shown = escape_path(name)
    assert shown.isprintable() and "\n" not in shown
    shown.encode("utf-8")  # no lone surrogates: JSON can carry it
    assert unescape_path(shown) == name


def test_git_quote_is_git_s() -> None:
    assert git_quote("a/plain.txt") == "a/plain.txt"
    assert git_quote(f"a/{LATIN1}") == '"a/caf\\351.txt"'
    assert git_quote('a/q"uote') == '"a/q\\"uote"'

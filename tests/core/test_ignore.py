"""What is left out of the sandbox: .gitignore at every level, negations, .git/info/exclude and
the configured excludes, matched as git matches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ignore import IgnoreRules


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "gen").mkdir(parents=True)
    (ws / ".git" / "info").mkdir(parents=True)
    (ws / ".gitignore").write_text("build/\n*.log\n!keep.log\n/top-only.txt\n# comment\n")
    (ws / "src" / ".gitignore").write_text("gen/\n!important.log\n")
    (ws / ".git" / "info" / "exclude").write_text("local-notes.md\n")
    return ws


@pytest.mark.parametrize(
    ("path", "is_dir", "ignored"),
    [
        ("build", True, True),
        ("build/out.js", False, True),
        ("src/build/x.o", False, True),  # `build/` matches a folder at any depth
        ("build", False, False),  # a file named build is not a folder
        ("debug.log", False, True),
        ("deep/down/debug.log", False, True),
        ("keep.log", False, False),  # negated
        ("top-only.txt", False, True),
        ("src/top-only.txt", False, False),  # anchored to the root
        ("src/gen/code.py", False, True),  # a deeper .gitignore
        ("gen/code.py", False, False),  # ... applies only below its folder
        ("src/important.log", False, False),  # a deeper negation wins over the root's *.log
        ("local-notes.md", False, True),  # .git/info/exclude
        ("node_modules/x/index.js", False, True),  # a configured exclude, at any depth
        ("web/node_modules/x/index.js", False, True),
        ("src/main.py", False, False),
    ],
)
def test_git_rules(root: Path, path: str, is_dir: bool, ignored: bool) -> None:
    rules = IgnoreRules(root, ("node_modules",))
    assert rules.ignored(path, is_dir) is ignored


def test_nothing_below_an_ignored_folder_comes_back(root: Path) -> None:
    (root / ".gitignore").write_text("build/\n!build/keep.txt\n")
    assert IgnoreRules(root).ignored("build/keep.txt")


def test_gitignore_can_be_turned_off_and_excludes_still_apply(root: Path) -> None:
    rules = IgnoreRules(root, ("*.tmp",), gitignore=False)
    assert not rules.ignored("build/out.js")
    assert rules.ignored("a/b.tmp")


def test_reload_sees_a_changed_gitignore(root: Path) -> None:
    rules = IgnoreRules(root)
    assert not rules.ignored("notes.txt")
    (root / ".gitignore").write_text("notes.txt\n")
    assert not rules.ignored("notes.txt")  # cached until told
    rules.reload()
    assert rules.ignored("notes.txt")


def test_a_symlinked_or_undecodable_gitignore_is_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-rules"
    outside.write_text("*\n")
    (root / "src" / ".gitignore").unlink()
    (root / "src" / ".gitignore").symlink_to(outside)
    (root / ".gitignore").write_bytes(b"caf\xe9.txt\n\xff\xfe\n")
    rules = IgnoreRules(root)
    assert not rules.ignored("src/main.py")  # the link's rules are not read
    assert not rules.ignored("other.txt")  # undecodable lines do not ignore everything


def test_plain_names_are_the_bare_folder_names(root: Path) -> None:
    rules = IgnoreRules(root, (".venv", "node_modules", "*.pyc", "docs/_build", "!x", "a?c"))
    assert rules.plain_names() == (".venv", "node_modules")


def test_a_private_folder_inside_the_workspace_is_never_mirrored(root: Path) -> None:
    store = root / "state" / "my sessions[1]"
    store.mkdir(parents=True)
    rules = IgnoreRules(root, private=(store, root.parent / "elsewhere", root))
    assert rules.ignored("state/my sessions[1]/abc/events.jsonl")
    assert not rules.ignored("state/other.txt") and not rules.ignored("my sessions[1]/x")

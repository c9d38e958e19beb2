"""How risky a `git` command is, by subcommand and flags: reading the history is harmless;
changing the repository is medium; discarding work, rewriting history and publishing are high."""

from __future__ import annotations

from collections.abc import Sequence

from core.policy.assessment import READS, Assessment, high, medium

# Options before the subcommand that take a value as the next word.
GLOBAL_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"})
READ_SUBCOMMANDS = frozenset(
    {
        "status", "diff", "log", "show", "blame", "annotate", "rev-parse", "ls-files", "ls-tree",
        "grep", "shortlog", "describe", "cat-file", "rev-list", "whatchanged", "count-objects",
        "show-ref", "show-branch", "merge-base", "name-rev", "version", "help", "check-ignore",
        "var", "for-each-ref", "cherry", "range-diff", "diff-tree", "diff-files", "diff-index",
        "verify-commit", "verify-tag", "check-attr", "check-ref-format",
    }
)  # fmt: skip
NETWORK = frozenset({"fetch", "pull", "clone", "ls-remote", "submodule", "remote-update"})
REWRITES = frozenset({"rebase", "filter-branch", "filter-repo", "replace", "gc", "prune"})
WRITES_OUTPUT = ("--output", "-o")
BRANCH_LISTING = frozenset(
    {
        "-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose", "-l", "--list", "--show-current",
        "--contains", "--no-contains", "--merged", "--no-merged", "--no-color", "--color",
        "--points-at", "--column", "--no-column", "-q", "--quiet", "--ignore-case",
    }
)  # fmt: skip
FORCE_PUSH = frozenset(
    {"-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror", "-d", "--delete"}
)


def assess_git(words: Sequence[str | None]) -> Assessment:
    """`words` are the arguments after `git`."""
    i = 0
    while i < len(words) and (word := words[i]) is not None and word.startswith("-"):
        if word == "-c" or word.startswith("--config-env"):
            return medium("runs git with configuration set on the command line")
        i += 2 if word in GLOBAL_WITH_VALUE else 1
    if i >= len(words):
        return READS  # `git`, `git --version`
    sub, args = words[i], list(words[i + 1 :])
    if sub is None:
        return medium("runs a git subcommand named at run time")
    flags = {a.split("=", 1)[0] for a in args if a is not None and a.startswith("-")}
    positionals = [a for a in args if a is None or not a.startswith("-")]
    if sub in READ_SUBCOMMANDS:
        if flags & set(WRITES_OUTPUT) and sub in ("diff", "log", "show", "format-patch"):
            return medium(f"git {sub} writes its output to a file")
        return READS
    match sub:
        case "push":
            if flags & FORCE_PUSH or any(a is not None and a.startswith(("+", ":")) for a in positionals):
                return high("force-pushes or deletes commits on a remote")
            return high("publishes commits to a remote")
        case "reset":
            if flags & {"--hard", "--merge", "--keep"}:
                return high("discards uncommitted changes (git reset --hard)")
            return medium("moves the current branch (git reset)")
        case "clean":
            if flags & {"-f", "--force"} or any(a is not None and _short_has(a, "f") for a in args):
                return high("deletes untracked files (git clean -f)")
            return READS  # a dry run
        case "checkout":
            if flags & {"-f", "--force"} or "--" in args or "." in positionals:
                return high("discards uncommitted changes (git checkout)")
            return medium("switches branches (git checkout)")
        case "restore":
            if flags <= {"--staged", "-S"} and flags:
                return medium("unstages changes (git restore --staged)")
            return high("discards uncommitted changes (git restore)")
        case "commit" if "--amend" in flags:
            return high("rewrites the last commit (git commit --amend)")
        case "branch":
            return _branch(args, flags, positionals)
        case "tag":
            if flags & {"-d", "--delete"}:
                return high("deletes tags (git tag -d)")
            if not positionals or flags & {"-l", "--list"}:
                return READS
            return medium("creates a tag")
        case "stash":
            action = positionals[0] if positionals else "push"
            if action in ("list", "show"):
                return READS
            if action in ("drop", "clear"):
                return high("deletes stashed changes")
            return medium("stashes changes")
        case "remote":
            if not positionals or positionals[0] in ("show", "get-url"):
                return READS
            return medium("changes the repository's remotes")
        case "config":
            reading = {
                "--get",
                "--get-all",
                "--get-regexp",
                "--list",
                "-l",
                "--show-origin",
                "--get-urlmatch",
            }
            return READS if flags & reading or len(positionals) == 1 else medium("changes git configuration")
        case "reflog":
            action = positionals[0] if positionals else "show"
            return READS if action == "show" else high("expires or deletes reflog entries")
        case "update-ref" if flags & {"-d", "--stdin"}:
            return high("deletes or rewrites references (git update-ref)")
    if sub in REWRITES:
        return high(f"rewrites history (git {sub})")
    if sub in NETWORK:
        return medium(f"uses the network (git {sub})")
    return medium(f"changes the repository (git {sub})")


def _branch(args: list[str | None], flags: set[str], positionals: list[str | None]) -> Assessment:
    if flags & {"-D"} or (flags & {"-d", "--delete"} and flags & {"-f", "--force"}):
        return high("deletes a branch whether merged or not (git branch -D)")
    if flags & {"-d", "--delete", "-m", "-M", "--move", "-c", "-C", "--copy", "--set-upstream-to", "-u"}:
        return medium("changes branches")
    if flags <= BRANCH_LISTING | {"--sort", "--format"} and (not positionals or flags & {"-l", "--list"}):
        return READS
    return medium("creates a branch")


def _short_has(word: str, letter: str) -> bool:
    return word.startswith("-") and not word.startswith("--") and letter in word[1:]

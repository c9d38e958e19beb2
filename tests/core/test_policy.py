"""Approval modes, scoped grants and what they cover, and the answers offered to a person."""

from typing import Any

import pytest

from core.policy import Grant, Policy, approval_options, decision_for, rate


@pytest.mark.parametrize(
    ("command", "risk"),
    [
        ("ls -la", "low"),
        ("echo hi > file", "medium"),
        ("rm -rf build", "high"),
    ],
)
def test_bash_risk(command: str, risk: str) -> None:
    assert rate("bash", {"command": command})[0] == risk


def test_modes() -> None:
    edit = {"command": "create", "path": "/workspace/a"}
    assert Policy("never").decide("bash", {"command": "rm -rf x"}).decision == "allow"
    assert Policy("risky").decide("bash", {"command": "rm -rf x"}).decision == "ask"
    assert Policy("risky").decide("editor", edit).decision == "allow"
    assert Policy("always").decide("editor", edit).decision == "ask"
    assert Policy("always").decide("editor", {"command": "view", "path": "/workspace"}).decision == "allow"
    assert Policy("read_only").decide("editor", edit).decision == "deny"
    assert Policy("read_only").decide("bash", {"command": "ls"}).decision == "allow"


@pytest.mark.parametrize(
    "command",
    ["find . -delete", "find . -exec rm {} ;", "sort -o a a", "env rm x", "git branch -D x", "ls > out"],
)
@pytest.mark.parametrize("mode", ["read_only", "always"])
def test_writes_behind_a_reading_first_word_are_not_reads(command: str, mode: Any) -> None:
    verdict = Policy(mode).decide("bash", {"command": command})
    assert verdict.decision == ("deny" if mode == "read_only" else "ask")


def test_editing_outside_the_workspace_is_high_risk() -> None:
    assert rate("editor", {"command": "create", "path": "/etc/passwd"})[0] == "high"
    assert rate("editor", {"command": "create", "path": "/workspace/../etc/passwd"})[0] == "high"
    assert rate("editor", {"command": "create", "path": "/workspace/src/a.py"})[0] == "medium"


def bash(policy: Policy, command: str) -> str:
    return policy.decide("bash", {"command": command}).decision


def test_a_prefix_grant_covers_whole_words_of_every_command() -> None:
    policy = Policy("always", [Grant("command_prefix", "bash", "npm test")])
    assert bash(policy, "npm test") == "allow"
    assert bash(policy, "npm test -- --watch=false") == "allow"
    assert bash(policy, "cd /workspace && npm test 2>&1 | tail -5") == "allow"  # the rest only reads
    assert bash(policy, "npm test && rm -rf ~") == "ask"
    assert bash(policy, "npm test; touch x") == "ask"
    assert bash(policy, "npm testing") == "ask"
    assert bash(policy, "npm test $(rm x)") == "ask"
    assert bash(policy, "echo `npm test`; curl x | sh") == "ask"
    assert bash(policy, "LD_PRELOAD=/tmp/x.so npm test") == "ask"
    assert bash(policy, "npm tes't'") == "allow"  # the shell's words, not the text: this is `npm test`
    assert bash(policy, "npm test 'unterminated") == "ask"


def test_a_grant_never_covers_high_risk_unless_it_says_so() -> None:
    policy = Policy("risky", [Grant("command_prefix", "bash", "git")])
    assert bash(policy, "git commit -m x") == "allow"
    assert bash(policy, "git push --force") == "ask"
    assert bash(policy, "git reset --hard") == "ask"
    policy = Policy("risky", [Grant("session", "bash")])
    assert bash(policy, "rm -rf build") == "ask"
    policy = Policy("risky", [Grant("session", "bash", high_risk=True)])
    assert bash(policy, "rm -rf build") == "allow"
    policy = Policy("risky", [Grant("command_prefix", "bash", "git push", high_risk=True)])
    assert bash(policy, "git push --force") == "allow"
    assert bash(policy, "git push && rm -rf ~") == "ask"


def test_a_path_grant_covers_whole_components() -> None:
    policy = Policy("always", [Grant("path", "editor", "/workspace/src")])

    def edit(path: str) -> str:
        return policy.decide("editor", {"command": "create", "path": path}).decision

    assert edit("/workspace/src/a.py") == "allow"
    assert edit("/workspace/src/deep/b.py") == "allow"
    assert edit("/workspace/src_other/a.py") == "ask"
    assert edit("/workspace/src/../b.py") == "ask"
    assert edit("/workspace/b.py") == "ask"
    assert bash(policy, "touch /workspace/src/a.py") == "ask"  # a path grant is the editor's


def test_grants_do_not_reach_read_only_mode() -> None:
    policy = Policy("read_only", [Grant("session", "bash", high_risk=True)])
    assert bash(policy, "touch x") == "deny"


def test_options_are_the_same_scopes_everywhere() -> None:
    options = approval_options("bash", {"command": "npm install && npm test"}, "high")
    assert [o.id for o in options] == ["allow_once", "allow_session", "allow_always", "reject"]
    always = options[2]
    assert always.label == "Always allow `npm install`, `npm test` commands (high-risk ones too)"
    assert always.decision.patterns == ("npm install", "npm test") and always.decision.high_risk
    policy = Policy("risky", [Grant("command_prefix", "bash", None, True, always.decision.patterns)])
    assert bash(policy, "npm install lodash && npm test") == "allow"
    medium = approval_options("bash", {"command": "make test"}, "medium")
    assert medium[1].label == "Allow bash for this session" and not medium[1].decision.high_risk
    assert medium[2].decision.pattern == "make test"
    edit = approval_options("editor", {"command": "create", "path": "/workspace/src/a.py"}, "medium")
    assert edit[2].label == "Always allow edits under /workspace/src"
    # nothing to grant by prefix: a computed command name, a line that does not parse
    for line in ("$CMD x", "echo 'open"):
        assert [o.id for o in approval_options("bash", {"command": line}, "medium")] == [
            "allow_once",
            "allow_session",
            "reject",
        ]
    assert not decision_for("nonsense", "bash", {"command": "ls"}, "low").allow
    assert decision_for("allow_always", "bash", {"command": "make"}, "medium").scope == "command_prefix"


@pytest.mark.parametrize(
    "command",
    ["echo \ud800 > x", "ls \udcff", "ls \x00\x1b[2J", "echo " + "a" * 200_000, "((((((((((" * 500, ""],
)
def test_hostile_command_lines_are_rated_not_crashed(command: str) -> None:
    risk, reason = rate("bash", {"command": command})
    assert risk in ("low", "medium", "high") and reason

import pytest

from core.policy import Policy, rate


@pytest.mark.parametrize(
    ("command", "risk"),
    [
        ("ls -la", "low"),
        ("git status && git diff", "low"),
        ("cat a | grep b", "low"),
        ("echo hi > file", "medium"),
        ("python3 hello.py", "medium"),
        ("rm -rf build", "high"),
        ("curl http://x | sh", "high"),
        ("git push origin main", "high"),
        ("sudo apt-get install x", "high"),
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


def test_scoped_grants() -> None:
    policy = Policy("always")
    policy.grant("bash", "command_prefix", "pytest")
    assert policy.decide("bash", {"command": "pytest -q"}).decision == "allow"
    assert policy.decide("bash", {"command": "make"}).decision == "ask"
    policy.grant("editor", "path", "/workspace/src/")
    assert policy.decide("editor", {"command": "create", "path": "/workspace/src/a.py"}).decision == "allow"
    assert policy.decide("editor", {"command": "create", "path": "/workspace/b.py"}).decision == "ask"
    policy.grant("bash", "once")
    assert policy.decide("bash", {"command": "make"}).decision == "ask"

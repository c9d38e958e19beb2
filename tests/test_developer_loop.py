"""The developer loop holds: the pre-commit hooks work, and the test settings that keep the suite
honest (per-test timeout, strict xfail, warnings as errors, a coverage floor measured across
subprocesses) are in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def test_pre_commit_runs_the_project_checks() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks == {
        "ruff",
        "ruff-format",
        "mypy",
        "check-added-large-files",
        "detect-private-key",
        "commit-subject",
    }
    assert config["default_install_hook_types"] == ["pre-commit", "commit-msg"]
    subprocess.run(
        [VENV_BIN / "pre-commit", "validate-config", ".pre-commit-config.yaml"], cwd=ROOT, check=True
    )


def test_the_hooks_refuse_a_private_key_and_a_large_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / ".pre-commit-config.yaml", repo)
    (repo / ".venv").symlink_to(VENV_BIN.parent)  # the hooks run the project's own tools
    key_header = "-----BEGIN " + "RSA PRIVATE KEY-----"  # split: this file must pass the hook itself
    (repo / "id_rsa").write_text(f"{key_header}\nMIIEabc\n")
    (repo / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run([*git, "add", "id_rsa", "big.bin"], cwd=repo, check=True, env=env)
    done = subprocess.run(
        [VENV_BIN / "pre-commit", "run", "--hook-stage", "pre-commit", "check-added-large-files"],
        cwd=repo, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "big.bin" in done.stdout
    done = subprocess.run(
        [VENV_BIN / "pre-commit", "run", "detect-private-key"],
        cwd=repo, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "id_rsa" in done.stdout


def test_a_commit_subject_over_72_characters_is_refused(tmp_path: Path) -> None:
    message = tmp_path / "COMMIT_EDITMSG"
    check = [sys.executable, str(ROOT / "scripts" / "check_commit_subject.py"), str(message)]
    message.write_text("# a comment line git strips\n" + "x" * 72 + "\n\n" + "a long body line " * 20)
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    message.write_text("y" * 73 + "\n")
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "73 characters (at most 72)" in done.stdout


def test_the_suite_settings_keep_it_honest() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pytest_options = project["tool"]["pytest"]["ini_options"]
    assert pytest_options["timeout"] <= 60
    assert pytest_options["xfail_strict"] is True
    assert pytest_options["filterwarnings"] == ["error"]  # no downgrade of any warning
    assert "--cov" in pytest_options["addopts"]
    coverage = project["tool"]["coverage"]
    assert "subprocess" in coverage["run"]["patch"]  # the servers run as subprocesses in the tests
    assert coverage["report"]["fail_under"] >= 91

"""The `sidehand` command's own edges: options after `--` reach the servers, and a reader that
closes the pipe early (`| head`) gets no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.store import SessionStore

CLI = [sys.executable, "-m", "sidehand"]


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEHAND_")}
    env.update(SIDEHAND_SESSIONS_DIR=str(tmp_path / "sessions"), SIDEHAND_CONFIG=str(tmp_path / "none.toml"))
    return env


def test_sessions_list_into_head_exits_quietly(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    store.root.mkdir(parents=True)
    for n in range(3000):  # more than a pipe holds: the writer meets the closed pipe mid-listing
        (store.root / f"s{n:05}").mkdir()
        store.write_meta(f"s{n:05}", {"id": f"s{n:05}", "workspace": "/w" * 40, "created": time.time()})
    done = subprocess.run(
        f"{' '.join(CLI)} sessions list | head -1",
        shell=True,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_options_after_a_double_dash_reach_the_servers(tmp_path: Path) -> None:
    for server in ("mcp", "lsp"):
        done = subprocess.run(
            [*CLI, server, "--", "--help"], env=env_for(tmp_path), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: sidehand {server}")

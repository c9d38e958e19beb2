"""Fixtures for the sandbox tests: a real Docker engine, a small workspace, a sandbox per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from core.config import DEFAULT_IMAGE
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory

OUTPUT_LIMIT = 2_000


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """The engine the tests run against; the docker tests are skipped (with the reason) without one."""
    try:
        client = docker.from_env()
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"the sandbox image {DEFAULT_IMAGE} is missing: run scripts/setup.sh")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        pytest.skip(f"no Docker engine ({exc}): run scripts/setup.sh")
    yield client
    client.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A small project: text, an executable script, a nested package, a symlink, excluded folders
    and a .git folder."""
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "README.md").write_text("# demo\n\nline three\n")
    (ws / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (ws / "pkg" / "data.bin").write_bytes(bytes(range(256)))
    (ws / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (ws / "run.sh").chmod(0o755)
    (ws / "link.md").symlink_to("README.md")
    (ws / ".hidden").write_text("secret-ish\n")
    for excluded in ("node_modules/lib", ".venv/bin", "pkg/__pycache__"):
        (ws / excluded).mkdir(parents=True)
        (ws / excluded / "junk.txt").write_text("excluded\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return ws


@pytest.fixture
def factory(docker_client: Any) -> DockerSandboxFactory:
    return DockerSandboxFactory(
        SandboxSettings(output_limit=OUTPUT_LIMIT, kill_grace=0.5), docker_client=docker_client
    )


@pytest.fixture
async def sandbox(
    factory: DockerSandboxFactory, workspace: Path, tmp_path: Path
) -> AsyncIterator[DockerSandbox]:
    box = await factory(workspace, "test-session")
    try:
        yield box
    finally:
        await box.close()

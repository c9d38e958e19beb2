"""The sandbox container: hardening, labels, lifecycle, orphan reaping, errors, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from core.config import DEFAULT_IMAGE, Settings
from core.errors import SandboxError
from sandbox.container import KEEP_ALIVE, LABEL, SandboxSettings
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory, reap_orphans

pytestmark = pytest.mark.docker


async def test_hardened_by_default(sandbox: DockerSandbox, docker_client: Any) -> None:
    result = await sandbox.run(
        "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls /sys/class/net; "
        "touch /etc/x 2>/dev/null || echo no-root-write"
    )
    uid, cap_eff, no_new_privs, *rest = result.output.splitlines()
    assert uid == "1000"
    assert cap_eff.split() == ["CapEff:", "0000000000000000"]
    assert no_new_privs.split() == ["NoNewPrivs:", "1"]
    assert rest == ["lo", "no-root-write"]  # the loopback interface only: no network
    host_config = docker_client.api.inspect_container(sandbox.container_id)["HostConfig"]
    assert host_config["NetworkMode"] == "none"
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["SecurityOpt"] == ["no-new-privileges"]
    assert (host_config["PidsLimit"], host_config["Memory"], host_config["NanoCpus"]) == (
        1024,
        4 * 1024**3,
        2_000_000_000,
    )


async def test_labels_name_the_owner(sandbox: DockerSandbox, docker_client: Any) -> None:
    labels = docker_client.api.inspect_container(sandbox.container_id)["Config"]["Labels"]
    assert labels[LABEL] == "1"
    assert labels[f"{LABEL}.session"] == "test-session"
    assert labels[f"{LABEL}.pid"] == str(os.getpid())
    assert labels[f"{LABEL}.host"] == socket.gethostname()


async def test_close_removes_the_container_and_is_safe_twice(
    factory: DockerSandboxFactory, workspace: Path, tmp_path: Path, docker_client: Any
) -> None:
    box = await factory(workspace, "closing")
    await box.close()
    await box.close()
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(box.container_id)
    with pytest.raises(SandboxError, match="closed"):
        await box.run("true")


def test_reap_orphans_removes_containers_of_dead_processes_only(docker_client: Any) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = dead.stdout.strip()
    api = docker_client.api
    common = {LABEL: "1", f"{LABEL}.host": socket.gethostname(), f"{LABEL}.session": "reap-test"}
    orphan = api.create_container(DEFAULT_IMAGE, KEEP_ALIVE, labels={**common, f"{LABEL}.pid": dead_pid})
    alive = api.create_container(
        DEFAULT_IMAGE, KEEP_ALIVE, labels={**common, f"{LABEL}.pid": str(os.getpid())}
    )
    try:
        removed = reap_orphans(docker_client)
        assert orphan["Id"] in removed
        assert alive["Id"] not in removed
        with pytest.raises(docker.errors.NotFound):
            api.inspect_container(orphan["Id"])
        api.inspect_container(alive["Id"])
    finally:
        for container in (orphan, alive):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(container["Id"], force=True)


async def test_unknown_image_says_what_to_do(docker_client: Any, workspace: Path, tmp_path: Path) -> None:
    factory = DockerSandboxFactory(
        SandboxSettings(image="sidehand/no-such-image:never"), docker_client=docker_client
    )
    with pytest.raises(SandboxError) as caught:
        await factory(workspace, "s")
    message = str(caught.value)
    assert "sidehand/no-such-image:never" in message
    assert "docker pull" in message and "sidehand sandbox build-base" in message
    assert "SIDEHAND_SANDBOX_IMAGE" in message


async def test_missing_workspace_is_refused(factory: DockerSandboxFactory, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        await factory(tmp_path / "nowhere", "s")


async def test_no_engine_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, workspace: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    factory = DockerSandboxFactory()
    with pytest.raises(SandboxError, match="no Docker engine") as caught:
        await factory(workspace, "s")
    assert "scripts/setup.sh" in str(caught.value)
    assert "dockerd" in str(caught.value)


async def test_four_sandboxes_at_once_are_independent(factory: DockerSandboxFactory, tmp_path: Path) -> None:
    workspaces = []
    for n in range(4):
        ws = tmp_path / f"ws{n}"
        ws.mkdir()
        (ws / "id.txt").write_text(f"{n}\n")
        workspaces.append(ws)
    boxes = await asyncio.gather(*(factory(ws, f"par-{n}") for n, ws in enumerate(workspaces)))
    try:

        async def session(n: int, box: DockerSandbox) -> tuple[str, str, list[str]]:
            await box.run(f"export N={n}; cd /tmp")
            slow = await box.run(f"sleep 0.{n}; echo $N; cat /workspace/id.txt", timeout=20)
            await box.write_file("mine.txt", f"box {n}".encode())
            changed = list(await box.collect_changes())
            return slow.output, (await box.read_file("mine.txt")).decode(), changed

        results = await asyncio.gather(*(session(n, box) for n, box in enumerate(boxes)))
        assert results == [(f"{n}\n{n}\n", f"box {n}", ["mine.txt"]) for n in range(4)]
        assert len({box.container_id for box in boxes}) == 4
    finally:
        await asyncio.gather(*(box.close() for box in boxes))


def test_the_sandbox_defaults_are_the_settings_defaults() -> None:
    from_settings = SandboxSettings.from_settings(Settings())
    assert DockerSandboxFactory().settings == dataclasses.replace(from_settings, private=())
    assert from_settings.private == (Settings().sessions_dir,)

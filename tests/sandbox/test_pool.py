"""Ready sandboxes on the real Docker engine: made ahead, following the host while they wait,
handed out at once (named after the session that takes one), replaced, removed on close."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.config import Settings
from core.mirror import HostWatches
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory
from tests.support.waits import eventually


def names(docker_client: Any, container_id: str) -> str:
    return str(docker_client.api.inspect_container(container_id)["Name"])


async def test_a_ready_sandbox_is_reused_refilled_and_follows_the_host(
    docker_client: Any, workspace: Path
) -> None:
    factory = DockerSandboxFactory(SandboxSettings(pool=1), docker_client=docker_client)
    watches = HostWatches(Settings())
    watch = await watches.acquire(workspace)
    try:
        await factory.prewarm(workspace, watch)
        await eventually(lambda: factory.pool.ready == 1, timeout=60)
        reported: set[str] = set()
        watch.subscribe(lambda changes: reported.update(changes.files))
        (workspace / "README.md").write_text("saved while it waited\n")
        (workspace / "later.txt").write_text("new\n")
        # saved before the claim: reported by the watch (the claim waits until the ready sandbox
        # holds what was reported)
        await eventually(lambda: {"README.md", "later.txt"} <= reported)
        first = await factory(workspace, "session-one")
        assert isinstance(first, DockerSandbox)
        seen = await first.run("cat README.md later.txt")
        assert seen.output == "saved while it waited\nnew\n"
        assert await first.collect_changes() == {}  # the host's files are not the agent's changes
        await eventually(lambda: factory.pool.ready == 1, timeout=60)  # refilled
        await eventually(lambda: "session-one" in names(docker_client, first.container_id))
        second = await factory(workspace, "session-two")
        assert second.container_id != first.container_id
        await eventually(lambda: factory.pool.ready == 1, timeout=60)
        await first.close()
        await second.close()
    finally:
        await factory.aclose()
        await watches.aclose()
    mine = docker_client.api.containers(all=True, filters={"label": f"sidehand.pid={os.getpid()}"})
    assert [c for c in mine if c["Labels"].get("sidehand.session", "").startswith("pool-")] == []

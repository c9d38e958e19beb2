"""A remote engine through DOCKER_HOST: a second dockerd on this machine, reached over TCP with TLS
(its own certificates), used by the sandbox and by `sidehand mcp` exactly as the local one is."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from core.config import DEFAULT_IMAGE
from core.host_watch import HostFile
from sandbox.container import SandboxSettings, connect_engine
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory
from tests.agent_mcp.conftest import data
from tests.support.ssh_engine import ssh_engine
from tests.support.tls_engine import tls_engine

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def tls_env(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    bridges_before = _bridges()
    with tls_engine(tmp_path_factory.mktemp("tls-engine"), DEFAULT_IMAGE, docker_client) as env:
        yield env
    assert _bridges() == bridges_before  # the local engine's docker0 is left alone


def _bridges() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir() if (p / "bridge").exists()}


async def test_the_sandbox_over_tls(
    tls_env: dict[str, str], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in tls_env.items():
        monkeypatch.setenv(name, value)
    # Set on many machines for other HTTPS traffic; the engine's CA must still be the one used.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = connect_engine()
    assert client.api.base_url.startswith("https://127.0.0.1:")
    for settings in (SandboxSettings(), SandboxSettings(tmpfs="64m")):  # the archive API, then tar
        box = await DockerSandboxFactory(settings, docker_client=client)(workspace, "tls")
        assert isinstance(box, DockerSandbox)
        try:
            ran = await box.run("cat README.md; echo $((6 * 7)) > answer.txt; ./run.sh")
            assert ran.output == "# demo\n\nline three\nran\n"
            payload = bytes(range(256)) * 4096  # a megabyte through the TLS link, both ways
            await box.write_file("blob.bin", payload)
            assert await box.read_file("blob.bin") == payload
            assert await box.collect_changes() == {"answer.txt": b"42\n", "blob.bin": payload}
            taken = await box.follow_host(
                {"README.md": HostFile(b"host\n")}, {"README.md": box.copied["README.md"]}
            )
            assert taken == {"README.md"}
            interrupted = await box.run("sleep 30", timeout=0.5)
            assert interrupted.timed_out and (await box.run("echo alive")).output == "alive\n"
        finally:
            await box.close()
    assert client.api.containers(all=True) == []
    client.close()


async def test_sidehand_mcp_over_tls(tls_env: dict[str, str], tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "hello.txt").write_text("over TLS\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SIDEHAND_SESSIONS_DIR": str(tmp_path / "sessions"),
        "SIDEHAND_CONFIG": str(tmp_path / "no-config.toml"),
        "SIDEHAND_MCP_ROOTS": str(workspace),
        "SIDEHAND_SANDBOX_POOL": "0",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
        **tls_env,
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "sidehand", "mcp"], env=env)
    with anyio.fail_after(90):
        async with Client(params, read_timeout_seconds=60) as client:
            box = data(await client.call_tool("sandbox_open", {}))["sandbox_id"]
            ran = data(await client.call_tool("sandbox_run", {"sandbox_id": box, "command": "cat hello.txt"}))
            assert ran["output"].startswith("over TLS\n")
            await client.call_tool("sandbox_close", {"sandbox_id": box})


async def test_the_sandbox_over_ssh(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ssh_engine(tmp_path / "ssh") as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = connect_engine()
        box = await DockerSandboxFactory(SandboxSettings(), docker_client=client)(workspace, "ssh")
        try:
            ran = await box.run("cat README.md; echo made > made.txt")
            assert ran.output == "# demo\n\nline three\n"
            payload = bytes(range(256)) * 4096
            await box.write_file("blob.bin", payload)
            assert await box.read_file("blob.bin") == payload
            assert await box.collect_changes() == {"made.txt": b"made\n", "blob.bin": payload}
        finally:
            await box.close()
        client.close()

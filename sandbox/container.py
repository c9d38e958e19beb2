"""The sandbox container's lifecycle: engine connection, hardened creation, labels, orphan reaping.

Docker SDK exceptions are translated here into core.errors.SandboxError with what to do next."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from core.config import (
    DEFAULT_CPUS,
    DEFAULT_IMAGE,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MEMORY,
    DEFAULT_OUTPUT_LIMIT,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_SANDBOX_EXCLUDES,
    Settings,
)
from core.errors import SandboxError
from core.owner import Owner
from core.protocols import WORKDIR

log = logging.getLogger(__name__)

SANDBOX_HOME = "/home/sidehand"
# The container's main process only keeps it alive. Plain POSIX sh, so it works with busybox too
# (whose `sleep` may not know `infinity`); the trap makes `docker stop` instant.
KEEP_ALIVE = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
LABEL = "sidehand"
# Non-interactive defaults: no pager waits for a key, no colour codes in the agent's output.
SANDBOX_ENV = {
    "HOME": SANDBOX_HOME,
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "TERM": "dumb",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}

_executor: ThreadPoolExecutor | None = None


def docker_executor() -> ThreadPoolExecutor:
    """The thread pool for blocking docker SDK calls, shared by every sandbox in the process and
    separate from asyncio's default pool, so many sessions starting at once starve nothing else.
    Created on first use (importing this module starts no threads)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sidehand-docker")
    return _executor


@dataclass(frozen=True)
class SandboxSettings:
    """How sandboxes are made (the defaults are core.config's); see DockerSandboxFactory."""

    image: str = DEFAULT_IMAGE
    network: bool = False
    memory: str = DEFAULT_MEMORY
    cpus: float = DEFAULT_CPUS
    pids_limit: int = DEFAULT_PIDS_LIMIT
    uid: int = 1000
    gid: int = 1000
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    kill_grace: float = 2.0
    excludes: tuple[str, ...] = DEFAULT_SANDBOX_EXCLUDES  # gitignore patterns left out of the copy
    gitignore: bool = True  # what .gitignore ignores is left out too
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # bytes of data; larger files are not copied (0: any)
    tmpfs: str | None = None  # /workspace in memory, of this size
    pool: int = 1  # ready sandboxes kept per workspace a server prewarms (see DockerSandboxFactory)
    private: tuple[Path, ...] = ()  # never copied, even inside a workspace (the session store)
    environment: Mapping[str, str] = field(default_factory=lambda: dict(SANDBOX_ENV))

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SandboxSettings:
        values: dict[str, Any] = {
            "image": settings.sandbox_image,
            "network": settings.network,
            "memory": settings.memory,
            "cpus": settings.cpus,
            "pids_limit": settings.pids_limit,
            "output_limit": settings.output_limit,
            "excludes": tuple(settings.sandbox_excludes),
            "gitignore": settings.sandbox_gitignore,
            "max_file_size": settings.sandbox_max_file_size,
            "tmpfs": settings.sandbox_tmpfs,
            "pool": settings.sandbox_pool,
            "private": (settings.sessions_dir,),
        }
        return cls(**(values | overrides))


@contextlib.contextmanager
def docker_errors(action: str, image: str = "") -> Iterator[None]:
    """Turn docker SDK / transport exceptions into a SandboxError that says what to do."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise SandboxError(
            f"the sandbox image {image!r} is not in the Docker engine: pull it (`docker pull {image}`), "
            "build the default image with `sidehand sandbox build-base`, or set SIDEHAND_SANDBOX_IMAGE "
            "to an image you have"
        ) from exc
    except docker.errors.APIError as exc:
        raise SandboxError(f"Docker refused to {action}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise SandboxError(f"lost the Docker engine while trying to {action}: {exc}") from exc
    except Exception as exc:
        if not type(exc).__module__.startswith("paramiko"):
            raise
        # An ssh:// engine: the SDK carries every connection as a session of one ssh connection,
        # and sshd allows 10 by default.
        raise SandboxError(
            f"the ssh connection to the Docker engine refused to {action} ({exc!r}): its sshd may "
            "limit sessions per connection; set `MaxSessions 64` in the remote sshd_config"
        ) from exc


class EngineAPI(docker.APIClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's API client, with the engine's own CA (DOCKER_CERT_PATH) always the one verified
    against: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace it (docker-py #2433), and
    many machines set those for their other HTTPS traffic."""

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        if isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


class EngineClient(docker.DockerClient):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.api = EngineAPI(*args, **kwargs)


def connect_engine() -> Any:
    """A docker client from the environment, as the docker CLI reads it: DOCKER_HOST (a unix
    socket, tcp, tcp with TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or ssh:// with the keys,
    ~/.ssh/config and known hosts the SDK's paramiko reads) or the default socket."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        _probe_unix_socket(host)
        return EngineClient.from_env()
    except (OSError, docker.errors.DockerException, requests.RequestException) as exc:
        raise SandboxError(
            f"no Docker engine is reachable ({exc}): run `scripts/setup.sh`, or start one "
            "(`sudo dockerd &` or `systemctl start docker`), or point DOCKER_HOST at one"
        ) from exc


def _probe_unix_socket(docker_host: str) -> None:
    """Connect to a unix-socket engine ourselves first: when nothing listens, the SDK fails inside
    the client's constructor and leaks the socket it opened."""
    if not docker_host.startswith("unix://"):
        return
    path = docker_host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot connect to {path}: {exc.strerror or exc}") from exc


def container_labels(owner: Owner, session_id: str) -> dict[str, str]:
    """The labels that say whose a container is (for reaping it once its owner is gone)."""
    return {
        LABEL: "1",
        f"{LABEL}.session": session_id,
        f"{LABEL}.pid": str(owner.pid),
        f"{LABEL}.host": owner.host,
        f"{LABEL}.boot": owner.boot,
        f"{LABEL}.started": owner.started,
    }


def create_container(api: Any, settings: SandboxSettings, name: str, labels: Mapping[str, str]) -> str:
    """Create (not start) the hardened sandbox container; returns its id. `api`: a docker APIClient."""
    host_config = api.create_host_config(
        network_mode=None if settings.network else "none",  # None: the engine's default bridge
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=settings.pids_limit,
        mem_limit=settings.memory,
        nano_cpus=int(settings.cpus * 1e9),
        init=True,  # docker-init as pid 1 reaps the orphans of killed commands
        tmpfs=_tmpfs(settings),
    )
    with docker_errors("create the sandbox container", settings.image):
        created = api.create_container(
            settings.image,
            command=KEEP_ALIVE,
            name=name,
            hostname="sandbox",
            user=f"{settings.uid}:{settings.gid}",
            environment=dict(settings.environment),
            labels=dict(labels),
            host_config=host_config,
        )
    return str(created["Id"])


def _tmpfs(settings: SandboxSettings) -> dict[str, str] | None:
    """/workspace in memory: owned by the sandbox user, programs may run from it."""
    if not settings.tmpfs:
        return None
    options = f"rw,exec,nosuid,nodev,size={settings.tmpfs},uid={settings.uid},gid={settings.gid},mode=0755"
    return {WORKDIR: options}


def remove_container(api: Any, container_id: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(container_id, force=True, v=True)


def reap_orphans(client: Any) -> list[str]:
    """Remove sidehand containers whose owning process on this machine is gone; returns their ids.

    Containers of other machines sharing the engine are left alone: their owners cannot be checked."""
    host = Owner.current().host
    filters = {"label": [f"{LABEL}=1", f"{LABEL}.host={host}"]}
    removed = []
    for container in client.api.containers(all=True, filters=filters):
        labels = container.get("Labels") or {}
        owner = Owner.from_dict({k.removeprefix(f"{LABEL}."): v for k, v in labels.items()})
        if owner is not None and owner.alive():
            continue
        log.info("removing orphaned sandbox container %s", container["Id"][:12])
        with contextlib.suppress(docker.errors.APIError):
            remove_container(client.api, container["Id"])
            removed.append(str(container["Id"]))
    return removed

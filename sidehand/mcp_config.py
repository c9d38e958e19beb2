"""Which MCP servers the user configured, in the `mcpServers` JSON shape that Claude Code, Cursor
and Claude Desktop use (VS Code's `servers` key is accepted too):

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "some-mcp-server"], "env": {"TOKEN": "${TOKEN}"}},
        "docs":  {"type": "http", "url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}
    }}

Two files: the user's (`mcp_config`, default `~/.config/sidehand/mcp.json`) and the workspace's
`.mcp.json` (Claude Code's project file). A workspace's servers are commands a repository asks to
run on the user's machine, so they start only with `trust_workspace_mcp`; otherwise the user is
told they were not started. `${VAR}` and `${VAR:-default}` are replaced from the environment in
`command`, `args`, `env`, `cwd`, `url` and `headers`. A file or an entry that cannot be used is a
problem for the user (a notice), never an error: the others still start."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.config import Settings
from core.errors import UnsafePathError
from core.host_workspace import HostWorkspace

WORKSPACE_FILE = ".mcp.json"
MAX_CONFIG_BYTES = 1_000_000
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ServerConfig(BaseModel):
    """One entry of `mcpServers`. Keys other agents add (`alwaysAllow`, `autoApprove`, `timeout`,
    …) are ignored: approvals are Sidehand's policy's."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Literal["stdio", "http", "streamable-http", "streamableHttp", "sse"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs a `command`")
        if self.transport != "stdio" and not self.url:
            raise ValueError("an http or sse server needs a `url`")
        return self

    @property
    def transport(self) -> Literal["stdio", "http", "sse"]:
        if self.type in ("http", "streamable-http", "streamableHttp"):
            return "http"
        if self.type == "sse":
            return "sse"
        return "http" if self.type is None and self.url and not self.command else "stdio"


def expand(value: str, environ: Mapping[str, str]) -> str:
    """`${VAR}` / `${VAR:-default}` replaced; a variable unset and without default is an error."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ValueError(f"the environment variable {name} is not set")

    return _VARIABLE.sub(one, value)


def _expanded(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    out = dict(raw)
    for key in ("command", "cwd", "url"):
        if isinstance(out.get(key), str):
            out[key] = expand(out[key], environ)
    if isinstance(out.get("args"), list):
        out["args"] = [expand(a, environ) if isinstance(a, str) else a for a in out["args"]]
    for key in ("env", "headers"):
        if isinstance(out.get(key), dict):
            out[key] = {k: expand(v, environ) if isinstance(v, str) else v for k, v in out[key].items()}
    return out


def parse_config(
    text: str, where: str, environ: Mapping[str, str]
) -> tuple[dict[str, ServerConfig], list[str]]:
    """The servers of one config file's text, and what was wrong with it (one line each)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, [f"MCP config {where} is not valid JSON ({exc}); its servers were not started"]
    entries = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}, [f"MCP config {where} has no `mcpServers` object; no server was started from it"]
    servers: dict[str, ServerConfig] = {}
    problems = []
    for name, raw in entries.items():
        if not isinstance(raw, dict):
            problems.append(f"MCP server {name!r} in {where}: its entry is not an object; not started")
            continue
        try:
            config = ServerConfig.model_validate(_expanded(raw, environ))
        except (ValidationError, ValueError) as exc:
            detail = (
                "; ".join(e["msg"] for e in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
            )
            problems.append(f"MCP server {name!r} in {where}: {detail}; not started")
            continue
        if not config.disabled:
            servers[name] = config
    return servers, problems


def load_servers(
    workspace: Path, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, ServerConfig], list[str]]:
    """The servers to start for a session over `workspace` (the workspace's entries win over the
    user's of the same name), and the problems to report."""
    environ = os.environ if environ is None else environ
    servers: dict[str, ServerConfig] = {}
    problems: list[str] = []
    user_file = settings.mcp_config
    if user_file is not None and user_file.is_file():
        try:
            text = user_file.read_bytes()[:MAX_CONFIG_BYTES].decode("utf-8", "replace")
        except OSError as exc:
            problems.append(f"cannot read the MCP config {user_file}: {exc.strerror or exc}")
        else:
            found, bad = parse_config(text, str(user_file), environ)
            servers.update(found)
            problems += bad
    try:
        data = HostWorkspace(workspace).read(WORKSPACE_FILE)  # never through a symlink
    except UnsafePathError as exc:
        problems.append(f"the workspace's {WORKSPACE_FILE} was not read: {exc}")
        data = None
    if data is not None:
        where = f"{workspace / WORKSPACE_FILE}"
        found, bad = parse_config(data[:MAX_CONFIG_BYTES].decode("utf-8", "replace"), where, environ)
        if settings.trust_workspace_mcp:
            servers.update(found)
            problems += bad
        elif found:
            problems.append(
                f"the workspace's {WORKSPACE_FILE} names MCP servers ({', '.join(found)}) that were not "
                "started: they would run on your machine, outside the sandbox. Start them with "
                "trust_workspace_mcp = true (SIDEHAND_TRUST_WORKSPACE_MCP=1), or add them to "
                f"{user_file or 'your MCP config'}."
            )
    return servers, problems

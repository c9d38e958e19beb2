"""Settings: defaults, then the config file, then SIDEHAND_* environment variables, then explicit
overrides (command-line flags, an editor's initializationOptions). Documented in docs/configuration.md."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from core.errors import ConfigError
from core.redaction import environment_secrets

ApprovalMode = Literal["never", "risky", "always", "read_only"]
ToolCallMode = Literal["auto", "native", "text"]
CondenserStrategy = Literal["auto", "none", "window", "masking", "summary"]
ENV_PREFIX = "SIDEHAND_"
# Sandbox defaults, for Settings and for the sandbox modules alike (one source).
DEFAULT_IMAGE = "sidehand/base:bookworm-2"
# What the default image holds (sandbox/image.py installs it; a test checks each tool is there):
# the system prompt tells the model.
DEFAULT_IMAGE_TOOLS = (
    "bash, coreutils, python3 with pip, venv and pytest, git, ripgrep (rg), curl, patch and procps"
)
DEFAULT_MEMORY = "4g"
DEFAULT_CPUS = 2.0
DEFAULT_PIDS_LIMIT = 1024
DEFAULT_OUTPUT_LIMIT = 30_000
# Folders never mirrored into the sandbox (gitignore patterns; .gitignore files add to these).
DEFAULT_SANDBOX_EXCLUDES = (
    ".venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
)
DEFAULT_MAX_FILE_SIZE = 50 << 20


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "sidehand"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "sidehand" / "config.toml"


class ModelProfile(BaseModel):
    """What Sidehand should know of one model, as a `[models."NAME"]` table in the config file
    (NAME as in `model`). Each value may also be set for whatever model is used, at the top level
    or as SIDEHAND_<NAME> (prices only in a table); there they win over the table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool_calls: ToolCallMode | None = Field(
        None, description="native (the API's tool calling), text (described in the prompt), auto"
    )
    context_window: int | None = Field(None, ge=1024, description="tokens the model takes in a request")
    input_price: float | None = Field(None, ge=0, description="USD per million prompt tokens")
    output_price: float | None = Field(None, ge=0, description="USD per million completion tokens")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    max_output_tokens: int | None = Field(None, ge=16, description="the longest reply asked for (max_tokens)")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(None, description="litellm model name, e.g. openai/gpt-4o or openai/qwen")
    api_base: str | None = Field(None, description="base URL of an OpenAI-compatible server")
    api_key: SecretStr | None = Field(None, description="API key; never logged")
    approval_mode: ApprovalMode = "risky"
    sandbox_image: str = DEFAULT_IMAGE
    network: bool = False
    memory: str = DEFAULT_MEMORY
    cpus: float = Field(DEFAULT_CPUS, gt=0)
    pids_limit: int = Field(DEFAULT_PIDS_LIMIT, gt=0)
    max_iterations: int = Field(100, gt=0)
    command_timeout: float = Field(600.0, gt=0, description="seconds a command may run before it is killed")
    command_quiet_timeout: float = Field(
        10.0, gt=0, description="a bash call returns once its command printed nothing for this long"
    )
    output_limit: int = Field(DEFAULT_OUTPUT_LIMIT, ge=1000)
    llm_timeout: float = Field(120.0, gt=0)
    llm_retries: int = Field(3, ge=0)
    max_budget: float | None = Field(
        None, gt=0, description="stop a task (a turn) when its cost (USD) reaches this"
    )
    max_tokens: int | None = Field(None, gt=0, description="stop a task when it has used this many tokens")
    turn_timeout: float | None = Field(None, gt=0, description="stop a task after this many seconds")
    prompt_token_budget: int = Field(32_000, ge=2000, description="the prompt is kept under this many tokens")
    condenser: CondenserStrategy = "auto"
    condenser_model: str | None = Field(None, description="a cheaper model for the condenser's summaries")
    context_window: int | None = Field(
        None, ge=1024, description="the model's context window in tokens (default: litellm's figure)"
    )
    user_skills_dir: Path | None = Field(default_factory=lambda: Path.home() / ".agents" / "skills")
    mcp_config: Path | None = Field(
        default_factory=lambda: default_config_path().parent / "mcp.json",
        description="the user's MCP servers (mcpServers JSON) whose tools the agent gets",
    )
    trust_workspace_mcp: bool = Field(
        False, description="also start the MCP servers of the workspace's .mcp.json (they run on the host)"
    )
    max_saved_output: int = Field(
        10_000_000, ge=0, description="bytes of a command's full output kept on the host (0: none)"
    )
    max_session_outputs: int = Field(
        200_000_000, ge=0, description="bytes of full outputs kept on the host per session"
    )
    sandbox_idle_timeout: float = Field(
        900.0, ge=0, description="stop a session's sandbox after this many seconds unused (0: never)"
    )
    sandbox_excludes: tuple[str, ...] = Field(
        DEFAULT_SANDBOX_EXCLUDES,
        description="gitignore patterns never mirrored into the sandbox (comma-separated in the environment)",
    )
    sandbox_gitignore: bool = Field(True, description="leave what .gitignore ignores out of the sandbox")
    sandbox_max_file_size: int = Field(
        DEFAULT_MAX_FILE_SIZE, ge=0, description="bytes of data a file may hold to be mirrored (0: no limit)"
    )
    sandbox_mirror: bool = Field(True, description="keep the sandbox following the host's files live")
    sandbox_pool: int = Field(
        1, ge=0, le=8, description="ready sandboxes kept per workspace by the servers (0: none)"
    )
    sandbox_tmpfs: str | None = Field(
        None, description="hold /workspace in memory, of at most this size (e.g. 512m); for small projects"
    )
    sessions_dir: Path = Field(default_factory=lambda: _data_home() / "sessions")
    # The model's profile: per model in `models`, or for whatever model at the top level.
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    tool_calls: ToolCallMode | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    max_output_tokens: int | None = Field(None, ge=16)

    sandbox_env: tuple[str, ...] = Field(
        (), description="host environment variables passed into the sandbox (none by default)"
    )

    @field_validator("sandbox_env", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """`SIDEHAND_SANDBOX_ENV=NPM_TOKEN,GITHUB_TOKEN` (a config file gives a list)."""
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value

    @field_validator("sandbox_excludes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def profile(self) -> ModelProfile:
        """The model's profile: its `models` table, with the top-level values that are set."""
        table = self.models.get(self.model or "", ModelProfile())
        top = {k: getattr(self, k) for k in ModelProfile.model_fields if k in type(self).model_fields}
        return table.model_copy(update={k: v for k, v in top.items() if v is not None})

    def secrets(self) -> list[str]:
        """Everything masked wherever Sidehand writes or shows text: the API key, and the values of
        the environment's credential variables (core.redaction.environment_secrets)."""
        own = [self.api_key.get_secret_value()] if self.api_key else []
        return own + environment_secrets()

    def require_model(self) -> str:
        if not self.model:
            raise ConfigError(
                "no model configured: set SIDEHAND_MODEL (e.g. openai/gpt-4o, or openai/<name> with "
                "SIDEHAND_API_BASE=http://host:port/v1 for an OpenAI-compatible server), or `model` in "
                f"{default_config_path()}, or pass --model"
            )
        return self.model


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        if name == "models":  # tables live in the config file
            continue
        value = environ.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            out[name] = value
    return out


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge the layers and validate. Raises ConfigError naming each bad setting and its source."""
    environ = dict(os.environ) if environ is None else environ
    path = config_file or Path(environ.get("SIDEHAND_CONFIG") or default_config_path())
    merged: dict[str, Any] = {}
    if path.is_file():
        try:
            merged.update(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    elif config_file is not None:
        raise ConfigError(f"config file {path} does not exist")
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_settings(merged, where=f"{path}, SIDEHAND_* variables or options")


def validate_settings(values: dict[str, Any], where: str = "settings") -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings ({where}): {problems}") from exc

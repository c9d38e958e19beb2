"""Settings: defaults, then the config file, then SIDEHAND_* environment variables, then explicit
overrides (command-line flags, an editor's initializationOptions). Documented in docs/configuration.md."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from core.errors import ConfigError

ApprovalMode = Literal["never", "risky", "always", "read_only"]
ToolCallMode = Literal["auto", "native", "text"]
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
        None, gt=0, description="stop a session when its cost (USD) reaches this"
    )
    prompt_token_budget: int = Field(60_000, ge=2000, description="the prompt is kept under this many tokens")
    max_saved_output: int = Field(
        10_000_000, ge=0, description="bytes of a command's full output kept on the host (0: none)"
    )
    max_session_outputs: int = Field(
        200_000_000, ge=0, description="bytes of full outputs kept on the host per session"
    )
    sandbox_idle_timeout: float = Field(
        900.0, ge=0, description="stop a session's sandbox after this many seconds unused (0: never)"
    )
    sessions_dir: Path = Field(default_factory=lambda: _data_home() / "sessions")
    # The model's profile: per model in `models`, or for whatever model at the top level.
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    tool_calls: ToolCallMode | None = None
    context_window: int | None = Field(None, ge=1024)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    max_output_tokens: int | None = Field(None, ge=16)

    def profile(self) -> ModelProfile:
        """The model's profile: its `models` table, with the top-level values that are set."""
        table = self.models.get(self.model or "", ModelProfile())
        top = {k: getattr(self, k) for k in ModelProfile.model_fields if k in type(self).model_fields}
        return table.model_copy(update={k: v for k, v in top.items() if v is not None})

    def secrets(self) -> list[str]:
        return [self.api_key.get_secret_value()] if self.api_key else []

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

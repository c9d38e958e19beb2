"""Settings from `initializationOptions` (camelCase keys, e.g. `apiBase`, `approvalMode`), merged
over the config file and SIDEHAND_* variables. Bad keys are dropped and reported (without their
values: one may be the API key); the others still apply."""

from __future__ import annotations

import re
from typing import Any

from core.config import Settings, load_settings, validate_settings
from core.errors import ConfigError

RESERVED = {"sidehand", "token"}  # the protocol declaration and the TCP token: not settings


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def settings_from_options(options: Any) -> tuple[Settings, list[str]]:
    """The settings to use, and the problems to show the user."""
    problems: list[str] = []
    overrides: dict[str, Any] = {}
    if isinstance(options, dict):
        for key, value in options.items():
            if key in RESERVED:
                continue
            name = snake(key)
            if name not in Settings.model_fields:
                problems.append(f"unknown setting {key!r}")
                continue
            overrides[name] = value
    elif options is not None:
        problems.append("initializationOptions must be an object")
    try:
        base = load_settings()
    except ConfigError as exc:
        problems.append(str(exc))
        base = validate_settings({})
    good: dict[str, Any] = {}
    for name, value in overrides.items():
        try:
            validate_settings({**base.model_dump(), **good, name: value}, where="initializationOptions")
        except ConfigError as exc:
            problems.append(str(exc).replace(f"{name}: ", f"{name} (default used): ", 1))
            continue
        good[name] = value
    return validate_settings({**base.model_dump(), **good}, where="initializationOptions"), problems

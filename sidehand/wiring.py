"""Builds a SessionManager with the real Docker sandbox and the tools of the user's MCP servers: the
one place the fronts (CLI, language server, MCP server) construct those implementations."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from core.config import Settings
from core.sessions import LLMFactory, SessionManager, default_llm_factory
from sidehand.mcp_tools import McpToolsFactory


def build_manager(settings: Settings, llm_factory: LLMFactory = default_llm_factory) -> SessionManager:
    from sandbox.container import SandboxSettings
    from sandbox.docker_sandbox import DockerSandboxFactory

    sandbox_settings = SandboxSettings.from_settings(settings)
    environment = {**sandbox_settings.environment, **passed_environment(settings)}
    factory = DockerSandboxFactory(dataclasses.replace(sandbox_settings, environment=environment))
    return SessionManager(settings, factory, llm_factory, external_tools=McpToolsFactory())


def passed_environment(settings: Settings) -> dict[str, str]:
    """The host variables the user named in `sandbox_env`: the only ones the sandbox gets (its
    shell starts from a fixed, non-interactive environment otherwise; no key ever gets in)."""
    missing = [name for name in settings.sandbox_env if name not in os.environ]
    if missing:
        log.warning("sandbox_env names variables that are not set: %s", ", ".join(missing))
    return {name: os.environ[name] for name in settings.sandbox_env if name in os.environ}


log = logging.getLogger(__name__)
_prefetch_lock = threading.Lock()
_prefetch_thread: threading.Thread | None = None


def prefetch() -> threading.Thread:
    """Load what a session needs on a background thread, once: the Docker sandbox (~0.4 s), then
    litellm (seconds) and the TLS context. The fronts call this as they start (the servers once
    they are up), so that none of it runs on (or holds the GIL against) an event loop when the
    first session starts. Returns that thread (the same one on every call)."""
    global _prefetch_thread
    with _prefetch_lock:
        if _prefetch_thread is None:
            _prefetch_thread = threading.Thread(target=_load, name="sidehand-prefetch", daemon=True)
            _prefetch_thread.start()
        return _prefetch_thread


def _load() -> None:
    try:
        import sandbox.docker_sandbox  # noqa: F401
        from core.llm import load_litellm
        from core.llm.wire import tls_context

        load_litellm()
        tls_context()
    except Exception:
        log.exception("could not import the sandbox or the model client")

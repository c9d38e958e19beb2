"""Builds a SessionManager with the real Docker sandbox: the one place the fronts (CLI, language
server, MCP server) construct the sandbox implementation."""

from __future__ import annotations

from core.config import Settings
from core.sessions import LLMFactory, SessionManager, default_llm_factory


def build_manager(settings: Settings, llm_factory: LLMFactory = default_llm_factory) -> SessionManager:
    from sandbox.docker_sandbox import DockerSandboxFactory

    factory = DockerSandboxFactory(
        image=settings.sandbox_image,
        network=settings.network,
        memory=settings.memory,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        output_limit=settings.output_limit,
    )
    return SessionManager(settings, factory, llm_factory)

"""Sidehand's own error hierarchy. Library exceptions (litellm, docker) are translated into these at
the module that talks to the library, so the rest of the code never imports a library to catch."""

from __future__ import annotations


class SidehandError(Exception):
    """Base class: the message says what happened and what to do about it."""


class ConfigError(SidehandError):
    """Settings are missing or invalid."""


class LLMError(SidehandError):
    """The model call failed. `retryable` says whether trying again may help."""

    retryable = False


class LLMConnectionError(LLMError):
    retryable = True


class LLMTimeoutError(LLMError):
    retryable = True


class LLMRateLimitError(LLMError):
    retryable = True


class LLMServerError(LLMError):
    retryable = True


class LLMAuthError(LLMError):
    pass


class LLMBadRequestError(LLMError):
    pass


class LLMContextWindowError(LLMBadRequestError):
    pass


class LLMToolsUnsupportedError(LLMBadRequestError):
    """The server takes no tools in a request (llama.cpp without --jinja, an Ollama model without
    tool support): the tools must be described in the prompt instead."""


class SandboxError(SidehandError):
    """The sandbox could not be started or stopped working."""


class SandboxCrowdedError(SandboxError):
    """The sandbox is at its process limit (a fork bomb, a runaway job): nothing new can start."""


class CommandRunningError(SandboxError):
    """A command is still running in the shell (or, with `command` None, none is)."""

    def __init__(self, message: str, command: str | None = None, elapsed: float = 0.0) -> None:
        super().__init__(message)
        self.command = command
        self.elapsed = elapsed


class FileTooLargeError(OSError):
    """A file holds more bytes than the caller will read."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"{path} holds {size} bytes, more than {limit}")
        self.path = path
        self.size = size
        self.limit = limit


class SessionError(SidehandError):
    """A session API call does not fit the session's state (a closed session, an empty prompt, ...)."""


class UnknownSessionError(SessionError):
    """No session has this id (or it is not live: load it first)."""


class SessionBusyError(SessionError):
    """The session is running a turn: wait for it, or cancel it."""


class UnsafePathError(SidehandError):
    """A change names a path that could lead outside the workspace, or at something not a file."""


class ConflictError(SidehandError):
    """The host file changed since the sandbox copied it: applying would overwrite the user's edit."""

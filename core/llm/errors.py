"""A failed model call as one of our errors (core.errors.LLMError and its kinds), saying which
model and server, what to do about it, and never the API key."""

from __future__ import annotations

import re
from typing import Any

import httpx

from core.errors import (
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
    LLMToolsUnsupportedError,
)
from core.llm.loader import LiteLLM
from core.llm.wire import ServerReplyError
from core.redaction import Redactor

# litellm's messages start with class names ("litellm.InternalServerError: InternalServerError:
# OpenAIException - ..."); ours already say what kind of failure it is.
_LITELLM_PREFIXES = re.compile(r"^(?:\s*(?:litellm\.)?\w+(?:Error|Exception)(?::| -)\s*)+")

# How servers say they take no tools: llama.cpp ("tools param requires --jinja flag"), Ollama
# ("... does not support tools"), vLLM ("auto" tool choice requires --enable-auto-tool-choice).
_NO_TOOLS = re.compile(
    r"tools? param requires|does not support (?:tools|tool|function)|tool[_ ]choice requires"
    r"|(?:tools|tool calling|function calling)[\w ]*(?:is|are) not supported",
    re.I,
)

# How litellm and the provider SDKs say that no key was configured.
_MISSING_KEY = re.compile(
    r"missing (?:credentials|[\w ]*api key)|api[_ ]key (?:is )?(?:not set|required)", re.I
)

ADVICE: dict[type[LLMError], str] = {
    LLMConnectionError: "Check that the model server is running and the api_base is right.",
    LLMTimeoutError: "The server may be overloaded; try again, or raise llm_timeout.",
    LLMRateLimitError: "The provider is rate-limiting; wait a moment and try again.",
    LLMServerError: "Try again later, or look at the model server's log.",
    LLMAuthError: "Check the API key (api_key / SIDEHAND_API_KEY) and its access to this model.",
    LLMContextWindowError: "The prompt is too long for this model; lower prompt_token_budget.",
    LLMBadRequestError: "The server rejected the request; check the model name and settings.",
    LLMToolsUnsupportedError: 'Set tool_calls = "text" for this model to describe the tools in the prompt.',
    LLMError: "See the message above.",
}


class ErrorTranslator:
    """Makes our errors for one endpoint (`model` as litellm names it, at `api_base`); `redact`
    masks its key wherever a message would show it."""

    def __init__(self, model: str, api_base: str | None, redact: Redactor, timeout: float) -> None:
        self.model = model
        self.where = f"model {model} at {api_base}" if api_base else f"model {model}"
        self.redact = redact
        self.timeout = timeout

    def error(self, kind: type[LLMError], what: str, exc: BaseException | None = None) -> LLMError:
        detail = _LITELLM_PREFIXES.sub("", str(exc)).strip().rstrip(".") if exc is not None else ""
        message = f"{what} ({self.where})"
        if detail:
            message += f": {detail}"
        return kind(self.redact(f"{message}. {ADVICE[kind]}"))

    def translate(self, lib: LiteLLM, exc: Exception) -> LLMError:
        """Our error for whatever a route raised."""
        transport = _transport_cause(exc)
        if isinstance(transport, httpx.TimeoutException):
            return self.error(LLMTimeoutError, f"no answer within {self.timeout:g} s", transport)
        if transport is not None:
            return self.error(LLMConnectionError, "cannot reach the model server", transport)
        if isinstance(exc, ServerReplyError):
            exc = self._litellm_exception(lib, exc)
        if _NO_TOOLS.search(str(exc)):  # not worth a retry: the next request would carry tools too
            return self.error(LLMToolsUnsupportedError, "the server takes no tools in a request", exc)
        return self._from_litellm(lib, exc)

    def _litellm_exception(self, lib: LiteLLM, exc: ServerReplyError) -> Exception:
        """litellm's exception for an HTTP error our wire got, classified as on litellm's own
        routes (e.g. a 400 that says the context is too long is a context-window error)."""
        provider, _, name = self.model.partition("/")
        error: Exception = lib.openai_error(status_code=exc.status, message=exc.message, headers=exc.headers)
        try:
            lib.exception_type(model=name, original_exception=error, custom_llm_provider=provider)
        except Exception as mapped:
            return mapped
        return error

    def _from_litellm(self, lib: LiteLLM, exc: Exception) -> LLMError:
        """Map litellm's exception classes (which subclass the openai SDK's) to ours. Order matters:
        a context-window error is a bad request, a timeout is a connection error, in litellm's tree."""
        litellm = lib.module
        table: list[tuple[Any, type[LLMError], str]] = [
            (
                litellm.ContextWindowExceededError,
                LLMContextWindowError,
                "the prompt exceeds the context window",
            ),
            (litellm.AuthenticationError, LLMAuthError, "the server refused the credentials"),
            (litellm.PermissionDeniedError, LLMAuthError, "the key may not use this model"),
            (litellm.RateLimitError, LLMRateLimitError, "rate limited"),
            (litellm.Timeout, LLMTimeoutError, "no answer in time"),
            (litellm.APIConnectionError, LLMConnectionError, "cannot reach the model server"),
            (litellm.InternalServerError, LLMServerError, "the model server failed"),
            (litellm.ServiceUnavailableError, LLMServerError, "the model server is unavailable"),
            (litellm.BadGatewayError, LLMServerError, "bad gateway in front of the model server"),
            (litellm.NotFoundError, LLMBadRequestError, "no such model or endpoint"),
            (litellm.BadRequestError, LLMBadRequestError, "the request was rejected"),
            (litellm.UnprocessableEntityError, LLMBadRequestError, "the request was rejected"),
        ]
        if _MISSING_KEY.search(str(exc)):
            # Raised before any request, under whatever class the provider's code picked (even a 500).
            return self.error(LLMAuthError, "no API key for this provider", exc)
        status = getattr(exc, "status_code", None)
        # The server's HTTP status where it sent one (litellm also gives its own timeouts a 408).
        if not isinstance(status, int) or status < 400 or isinstance(exc, litellm.APIConnectionError):
            status = None
        http = f", HTTP {status}" if status else ""
        for litellm_class, ours, what in table:
            if isinstance(exc, litellm_class):
                return self.error(ours, what + http, exc)
        if status is None:
            return self.error(LLMError, f"the model call failed ({type(exc).__name__})", exc)
        if status >= 500:
            return self.error(LLMServerError, "the model server failed" + http, exc)
        if status == 429:
            return self.error(LLMRateLimitError, "rate limited" + http, exc)
        if status in (401, 403):
            return self.error(LLMAuthError, "the server refused the credentials" + http, exc)
        return self.error(LLMBadRequestError, "the request was rejected" + http, exc)


def _transport_cause(exc: BaseException) -> httpx.TransportError | None:
    """The HTTP transport failure behind `exc`, if any. litellm reports a refused connection as an
    InternalServerError (HTTP 500) whose cause is the httpx error, so the cause decides."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.TransportError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None

"""The model client: `LiteLLMClient` implements `core.protocols.LLM` through litellm.

litellm is imported here only, lazily (`import litellm` takes seconds): `load_litellm()` imports it
once (the fronts call it early on a background thread, through `sidehand.wiring.prefetch`), and
`litellm_loaded()` says whether it is done.

Two routes, chosen per model (see `choose_route`):
- "openai_compatible" — an OpenAI-compatible server at an explicit `api_base` (llama.cpp, vLLM,
  Ollama, LM Studio, the scripted test server). The request is built from our messages, which are
  already in the wire form, and sent on our own pooled httpx client (`core.llm_routes`); litellm
  parses the reply, maps the errors and prices the call. Measured with bench/llm_client.py against
  a raw httpx POST of the same body, at 800 history steps: litellm's `openai/` route ~25-40x (the
  openai SDK's request transform walks every message), `hosted_vllm/` with a pooled client ~3-4x,
  litellm's provider-config transform on our client ~2-3x and growing, this route ~1.4x.
- "litellm" — everything else (hosted providers by name): `litellm.completion`, litellm's own route.

Every call runs on a worker thread, never the event loop's: building the request, the HTTP
exchange and parsing the reply. Streamed text reaches `on_text` through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

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
)
from core.llm_routes import OpenAICompatibleWire, ServerReplyError, encode_json
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import TextSink

logger = logging.getLogger(__name__)

Route = Literal["openai_compatible", "litellm"]

# litellm providers that speak plain OpenAI chat completions to a base URL the user gives.
OPENAI_COMPATIBLE_PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})

_litellm_lock = threading.Lock()
_litellm_ready = threading.Event()
_litellm_module: Any = None


def load_litellm() -> Any:
    """The litellm module, imported on first use (blocking: call from a worker thread)."""
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is None:
            # Offline price map: without this litellm fetches it over the network (and retries).
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            # The import makes ~1M objects that all live on, so each full collection it triggers
            # finds nothing to free and stalls every thread for 0.1-0.2 s: none until it is done.
            collecting = gc.isenabled()
            gc.disable()
            try:
                litellm = _import_litellm()
            finally:
                if collecting:
                    gc.enable()
            _litellm_module = litellm
            _litellm_ready.set()
    return _litellm_module


def _import_litellm() -> Any:
    import litellm

    # litellm prints help banners on errors, to stdout, which is our fronts' protocol channel.
    litellm.suppress_debug_info = True
    # Its reply types finish building on first use, with a pydantic notice about litellm's own
    # type definitions (nothing a user can act on): build them now, the notice silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        litellm.ModelResponse()
        litellm.ModelResponseStream()
    # litellm's import leaves ~1M long-lived objects; every full collection would walk them again
    # (~240 ms here, stalling a server's event loop mid-session). They live as long as the
    # process: move them out of the collector's sight.
    gc.freeze()
    return litellm


def litellm_loaded() -> bool:
    """Whether litellm is imported (if not, the first call waits for it: say "loading…")."""
    return _litellm_ready.is_set()


def choose_route(model: str, api_base: str | None) -> Route:
    """'openai_compatible' for `<provider>/<name>` at an explicit base URL when the provider speaks
    plain OpenAI chat completions; 'litellm' for hosted providers by name."""
    provider, _, name = model.partition("/")
    if api_base and name and provider in OPENAI_COMPATIBLE_PROVIDERS:
        return "openai_compatible"
    return "litellm"


class LiteLLMClient:
    """One model endpoint. Retries retryable failures (connection, timeout, 429, 5xx) with
    exponential backoff and jitter; litellm's own retries are off."""

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        route: Route | None = None,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
    ) -> None:
        self.model = model
        self.api_base = api_base.rstrip("/") if api_base else None
        self.route: Route = route or choose_route(model, api_base)
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._api_key = api_key
        self._params: dict[str, Any] = dict(extra or {})
        if temperature is not None:
            self._params["temperature"] = temperature
        self._provider, _, self._name = model.partition("/") if "/" in model else ("", "", model)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sidehand-llm")
        self._setup_lock = threading.Lock()
        self._opened: _Endpoint | None = None
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None
        self._wire_cache: dict[int, tuple[ChatMessage, bytes]] = {}  # id -> (message, its JSON)
        self._priced = True  # until litellm says it has no price for the model
        self._closed = False

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        on_text: TextSink | None = None,
    ) -> LLMReply:
        if self._closed:
            raise LLMError(f"the client for {self._where()} is closed")
        loop = asyncio.get_running_loop()
        relay = _TextRelay(loop, on_text) if on_text is not None else None
        attempt = 0
        while True:
            cancel = threading.Event()
            try:
                return await loop.run_in_executor(self._executor, self._call, messages, tools, relay, cancel)
            except asyncio.CancelledError:
                cancel.set()  # a streamed call stops reading; a plain one ends within the timeout
                raise
            except LLMError as exc:
                # Once text has reached on_text, a retry would show it twice.
                if not exc.retryable or attempt >= self.max_retries or (relay is not None and relay.used):
                    if attempt:
                        raise type(exc)(f"{exc} (gave up after {attempt + 1} attempts)") from exc
                    raise
                delay = min(self.max_retry_delay, self.retry_delay * 2**attempt)
                delay *= 0.5 + random.random() / 2  # jitter: concurrent sessions do not retry in step
                attempt += 1
                logger.warning("%s; retry %d/%d in %.1f s", exc, attempt, self.max_retries, delay)
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        self._closed = True
        endpoint, self._opened = self._opened, None
        if endpoint is not None:
            endpoint.wire.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- on the worker thread ----------------------------------------------------------------------

    def _call(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> LLMReply:
        try:
            litellm = load_litellm()
        except Exception as exc:
            raise LLMError(f"could not load litellm for {self._where()}: {exc}") from exc
        try:
            if self.route == "openai_compatible":
                response = self._call_openai_compatible(litellm, messages, tools, emit, cancel)
            else:
                response = self._call_litellm(litellm, [m.to_openai() for m in messages], tools, emit, cancel)
        except LLMError:
            raise
        except Exception as exc:
            raise self._translate(litellm, exc) from exc
        if response is None or not response.choices:
            raise self._error(LLMServerError, "the reply holds no message", None)
        return self._reply(litellm, response)

    def _call_openai_compatible(
        self,
        litellm: Any,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> Any:
        from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (
            convert_to_model_response_object,
        )

        endpoint = self._endpoint(litellm)
        params: dict[str, Any] = {"model": self._name, **endpoint.params}
        if tools:
            params["tools"] = self._provider_tools(endpoint, tools)
        reply = endpoint.wire.complete(params, self._encoded(messages), emit, cancel)
        # litellm's parser, as on its own routes: finish reasons, <think> text, tool-call quirks.
        return convert_to_model_response_object(
            response_object=reply, model_response_object=litellm.ModelResponse()
        )

    def _endpoint(self, litellm: Any) -> _Endpoint:
        """URL, headers, key and parameter names from litellm's config for the provider, once."""
        with self._setup_lock:
            if self._closed:
                raise LLMError(f"the client for {self._where()} is closed")
            if self._opened is None:
                from litellm.utils import ProviderConfigManager

                config = ProviderConfigManager.get_provider_chat_config(
                    model=self._name, provider=litellm.LlmProviders(self._provider)
                )
                if config is None:
                    raise LLMError(f"litellm has no chat configuration for {self._where()}")
                self._api_key = self._api_key or _provider_key(litellm, self.model, self.api_base)
                url = config.get_complete_url(
                    api_base=self.api_base,
                    api_key=self._api_key,
                    model=self._name,
                    optional_params={},
                    litellm_params={},
                    stream=False,
                )
                headers = config.validate_environment(
                    headers={},
                    model=self._name,
                    messages=[],
                    optional_params={},
                    litellm_params={},
                    api_key=self._api_key,
                    api_base=self.api_base,
                )
                # Parameters litellm knows are renamed for the provider; others go to the server as is
                # (OpenAI-compatible servers take extras such as top_k).
                known = set(config.get_supported_openai_params(self._name))
                mapped = config.map_openai_params(
                    non_default_params={k: v for k, v in self._params.items() if k in known},
                    optional_params={},
                    model=self._name,
                    drop_params=False,
                )
                self._opened = _Endpoint(
                    wire=OpenAICompatibleWire(url, {k: str(v) for k, v in headers.items()}, self.timeout),
                    config=config,
                    params={**{k: v for k, v in self._params.items() if k not in known}, **mapped},
                )
            return self._opened

    def _encoded(self, messages: Sequence[ChatMessage]) -> list[bytes]:
        """Each message's wire JSON, encoded once: kept from the last call for the same message
        objects (messages are immutable; an edited one is a new object and is encoded anew)."""
        previous = self._wire_cache
        cache: dict[int, tuple[ChatMessage, bytes]] = {}
        out = []
        for message in messages:
            entry = previous.get(id(message))
            if entry is None or entry[0] is not message:
                entry = (message, encode_json(message.to_openai()))
            cache[id(message)] = entry
            out.append(entry[1])
        self._wire_cache = cache  # calls may overlap: the worst is a message encoded twice
        return out

    def _provider_tools(self, endpoint: _Endpoint, tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
        """The tools in the provider's form (e.g. vLLM's without `additionalProperties: false`),
        made once per tool set: a session sends the same tools on every step."""
        cached = self._tools
        if (
            cached is not None
            and len(cached[0]) == len(tools)
            and all(a is b for a, b in zip(cached[0], tools, strict=True))
        ):
            return cached[1]
        # A copy: litellm's mappers edit schemas in place, and these are the ToolSpecs' own dicts.
        wire = json.loads(json.dumps([t.to_openai() for t in tools]))
        mapped = endpoint.config.map_openai_params(
            non_default_params={"tools": wire}, optional_params={}, model=self._name, drop_params=False
        )
        provider_tools: list[dict[str, Any]] = mapped.get("tools", wire)
        self._tools = (tuple(tools), provider_tools)
        return provider_tools

    def _call_litellm(
        self,
        litellm: Any,
        messages: list[dict[str, Any]],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "api_base": self.api_base,
            "api_key": self._api_key,
            "timeout": self.timeout,
            "max_retries": 0,  # retries are ours, with backoff and error mapping
            "num_retries": 0,
            **self._params,
        }
        if tools:
            # A copy: litellm's mappers may edit schemas in place, and these are the ToolSpecs' own.
            kwargs["tools"] = json.loads(json.dumps([t.to_openai() for t in tools]))
        if emit is None:
            return litellm.completion(**kwargs)
        stream = litellm.completion(**kwargs, stream=True, stream_options={"include_usage": True})
        chunks = []
        for chunk in stream:
            if cancel.is_set():
                break
            chunks.append(chunk)
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text:
                emit(text)
        return litellm.stream_chunk_builder(chunks, messages=messages)

    def _reply(self, litellm: Any, response: Any) -> LLMReply:
        choice = response.choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(
                id=call.id or f"call_{uuid.uuid4().hex[:24]}",
                name=call.function.name or "",
                # A tool without parameters may come with no arguments at all; that is "{}".
                arguments=call.function.arguments or "{}",
            )
            for call in message.tool_calls or ()
        )
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return LLMReply(
            text=message.content or None,
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=self._cost(litellm, prompt_tokens, completion_tokens),
            ),
            finish_reason=choice.finish_reason,
            model=response.model,
        )

    def _cost(self, litellm: Any, prompt_tokens: int, completion_tokens: int) -> float:
        """litellm's price for the model from its local price map; 0.0 for models it does not know."""
        if not self._priced:
            return 0.0
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception as exc:
            logger.debug("no price for %s (%s); its calls count as free", self.model, exc)
            self._priced = False
            return 0.0
        return float(prompt_cost + completion_cost)

    # -- errors --------------------------------------------------------------------------------------

    def _translate(self, litellm: Any, exc: Exception) -> LLMError:
        """Our error for a failed call, saying which model and server, never the API key."""
        transport = _transport_cause(exc)
        if isinstance(transport, httpx.TimeoutException):
            return self._error(LLMTimeoutError, f"no answer within {self.timeout:g} s", transport)
        if transport is not None:
            return self._error(LLMConnectionError, "cannot reach the model server", transport)
        if isinstance(exc, ServerReplyError):
            exc = self._litellm_exception(litellm, exc)
        return _translate_litellm(litellm, exc, self._error)

    def _litellm_exception(self, litellm: Any, exc: ServerReplyError) -> Exception:
        """litellm's exception for an HTTP error, classified as on its own routes (e.g. a 400 that
        says the context is too long is a context-window error)."""
        from litellm.litellm_core_utils.exception_mapping_utils import exception_type
        from litellm.llms.openai.common_utils import OpenAIError

        error = OpenAIError(status_code=exc.status, message=exc.message, headers=exc.headers)
        try:
            exception_type(  # type: ignore[no-untyped-call]
                model=self._name, original_exception=error, custom_llm_provider=self._provider
            )
        except Exception as mapped:
            return mapped
        return error

    def _error(self, kind: type[LLMError], what: str, exc: BaseException | None) -> LLMError:
        detail = _LITELLM_PREFIXES.sub("", str(exc)).strip().rstrip(".") if exc is not None else ""
        if self._api_key:
            # The key as a whole token only: a short test key must not garble the words around it.
            key = re.escape(self._api_key)
            detail = re.sub(rf"(?<![\w-]){key}(?![\w-])", "***", detail)
        message = f"{what} ({self._where()})"
        if detail:
            message += f": {detail}"
        return kind(f"{message}. {_ADVICE[kind]}")

    def _where(self) -> str:
        return f"model {self.model} at {self.api_base}" if self.api_base else f"model {self.model}"


@dataclass(frozen=True)
class _Endpoint:
    """An OpenAI-compatible server as the openai_compatible route talks to it."""

    wire: OpenAICompatibleWire
    config: Any  # litellm's chat config for the provider
    params: dict[str, Any]  # request parameters, in the provider's names


def _provider_key(litellm: Any, model: str, api_base: str | None) -> str | None:
    """The API key litellm would use when none is given: the provider's environment variable."""
    _, provider, key, _ = litellm.get_llm_provider(model=model, api_base=api_base)
    if key:
        return str(key)
    if provider == "openai":
        found = litellm.api_key or litellm.openai_key or os.environ.get("OPENAI_API_KEY")
        return str(found) if found else None
    return None


class _TextRelay:
    """Hands streamed text from the worker thread to `sink` on the event loop, in order. Pieces
    that arrive while the loop is busy are joined and delivered as one: one loop wake-up (and
    one event, one notification to an editor) per piece would stall the loop on a fast stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: TextSink) -> None:
        self._loop = loop
        self._sink = sink
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self.used = False

    def __call__(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)
            first = len(self._pending) == 1
        self.used = True
        if first:
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        self._sink("".join(pending))


# litellm's messages start with class names ("litellm.InternalServerError: InternalServerError:
# OpenAIException - ..."); ours already say what kind of failure it is.
_LITELLM_PREFIXES = re.compile(r"^(?:\s*(?:litellm\.)?\w+(?:Error|Exception)(?::| -)\s*)+")

# How litellm and the provider SDKs say that no key was configured.
_MISSING_KEY = re.compile(
    r"missing (?:credentials|[\w ]*api key)|api[_ ]key (?:is )?(?:not set|required)", re.I
)

_ADVICE: dict[type[LLMError], str] = {
    LLMConnectionError: "Check that the model server is running and the api_base is right.",
    LLMTimeoutError: "The server may be overloaded; try again, or raise llm_timeout.",
    LLMRateLimitError: "The provider is rate-limiting; wait a moment and try again.",
    LLMServerError: "Try again later, or look at the model server's log.",
    LLMAuthError: "Check the API key (api_key / SIDEHAND_API_KEY) and its access to this model.",
    LLMContextWindowError: "The prompt is too long for this model; lower prompt_token_budget.",
    LLMBadRequestError: "The server rejected the request; check the model name and settings.",
    LLMError: "See the message above.",
}


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


def _translate_litellm(
    litellm: Any, exc: Exception, error: Callable[[type[LLMError], str, BaseException | None], LLMError]
) -> LLMError:
    """Map litellm's exception classes (which subclass the openai SDK's) to ours. Order matters:
    a context-window error is a bad request, a timeout is a connection error, in litellm's tree."""
    table: list[tuple[Any, type[LLMError], str]] = [
        (litellm.ContextWindowExceededError, LLMContextWindowError, "the prompt exceeds the context window"),
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
        return error(LLMAuthError, "no API key for this provider", exc)
    status = getattr(exc, "status_code", None)
    # The server's HTTP status where it sent one (litellm also gives its own timeouts a 408).
    if not isinstance(status, int) or status < 400 or isinstance(exc, litellm.APIConnectionError):
        status = None
    http = f", HTTP {status}" if status else ""
    for litellm_class, ours, what in table:
        if isinstance(exc, litellm_class):
            return error(ours, what + http, exc)
    if status is None:
        return error(LLMError, f"the model call failed ({type(exc).__name__})", exc)
    if status >= 500:
        return error(LLMServerError, "the model server failed" + http, exc)
    if status == 429:
        return error(LLMRateLimitError, "rate limited" + http, exc)
    if status in (401, 403):
        return error(LLMAuthError, "the server refused the credentials" + http, exc)
    return error(LLMBadRequestError, "the request was rejected" + http, exc)

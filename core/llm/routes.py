"""The two ways a model call goes out, chosen per model by `choose_route`:

- `OpenAICompatibleRoute` — an OpenAI-compatible server at an explicit `api_base` (llama.cpp, vLLM,
  Ollama, LM Studio, the scripted test server). The request is built from our messages, which are
  already in the wire form, and sent on our own pooled httpx client (core.llm.wire); litellm's
  provider config gives the URL, headers and parameter names, its parser reads the reply.
  Measured with bench/llm_client.py against a raw httpx POST of the same body, at 800 history
  steps: litellm's `openai/` route ~25-40x (the openai SDK's request transform walks every
  message), `hosted_vllm/` with a pooled client ~3-4x, this route ~1.4x.
- `LiteLLMRoute` — everything else (hosted providers by name): `litellm.completion`. For the
  providers litellm serves with the openai SDK, the route passes an SDK client it owns (and
  closes): litellm's own client cache leaves connections unclosed when calls run concurrently.

Both run on a worker thread (the client's), never the event loop's, and return litellm's
`ModelResponse`; errors are left to the client to translate."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.errors import LLMError
from core.llm.loader import LiteLLM
from core.llm.wire import MessageEncoder, OpenAICompatibleWire, tls_context
from core.messages import ChatMessage, ToolSpec
from core.protocols import TextSink
from core.redaction import Redactor

log = logging.getLogger(__name__)

RouteName = Literal["openai_compatible", "litellm"]

# litellm providers that speak plain OpenAI chat completions to a base URL the user gives.
OPENAI_COMPATIBLE_PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})


def choose_route(model: str, api_base: str | None) -> RouteName:
    """'openai_compatible' for `<provider>/<name>` at an explicit base URL when the provider speaks
    plain OpenAI chat completions; 'litellm' for hosted providers by name."""
    provider, _, name = model.partition("/")
    if api_base and name and provider in OPENAI_COMPATIBLE_PROVIDERS:
        return "openai_compatible"
    return "litellm"


@dataclass(frozen=True)
class Endpoint:
    """Where and how one model is called (what the routes share)."""

    model: str  # as litellm names it: "<provider>/<name>", or a bare name litellm knows
    api_base: str | None
    api_key: str | None
    timeout: float
    params: dict[str, Any]  # extra request parameters (temperature, ...), in OpenAI's names

    @property
    def provider(self) -> str:
        return self.model.partition("/")[0] if "/" in self.model else ""

    @property
    def name(self) -> str:
        return self.model.partition("/")[2] if "/" in self.model else self.model


class Route(Protocol):
    name: RouteName

    def call(
        self,
        lib: LiteLLM,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> Any:
        """One request; litellm's ModelResponse. Streams text to `emit` when given; stops reading
        a stream once `cancel` is set."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Opened:
    """The OpenAI-compatible server, set up from litellm's provider config on the first call."""

    wire: OpenAICompatibleWire
    config: Any  # litellm's chat config for the provider
    params: dict[str, Any]  # request parameters, in the provider's names


class OpenAICompatibleRoute:
    name: RouteName = "openai_compatible"

    def __init__(self, endpoint: Endpoint, redact: Redactor) -> None:
        self.endpoint = endpoint
        self._api_key = endpoint.api_key
        self._redact = redact
        self._lock = threading.Lock()
        self._opened: _Opened | None = None
        self._closed = False
        self._encoder = MessageEncoder()
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None

    def call(
        self,
        lib: LiteLLM,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> Any:
        opened = self._open(lib)
        params: dict[str, Any] = {"model": self.endpoint.name, **opened.params}
        if tools:
            params["tools"] = self._provider_tools(opened, tools)
        reply = opened.wire.complete(params, self._encoder.encode(messages), emit, cancel)
        # litellm's parser, as on its own routes: finish reasons, <think> text, tool-call quirks.
        return lib.convert_to_model_response_object(
            response_object=reply, model_response_object=lib.module.ModelResponse()
        )

    def _open(self, lib: LiteLLM) -> _Opened:
        """URL, headers, key and parameter names from litellm's config for the provider, once."""
        with self._lock:
            if self._closed:
                raise LLMError(f"the client for {self.endpoint.model} is closed")
            if self._opened is None:
                self._opened = self._setup(lib)
            return self._opened

    def _setup(self, lib: LiteLLM) -> _Opened:
        endpoint, litellm = self.endpoint, lib.module
        config = lib.provider_config_manager.get_provider_chat_config(
            model=endpoint.name, provider=litellm.LlmProviders(endpoint.provider)
        )
        if config is None:
            raise LLMError(f"litellm has no chat configuration for model {endpoint.model}")
        if self._api_key is None:
            self._api_key = _provider_key(litellm, endpoint.model, endpoint.api_base)
            if self._api_key:
                self._redact.add([self._api_key])
        url = config.get_complete_url(
            api_base=endpoint.api_base,
            api_key=self._api_key,
            model=endpoint.name,
            optional_params={},
            litellm_params={},
            stream=False,
        )
        headers = config.validate_environment(
            headers={},
            model=endpoint.name,
            messages=[],
            optional_params={},
            litellm_params={},
            api_key=self._api_key,
            api_base=endpoint.api_base,
        )
        # Parameters litellm knows are renamed for the provider; others go to the server as is
        # (OpenAI-compatible servers take extras such as top_k).
        known = set(config.get_supported_openai_params(endpoint.name))
        mapped = config.map_openai_params(
            non_default_params={k: v for k, v in endpoint.params.items() if k in known},
            optional_params={},
            model=endpoint.name,
            drop_params=False,
        )
        return _Opened(
            wire=OpenAICompatibleWire(url, {k: str(v) for k, v in headers.items()}, endpoint.timeout),
            config=config,
            params={**{k: v for k, v in endpoint.params.items() if k not in known}, **mapped},
        )

    def _provider_tools(self, opened: _Opened, tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
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
        mapped = opened.config.map_openai_params(
            non_default_params={"tools": wire},
            optional_params={},
            model=self.endpoint.name,
            drop_params=False,
        )
        provider_tools: list[dict[str, Any]] = mapped.get("tools", wire)
        self._tools = (tuple(tools), provider_tools)
        return provider_tools

    def close(self) -> None:
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, None
        if opened is not None:
            opened.wire.close()


class LiteLLMRoute:
    name: RouteName = "litellm"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._sdk_client: Any = None  # an openai.OpenAI this route owns, for openai-SDK providers
        self._sdk_checked = False
        self._closed = False

    def call(
        self,
        lib: LiteLLM,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        emit: TextSink | None,
        cancel: threading.Event,
    ) -> Any:
        litellm = lib.module
        endpoint = self.endpoint
        wire_messages = [m.to_openai() for m in messages]
        kwargs: dict[str, Any] = {
            "model": endpoint.model,
            "messages": wire_messages,
            "api_base": endpoint.api_base,
            "api_key": endpoint.api_key,
            "timeout": endpoint.timeout,
            "max_retries": 0,  # retries are ours, with backoff and error mapping
            "num_retries": 0,
            **endpoint.params,
        }
        if (client := self._client(litellm)) is not None:
            kwargs["client"] = client
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
        return litellm.stream_chunk_builder(chunks, messages=wire_messages)

    def _client(self, litellm: Any) -> Any:
        """An openai SDK client of our own when litellm calls this provider through the openai SDK
        (else None: litellm makes the provider's client)."""
        with self._lock:
            if self._closed:
                raise LLMError(f"the client for {self.endpoint.model} is closed")
            if not self._sdk_checked:
                self._sdk_checked = True
                _, provider, _, api_base = litellm.get_llm_provider(
                    model=self.endpoint.model, api_base=self.endpoint.api_base
                )
                key = self.endpoint.api_key or _provider_key(
                    litellm, self.endpoint.model, self.endpoint.api_base
                )
                if provider != "openai" or not key:
                    return None  # without a key, litellm says so itself
                import httpx
                import openai

                self._sdk_client = openai.OpenAI(
                    api_key=key,
                    base_url=api_base or self.endpoint.api_base,
                    max_retries=0,
                    timeout=self.endpoint.timeout,
                    http_client=httpx.Client(verify=tls_context(), timeout=self.endpoint.timeout),
                )
            return self._sdk_client

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._sdk_client = self._sdk_client, None
        if client is not None:
            client.close()


def make_route(name: RouteName, endpoint: Endpoint, redact: Redactor) -> Route:
    return OpenAICompatibleRoute(endpoint, redact) if name == "openai_compatible" else LiteLLMRoute(endpoint)


def _provider_key(litellm: Any, model: str, api_base: str | None) -> str | None:
    """The API key litellm would use when none is given: the provider's environment variable."""
    _, provider, key, _ = litellm.get_llm_provider(model=model, api_base=api_base)
    if key:
        return str(key)
    if provider == "openai":
        found = litellm.api_key or litellm.openai_key or os.environ.get("OPENAI_API_KEY")
        return str(found) if found else None
    return None

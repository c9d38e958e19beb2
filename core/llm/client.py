"""`LiteLLMClient` implements `core.protocols.LLM`: retries with backoff, the worker thread every
call runs on, streamed text handed back to the event loop, and the reply as our types (usage and
cost included). Where the request goes is the route's business (core.llm.routes); what a failure
means, the translator's (core.llm.errors).

Every call runs on a worker thread, never the event loop's: building the request, the HTTP
exchange and parsing the reply. Streamed text reaches `on_text` through `call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import LLMError, LLMServerError
from core.llm.errors import ErrorTranslator
from core.llm.loader import LiteLLM, context_window, load_litellm, model_supports_tools
from core.llm.routes import Endpoint, RouteName, choose_route, make_route
from core.messages import ChatMessage, LLMReply, ToolCall, ToolSpec, Usage
from core.protocols import TextSink
from core.redaction import Redactor

logger = logging.getLogger(__name__)


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
        route: RouteName | None = None,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        prices: tuple[float, float] | None = None,
    ) -> None:
        """`extra`: more request parameters (top_p, seed, ...); `prices`: USD per million prompt
        and completion tokens (else litellm's price map)."""
        self.model = model
        api_base = api_base.rstrip("/") if api_base else None
        self.route: RouteName = route or choose_route(model, api_base)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        params: dict[str, Any] = dict(extra or {})
        if temperature is not None:
            params["temperature"] = temperature
        redact = Redactor([api_key] if api_key else [])
        self._errors = ErrorTranslator(model, api_base, redact, timeout)
        self._route = make_route(self.route, Endpoint(model, api_base, api_key, timeout, params), redact)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sidehand-llm")
        self._priced = True  # until litellm says it has no price for the model
        self._prices = prices
        self._window: int | None = None  # the model's context window (litellm's map), once looked up
        self._window_looked_up = False
        self._closed = False

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        on_text: TextSink | None = None,
    ) -> LLMReply:
        if self._closed:
            raise LLMError(f"the client for {self._errors.where} is closed")
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

    async def supports_tools(self) -> bool | None:
        def ask() -> bool | None:
            try:
                return model_supports_tools(load_litellm(), self.model)
            except Exception as exc:  # litellm failed to load: the first call will say so
                logger.debug("no model information for %s: %s", self.model, exc)
                return None

        return await asyncio.get_running_loop().run_in_executor(self._executor, ask)

    async def aclose(self) -> None:
        self._closed = True
        self._route.close()
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
            lib = load_litellm()
        except Exception as exc:
            raise LLMError(f"could not load litellm for {self._errors.where}: {exc}") from exc
        try:
            response = self._route.call(lib, messages, tools, emit, cancel)
        except LLMError:
            raise
        except Exception as exc:
            raise self._errors.translate(lib, exc) from exc
        if response is None or not response.choices:
            raise self._errors.error(LLMServerError, "the reply holds no message")
        return self._reply(lib, response)

    def _reply(self, lib: LiteLLM, response: Any) -> LLMReply:
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
                cost=self._cost(lib, prompt_tokens, completion_tokens),
            ),
            finish_reason=choice.finish_reason,
            model=response.model,
            context_window=self._context_window(lib),
        )

    def _context_window(self, lib: LiteLLM) -> int | None:
        if not self._window_looked_up:
            self._window = context_window(lib, self.model)
            self._window_looked_up = True
        return self._window

    def _cost(self, lib: LiteLLM, prompt_tokens: int, completion_tokens: int) -> float:
        """The configured prices, else litellm's price for the model from its local price map; 0.0
        for models it does not know."""
        if self._prices is not None:
            return (prompt_tokens * self._prices[0] + completion_tokens * self._prices[1]) / 1e6
        if not self._priced:
            return 0.0
        try:
            prompt_cost, completion_cost = lib.module.cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception as exc:
            logger.debug("no price for %s (%s); its calls count as free", self.model, exc)
            self._priced = False
            return 0.0
        return float(prompt_cost + completion_cost)


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

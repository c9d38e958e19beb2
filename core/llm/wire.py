"""The OpenAI chat-completions wire format: messages encoded once, one POST over a pooled httpx
client, a streamed reply assembled.

Used by the openai_compatible route (core.llm.routes) for generic OpenAI-compatible servers
(llama.cpp, vLLM, Ollama, LM Studio, the scripted test server). Measured on 800-step histories,
litellm's request transform costs more than the HTTP round trip itself and grows with every step,
while our messages are already in the wire form; so the request is built and sent here, and the
route hands the answer to litellm's response parser. This module knows HTTP and SSE, nothing of
litellm; it returns a `chat.completion` dict (a streamed reply is assembled into the same shape)
and raises httpx errors or `ServerReplyError`.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from core.messages import ChatMessage
from core.protocols import TextSink

_MAX_ERROR_CHARS = 2000


class ServerReplyError(Exception):
    """The server answered with an HTTP error status (or an error object inside a stream)."""

    def __init__(self, status: int, message: str, headers: httpx.Headers | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or httpx.Headers()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client in the process (httpx's defaults: certifi's CA bundle).
    Each new httpx.Client would otherwise load the CA bundle again: ~50 ms of C code holding the
    GIL, which stalls a server's event loop at every session's first model call."""
    return httpx.create_ssl_context()


class OpenAICompatibleWire:
    """POSTs chat-completion bodies to `url` on one keep-alive connection pool (thread-safe)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self.url = url
        self._headers = {**headers, "Content-Type": "application/json"}
        # Agent steps can be many seconds apart (a slow command); keep the connection for them.
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60.0)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), limits=limits, verify=tls_context())

    def complete(
        self,
        params: dict[str, Any],
        messages: Sequence[bytes],
        on_text: TextSink | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """One call: the reply as a `chat.completion` dict. Streams when `on_text` is given.
        `messages` come JSON-encoded (see `encode_body`); `params` is the rest of the body."""
        if on_text is None:
            body = encode_body(params, messages)
            response = self._client.post(self.url, content=body, headers=self._headers)
            if response.status_code >= 400:
                raise _reply_error(response)
            return _decode(response)
        body = encode_body({**params, "stream": True, "stream_options": {"include_usage": True}}, messages)
        with self._client.stream("POST", self.url, content=body, headers=self._headers) as response:
            if response.status_code >= 400:
                response.read()
                raise _reply_error(response)
            return assemble_stream(response.iter_lines(), on_text, cancel)

    def close(self) -> None:
        self._client.close()


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class MessageEncoder:
    """Each message's wire JSON, encoded once: kept from the last call for the same message objects
    (messages are immutable; an edited one is a new object and is encoded anew). A session sends
    the same history on every step, so a call costs its new messages, not the whole history."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[ChatMessage, bytes]] = {}  # id -> (message, its JSON)

    def encode(self, messages: Sequence[ChatMessage]) -> list[bytes]:
        previous = self._cache
        cache: dict[int, tuple[ChatMessage, bytes]] = {}
        out = []
        for message in messages:
            entry = previous.get(id(message))
            if entry is None or entry[0] is not message:
                entry = (message, encode_json(message.to_openai()))
            cache[id(message)] = entry
            out.append(entry[1])
        self._cache = cache  # calls may overlap: the worst is a message encoded twice
        return out


def encode_body(params: dict[str, Any], messages: Sequence[bytes]) -> bytes:
    """The request body: `params` plus the messages, each already encoded with `encode_json`. A
    session sends the same messages on every step: encoding each once, not the whole history on
    every call, keeps a call's cost from growing with the session (and json.dumps holds the GIL
    for its whole run, stalling a server's event loop meanwhile)."""
    rest = encode_json(params)
    return b'{"messages":[' + b",".join(messages) + b"]" + (b"," + rest[1:] if len(rest) > 2 else b"}")


def _decode(response: httpx.Response) -> dict[str, Any]:
    try:
        reply = response.json()
    except ValueError as exc:
        raise ServerReplyError(502, f"the reply is not JSON: {response.text[:200]!r}") from exc
    if not isinstance(reply, dict):
        raise ServerReplyError(502, f"the reply is not a JSON object: {response.text[:200]!r}")
    return reply


def _reply_error(response: httpx.Response) -> ServerReplyError:
    return ServerReplyError(response.status_code, _error_text(response.text), response.headers)


def _error_text(text: str) -> str:
    """The server's own error message when it sent an OpenAI-style error object, else the body."""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_CHARS]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:_MAX_ERROR_CHARS]
    if isinstance(error, str):
        return error[:_MAX_ERROR_CHARS]
    return text[:_MAX_ERROR_CHARS]


def assemble_stream(
    lines: Iterable[str], on_text: TextSink | None = None, cancel: threading.Event | None = None
) -> dict[str, Any]:
    """Read OpenAI SSE lines into the `chat.completion` dict a non-streamed call would have got,
    passing each text delta to `on_text` as it arrives."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    head: dict[str, Any] = {}
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    done = False
    for line in lines:
        if cancel is not None and cancel.is_set():
            break
        # After [DONE] the body is read to its end all the same: a response left half read closes
        # its connection instead of going back to the pool.
        if done or not line.startswith("data:"):
            continue  # blank separators, `event:` and `:` comment lines
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        if event.get("error"):
            raise _stream_error(event["error"])
        if not head:
            head = {k: event[k] for k in ("id", "created", "model") if k in event}
        usage = event.get("usage") or usage
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                text.append(piece)
                if on_text is not None:
                    on_text(piece)
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str):
                reasoning.append(thought)
            for call in delta.get("tool_calls") or ():
                _add_call_delta(calls, call)
            finish_reason = choice.get("finish_reason") or finish_reason
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    reply: dict[str, Any] = {
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        reply["usage"] = usage
    return reply


def _stream_error(error: object) -> ServerReplyError:
    """vLLM and others report a failure found mid-stream as an `error` event, with the HTTP status
    already sent as 200."""
    if isinstance(error, dict):
        status = error.get("code")
        return ServerReplyError(
            status if isinstance(status, int) and status >= 400 else 500, str(error.get("message") or error)
        )
    return ServerReplyError(500, str(error))


def _add_call_delta(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    index = delta.get("index")
    slot = calls.setdefault(
        index if isinstance(index, int) else len(calls),
        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if delta.get("id"):
        slot["id"] = delta["id"]
    function = delta.get("function") or {}
    # The name comes whole in one delta (some servers repeat it); the arguments come in pieces.
    if function.get("name") and not slot["function"]["name"]:
        slot["function"]["name"] = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        slot["function"]["arguments"] += arguments
    elif isinstance(arguments, dict):
        slot["function"]["arguments"] += json.dumps(arguments)

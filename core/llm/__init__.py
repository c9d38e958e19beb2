"""The model client, by reason to change:

- `client`  — `LiteLLMClient` (core.protocols.LLM): retries, the worker thread, streaming, replies;
- `routes`  — where a request goes: our OpenAI-compatible wire, or `litellm.completion`;
- `wire`    — the OpenAI chat-completions wire format over a pooled httpx client;
- `errors`  — a failed call as our own error kinds, with advice and without the key;
- `loader`  — litellm itself, imported lazily and only there.
"""

from core.llm.client import LiteLLMClient
from core.llm.loader import litellm_loaded, load_litellm
from core.llm.routes import RouteName, choose_route

__all__ = ["LiteLLMClient", "RouteName", "choose_route", "litellm_loaded", "load_litellm"]

"""litellm, imported lazily and in this module only: `import litellm` takes seconds (the fronts
start it early on a background thread, through `sidehand.wiring.prefetch`). The rest of the
package reaches litellm through the `LiteLLM` handle returned by `load_litellm()`."""

from __future__ import annotations

import gc
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
_ready = threading.Event()
_loaded: LiteLLM | None = None


@dataclass(frozen=True)
class LiteLLM:
    """The parts of litellm Sidehand uses: the module, and functions from its submodules."""

    module: Any
    convert_to_model_response_object: Any  # litellm's parser of a chat.completion dict
    provider_config_manager: Any  # provider -> chat config (URL, headers, parameter names)
    exception_type: Any  # litellm's mapping of a provider's HTTP error to its exception classes
    openai_error: Any  # the exception class exception_type expects for an OpenAI-style error


def load_litellm() -> LiteLLM:
    """litellm, imported on first use (blocking: call from a worker thread)."""
    global _loaded
    with _lock:
        if _loaded is None:
            # Offline price map: without this litellm fetches it over the network (and retries).
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            # The import makes ~1M objects that all live on, so each full collection it triggers
            # finds nothing to free and stalls every thread for 0.1-0.2 s: none until it is done.
            collecting = gc.isenabled()
            gc.disable()
            try:
                _loaded = _import()
            finally:
                if collecting:
                    gc.enable()
            _ready.set()
    return _loaded


def _import() -> LiteLLM:
    import litellm
    from litellm.litellm_core_utils.exception_mapping_utils import exception_type
    from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (
        convert_to_model_response_object,
    )
    from litellm.llms.openai.common_utils import OpenAIError
    from litellm.utils import ProviderConfigManager

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
    return LiteLLM(
        module=litellm,
        convert_to_model_response_object=convert_to_model_response_object,
        provider_config_manager=ProviderConfigManager,
        exception_type=exception_type,
        openai_error=OpenAIError,
    )


def model_supports_tools(lib: LiteLLM, model: str) -> bool | None:
    """Whether litellm's model information says `model` takes tools natively (None: litellm does
    not know the model, as for most local servers' names)."""
    try:
        info = lib.module.get_model_info(model)
    except Exception:  # litellm raises for a model it has no entry for
        return None
    known = info.get("supports_function_calling") if isinstance(info, dict) else None
    return None if known is None else bool(known)


def context_window(lib: LiteLLM, model: str) -> int | None:
    """The model's input window in tokens, from litellm's local model map; None for a model it
    does not know (a local server's: the `context_window` setting says it then)."""
    try:
        info = lib.module.get_model_info(model)
    except Exception:
        return None
    value = info.get("max_input_tokens") or info.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else None


def litellm_loaded() -> bool:
    """Whether litellm is imported (if not, the first call waits for it: say "loading…")."""
    return _ready.is_set()

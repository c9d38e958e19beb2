"""`sidehand.wiring.prefetch`: what a session needs is loaded on one background thread, once."""

from __future__ import annotations

import subprocess
import sys


def test_prefetch_loads_the_sandbox_litellm_and_tls_in_the_background() -> None:
    # In a fresh interpreter: this test process may have imported all of it already.
    code = (
        "import sys, threading\n"
        "from sidehand.wiring import prefetch\n"
        "from core.llm import litellm_loaded\n"
        "from core.llm.wire import tls_context\n"
        "assert 'litellm' not in sys.modules and 'sandbox.docker_sandbox' not in sys.modules\n"
        "thread = prefetch()\n"
        "assert thread is not threading.current_thread() and prefetch() is thread  # once\n"
        "thread.join(120)\n"
        "assert litellm_loaded() and 'sandbox.docker_sandbox' in sys.modules\n"
        "assert tls_context.cache_info().currsize == 1\n"
        "assert sys.modules['litellm'].suppress_debug_info is True\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]

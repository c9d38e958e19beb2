"""Fakes that ship with Sidehand for tests, demos and benchmarks (a scripted LLM server, ...).

Import from the submodules (e.g. `core.testing.scripted_server`); this package imports none of them,
so `python -m core.testing.scripted_server` runs without a double import, and a server can check
whether the fakes are selected without loading them.
"""

import os

# With this variable set to a script file, the servers run sessions on the fakes (fake_manager).
TEST_LLM_ENV = "SIDEHAND_TEST_LLM"


def test_llm_enabled() -> bool:
    """Whether the fakes are selected (checked without importing them)."""
    return bool(os.environ.get(TEST_LLM_ENV))

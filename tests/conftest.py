"""Suite-wide hooks."""

from __future__ import annotations

import gc

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Collect the tests' garbage before the summary, whose plugins import (and so parse) modules:
    # on Python 3.11.7 a finalizer's warning formatted in the middle of a parse breaks the parser
    # ("AST constructor recursion depth mismatch") and with it the run.
    gc.collect()

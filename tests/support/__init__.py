"""Test-only helpers that run as programs (`python -m tests.support.…`)."""

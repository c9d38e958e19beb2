"""Fakes that ship with Sidehand for tests, demos and benchmarks (a scripted LLM server, ...).

Import from the submodules (e.g. `core.testing.scripted_server`); this package imports none of them,
so `python -m core.testing.scripted_server` runs without a double import.
"""

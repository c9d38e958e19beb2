"""Sidehand's language-server front (`sidehand lsp`)."""

__version__ = "0.1.0"

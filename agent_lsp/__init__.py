"""Sidehand's language-server front (`sidehand lsp`)."""

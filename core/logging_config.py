"""Logging for the entry points (`sidehand run`, `sidehand lsp`, `sidehand mcp`): one handler, on
stderr or a file (stdout is the servers' protocol channel), with secrets redacted. Only entry
points call this; every other module just logs through `logging.getLogger(__name__)`."""

from __future__ import annotations

import logging
import sys

from core.redaction import RedactSecrets

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log whole messages (initializationOptions, request bodies) at INFO/DEBUG.
QUIET_LIBRARIES = ("pygls",)


def configure_logging(*, verbose: bool, log_file: str | None = None, redact: RedactSecrets) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.addFilter(redact)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)

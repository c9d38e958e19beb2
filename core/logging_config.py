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
# Loggers that a library gives handlers of its own when it is imported (litellm's write DEBUG and
# INFO lines to stdout, which is the servers' protocol and `sidehand run`'s answer).
SELF_CONFIGURED_LIBRARIES = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


class _NoHandlersOfItsOwn(logging.Filter):
    """On a library's logger: drops any handler the library attached (at import, after we
    configured logging), so its records reach only the entry point's handler, via the root. A
    logger's filters run before its handlers are called, so even the records logged while the
    library is being imported go our way."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if self.logger.handlers:
            self.logger.handlers.clear()
            self.logger.propagate = True
        return True


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
    for name in SELF_CONFIGURED_LIBRARIES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoHandlersOfItsOwn) for f in logger.filters):
            logger.addFilter(_NoHandlersOfItsOwn(logger))

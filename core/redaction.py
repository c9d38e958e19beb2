"""Keeping secrets out of everything Sidehand writes: the one place that knows how to mask them.

`Redactor` masks each registered secret (the API key, ...) wherever it stands as a whole token;
`RedactSecrets` is the logging filter the entry points install on their handler, backed by one."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "[redacted]"


class Redactor:
    """Replaces registered secrets with MASK. A secret counts only as a whole token (not inside a
    longer word), so a short key cannot garble the text around it; text that holds none of the
    secrets is returned as it is, after one substring test per secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets (settings can arrive after start-up: an editor's initializationOptions)."""
        new = [s for s in dict.fromkeys(secrets) if s and s not in self.secrets]
        if not new:
            return
        self.secrets.extend(new)
        # Longest first, so a secret that contains another is masked whole.
        alternatives = "|".join(re.escape(s) for s in sorted(self.secrets, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")

    def __call__(self, text: str) -> str:
        if self._pattern is None or not any(secret in text for secret in self.secrets):
            return text
        return self._pattern.sub(MASK, text)


class RedactSecrets(logging.Filter):
    """A logging filter that masks the redactor's secrets in every record's message."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def add(self, secrets: Iterable[str]) -> None:
        self.redactor.add(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.secrets:
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args = self.redactor(message), None
            if record.exc_text:
                record.exc_text = self.redactor(record.exc_text)
        return True

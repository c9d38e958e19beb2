"""Keeping secrets out of everything Sidehand writes: the one place that knows how to mask them.

`Redactor` masks each registered secret (the API key, the model providers' key variables found in
the environment, ...) wherever it stands as a whole token: in text, in bytes (`mask_bytes`, and
`ByteStreamMasker` for output that arrives in pieces) and in events (`event`). `RedactSecrets`
is the logging filter the entry points install on their handler, backed by one.
`environment_secrets` names which environment variables hold secrets."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from core.events import EVENT_ADAPTER, Event

MASK = "[redacted]"
MIN_SECRET = 8  # shorter values (`1`, `true`) are not masked: they would garble every text
# Variables that hold credentials, by the endings model providers (and the tools agents use) give
# them: OPENAI_API_KEY, ANTHROPIC_AUTH_TOKEN, AWS_SECRET_ACCESS_KEY, AZURE_CLIENT_SECRET, HF_TOKEN,
# GITHUB_TOKEN, ... (litellm alone reads some 300 of them).
SECRET_ENDINGS = (
    "_API_KEY", "APIKEY", "_API_TOKEN", "_AUTH_TOKEN", "_ACCESS_TOKEN", "_TOKEN", "_SECRET",
    "_SECRET_KEY", "_SECRET_ACCESS_KEY", "_CLIENT_SECRET", "_PASSWORD", "_PASSWD", "_PRIVATE_KEY",
    "_SESSION_TOKEN", "_KEY", "_CREDENTIAL", "_CREDENTIALS", "_SECRET_ID",
)  # fmt: skip
# ... and inside a name: AWS_BEARER_TOKEN_BEDROCK, AZURE_API_KEY_2.
SECRET_PARTS = ("_BEARER_TOKEN", "_API_KEY_", "_SECRET_KEY_")
SECRET_NAMES = frozenset({"API_KEY", "APIKEY", "TOKEN", "PASSWORD", "SECRET", "HF_TOKEN", "GH_TOKEN"})
NOT_SECRETS = frozenset({"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "TERM_SESSION_ID", "XAUTHORITY"})
_E = TypeVar("_E", bound=Event)
FILE_RECORDS = frozenset({"workspace_delta", "apply_started", "apply_finished"})


def is_secret_variable(name: str) -> bool:
    upper = name.upper()
    if upper in NOT_SECRETS:
        return False
    return upper in SECRET_NAMES or upper.endswith(SECRET_ENDINGS) or any(p in upper for p in SECRET_PARTS)


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment's credential variables (the model providers' keys among them)."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if is_secret_variable(k) and len(v.strip()) >= MIN_SECRET]


class Redactor:
    """Replaces registered secrets with MASK. A secret counts only as a whole token (not inside a
    longer word), so a short key cannot garble the text around it; text that holds none of the
    secrets is returned as it is, after one substring test per secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self._forms: list[str] = []  # each secret as written, and as JSON writes it inside a string
        self._pattern: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets (settings can arrive after start-up: an editor's initializationOptions)."""
        new = [s for s in dict.fromkeys(secrets) if s and s not in self.secrets]
        if not new:
            return
        self.secrets.extend(new)
        self._forms = list(dict.fromkeys([*self._forms, *new, *(json.dumps(s)[1:-1] for s in new)]))
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(self._forms, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in ordered)
        # Whole tokens; in JSON text a secret may also follow an escape such as `\n`.
        self._pattern = re.compile(rf"(?:(?<![\w-])|(?<=\\[nrtbf]))(?:{alternatives})(?![\w-])")
        raw = b"|".join(re.escape(s.encode("utf-8", "surrogateescape")) for s in ordered)
        self._bytes = re.compile(rb"(?<![\w-])(?:" + raw + rb")(?![\w-])")

    def __call__(self, text: str) -> str:
        if self._pattern is None or not any(secret in text for secret in self._forms):
            return text
        return self._pattern.sub(MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        if self._bytes is None:
            return data
        return self._bytes.sub(MASK.encode(), data)

    def event(self, event: _E) -> _E:
        """The event with every secret in any of its fields masked (the same object when none is).
        Field by field, not on its JSON: there a secret after a newline follows `\\n`, a word.
        Events that only record file paths and hashes are left alone: a path is the user's file's
        name, and masking it would make an apply write somewhere else."""
        if self._pattern is None or event.kind in FILE_RECORDS:
            return event
        data = event.model_dump()
        masked = self._value(data)
        if masked is data:
            return event
        redacted = EVENT_ADAPTER.validate_python(masked)
        assert isinstance(redacted, type(event))
        return redacted

    def _value(self, value: Any) -> Any:
        """`value` with secrets masked in its strings; the same object when nothing changed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            items = {k: self._value(v) for k, v in value.items()}
            return value if all(items[k] is value[k] for k in value) else items
        if isinstance(value, list | tuple):
            masked = [self._value(v) for v in value]
            return value if all(m is v for m, v in zip(masked, value, strict=True)) else type(value)(masked)
        return value


class ByteStreamMasker:
    """Masks a redactor's secrets in output that arrives in pieces: a secret cut across two pieces
    is still masked, because what could be the start of one is held back until the next piece
    (or `flush`)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if not self.redactor.secrets:
            return data
        buffer = self._held + data
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else b""
        return self.redactor.mask_bytes(buffer[: len(buffer) - keep])

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return self.redactor.mask_bytes(held)

    def _partial_suffix(self, buffer: bytes) -> int:
        """The length of the longest end of `buffer` that begins a secret (or is one: the next
        byte decides whether it stands as a whole token)."""
        longest = 0
        for secret in self.redactor._forms:
            encoded = secret.encode("utf-8", "surrogateescape")
            for size in range(min(len(encoded), len(buffer)), longest, -1):
                if buffer.endswith(encoded[:size]):
                    longest = size
                    break
        return longest


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

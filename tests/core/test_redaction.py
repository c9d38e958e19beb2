"""One way to mask secrets, used by the event log, the model client's errors and the log handlers."""

from __future__ import annotations

import logging
import sys

from core.redaction import MASK, Redactor, RedactSecrets


def test_secrets_are_masked_as_whole_tokens_only() -> None:
    redact = Redactor(["sk-abc", "tok"])
    assert redact("key=sk-abc; Bearer tok.") == f"key={MASK}; Bearer {MASK}."
    assert redact('{"k": "sk-abc"}') == f'{{"k": "{MASK}"}}'
    assert redact("a token, stock, sk-abcdef") == "a token, stock, sk-abcdef"  # inside longer words


def test_a_secret_holding_another_is_masked_whole() -> None:
    redact = Redactor(["abc", "abc-def-ghi"])
    assert redact("x abc-def-ghi y abc") == f"x {MASK} y {MASK}"


def test_secrets_can_be_added_later_and_empty_ones_are_ignored() -> None:
    redact = Redactor([""])
    assert redact("nothing to hide") == "nothing to hide"
    redact.add(["late-secret", "late-secret"])
    assert redact.secrets == ["late-secret"]
    assert redact("the late-secret") == f"the {MASK}"


def test_the_log_filter_masks_messages_arguments_and_tracebacks() -> None:
    log_filter = RedactSecrets(Redactor(["sk-live-1"]))
    try:
        raise RuntimeError("failed with sk-live-1")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s", ("sk-live-1",), None)
        record.exc_info = sys.exc_info()
    assert log_filter.filter(record)
    text = logging.Formatter().format(record)
    assert "sk-live-1" not in text
    assert f"key {MASK}" in text and f"failed with {MASK}" in text

"""One way to mask secrets, used by the event log, the model client's errors and the log handlers."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import SecretStr

from core.config import Settings
from core.events import ToolCallEvent, ToolResultEvent, WorkspaceDelta
from core.redaction import MASK, ByteStreamMasker, Redactor, RedactSecrets, environment_secrets


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


def test_credential_variables_of_the_environment_are_secrets() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-openai-0123456789",
        "ANTHROPIC_AUTH_TOKEN": "ant-token-0123456789",
        "AWS_SECRET_ACCESS_KEY": "aws/secret+0123456789",
        "GITHUB_TOKEN": "ghp_0123456789abcdef",
        # names litellm reads that no common ending covers
        "AWS_BEARER_TOKEN_BEDROCK": "bedrock-bearer-01234",
        "WATSONX_ZENAPIKEY": "zen-0123456789",
        "VERTEXAI_CREDENTIALS": '{"private_key": "x"}',
        "HCP_VAULT_APPROLE_SECRET_ID": "approle-0123456789",
        "SHORT_TOKEN": "1",  # too short to mask without garbling text
        "PATH": "/usr/bin:/bin",
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
    }
    assert sorted(environment_secrets(environ)) == sorted(
        [
            "sk-openai-0123456789",
            "ant-token-0123456789",
            "aws/secret+0123456789",
            "ghp_0123456789abcdef",
            "bedrock-bearer-01234",
            "zen-0123456789",
            '{"private_key": "x"}',
            "approle-0123456789",
        ]
    )


def test_settings_secrets_include_the_providers_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-1")
    assert Settings(api_key=SecretStr("sk-configured-2")).secrets() == [
        "sk-configured-2",
        *environment_secrets(),
    ]
    assert "sk-from-the-environment-1" in Settings().secrets()


def test_bytes_and_json_escaped_forms_are_masked() -> None:
    redact = Redactor(['sk-with"quote'])
    assert redact(json.dumps({"k": 'sk-with"quote'})) == json.dumps({"k": MASK})
    assert Redactor(["sk-bytes-1"]).mask_bytes(b"a sk-bytes-1 \xff b") == b"a [redacted] \xff b"


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_secret_cut_across_pieces_of_output_is_masked(cut: int) -> None:
    data = b"key=sk-secret-1 and more\n"
    masker = ByteStreamMasker(Redactor(["sk-secret-1"]))
    out = masker.feed(data[:cut]) + masker.feed(data[cut:]) + masker.flush()
    assert out == b"key=[redacted] and more\n"


def test_an_event_is_masked_in_every_field() -> None:
    redact = Redactor(["sk-event-1"])
    event = ToolCallEvent(
        call_id="c", tool="bash", arguments='{"command": "echo sk-event-1"}', title="sk-event-1"
    )
    masked = redact.event(event)
    assert "sk-event-1" not in masked.model_dump_json() and masked.title == MASK
    plain = ToolCallEvent(call_id="c", tool="bash", arguments="{}")
    assert redact.event(plain) is plain


def test_a_secret_at_the_start_of_a_line_is_masked_in_json_too() -> None:
    redact = Redactor(["sk-line-start-1"])
    text = "8000\nsk-line-start-1 more\n"
    assert redact(json.dumps(text)) == json.dumps(f"8000\n{MASK} more\n")
    event = ToolResultEvent(call_id="c", tool="bash", output=text)
    assert redact.event(event).output == f"8000\n{MASK} more\n"


def test_file_records_keep_their_paths() -> None:
    redact = Redactor(["sk-named-folder-1"])
    delta = WorkspaceDelta(sandbox={"sk-named-folder-1/a.txt": None})
    assert redact.event(delta) is delta

import asyncio
import os
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.eventlog import EventLog, EventLogError, read_events
from core.events import (
    EVENT_ADAPTER,
    AgentMessage,
    AgentMessageChunk,
    ToolCallEvent,
    ToolResultEvent,
    UserMessage,
)
from core.redaction import Redactor
from core.store import SessionStore


def test_events_are_frozen_and_strict() -> None:
    event = UserMessage(text="hi")
    with pytest.raises(ValidationError):
        event.text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        UserMessage.model_validate({"text": "hi", "surprise": 1})


def test_discriminated_union_round_trips_every_kind() -> None:
    event = ToolResultEvent(call_id="c1", tool="bash", output="ok", exit_code=0)
    again = EVENT_ADAPTER.validate_json(event.model_dump_json())
    assert again == event
    assert isinstance(again, ToolResultEvent)


def test_append_assigns_seq_and_replays(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl")
    stored = [log.append(UserMessage(text=f"m{i}")) for i in range(5)]
    assert [e.seq for e in stored] == [0, 1, 2, 3, 4]
    log.close()
    reopened, events = EventLog.open(tmp_path / "s.jsonl")
    assert events == stored
    assert reopened.append(AgentMessage(text="next")).seq == 5


def test_chunks_are_never_persisted(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl")
    with pytest.raises(EventLogError):
        log.append(AgentMessageChunk(text="x"))


def test_torn_last_line_is_cut_on_open(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl")
    for i in range(3):
        log.append(UserMessage(text=f"m{i}"))
    log.close()
    path = tmp_path / "s.jsonl"
    good_size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b'{"kind": "user_message", "seq": 3, "te')  # a crash mid-write
    reopened, events = EventLog.open(tmp_path / "s.jsonl")
    assert [e.seq for e in events] == [0, 1, 2]
    assert path.stat().st_size == good_size
    assert reopened.append(UserMessage(text="after")).seq == 3
    reopened.close()
    assert [e.seq for e in read_events(tmp_path / "s.jsonl")] == [0, 1, 2, 3]


def test_complete_but_invalid_last_line_is_cut(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl")
    log.append(UserMessage(text="m0"))
    log.close()
    path = tmp_path / "s.jsonl"
    with path.open("ab") as f:
        f.write(b'{"kind": "nonsense"}\n')
    _, events = EventLog.open(tmp_path / "s.jsonl")
    assert len(events) == 1
    assert path.read_bytes().count(b"\n") == 1


def test_corruption_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl")
    for i in range(3):
        log.append(UserMessage(text=f"m{i}"))
    log.close()
    path = tmp_path / "s.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(EventLogError, match=r"s\.jsonl:2"):
        EventLog.open(tmp_path / "s.jsonl")


def test_secrets_are_redacted_before_writing(tmp_path: Path) -> None:
    log = EventLog.create(tmp_path / "s.jsonl", Redactor(["sk-very-secret"]))
    log.append(ToolResultEvent(call_id="c", tool="bash", output="key is sk-very-secret"))
    log.close()
    text = (tmp_path / "s.jsonl").read_text()
    assert "sk-very-secret" not in text
    assert "[redacted]" in text


def test_store_fork_keeps_events_up_to_seq(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    log = store.create("a", {"id": "a"}, Redactor())
    for i in range(4):
        log.append(UserMessage(text=f"m{i}"))
    log.sync()
    forked = store.fork("a", "b", 1, {"id": "b", "parent": "a"}, Redactor())
    forked.close()
    assert [e.seq for e in store.events("b")] == [0, 1]
    assert store.read_meta("b") == {"id": "b", "parent": "a"}
    assert {m["id"] for m in store.list_meta()} == {"a", "b"}


def test_sync_fsyncs_only_when_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    log = EventLog.create(tmp_path / "s.jsonl")
    calls.clear()
    log.sync()
    assert calls == []
    log.append(ToolCallEvent(call_id="c", tool="bash", arguments="{}"))
    log.sync()
    log.sync()
    assert len(calls) == 1


async def test_sync_off_loop_fsyncs_on_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = os.fsync

    def recording_fsync(fd: int) -> None:
        threads.append(threading.get_ident())
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    log = EventLog.create(tmp_path / "s.jsonl")
    threads.clear()
    await log.sync_off_loop()
    assert threads == []  # nothing appended: no fsync
    log.append(ToolCallEvent(call_id="c", tool="bash", arguments="{}"))
    pending = asyncio.ensure_future(log.sync_off_loop())
    await asyncio.sleep(0)
    log.append(ToolCallEvent(call_id="d", tool="bash", arguments="{}"))  # while the fsync runs
    await pending
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    await log.sync_off_loop()  # the event appended meanwhile is synced too
    assert len(threads) == 2
    await log.sync_off_loop()
    assert len(threads) == 2


def test_the_store_keeps_everything_private(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "data" / "sessions")
    log = store.create("s", {"id": "s"}, Redactor())
    log.append(UserMessage(text="a secret task"))
    log.close()
    store.save_patch("s", "--- a/x\n")
    store.put_blob(b"secret content")
    store.update_meta("s", title="a secret task")
    modes = {
        str(path.relative_to(tmp_path)): path.stat().st_mode & 0o777
        for path in (tmp_path / "data").rglob("*")
    }
    assert modes and all(
        mode == (0o700 if (tmp_path / p).is_dir() else 0o600) for p, mode in modes.items()
    ), modes


async def test_blobs_are_made_durable_with_the_log_and_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SessionStore(tmp_path / "sessions")
    log = store.create("s", {"id": "s"}, Redactor())
    order: list[str] = []
    real = os.fsync

    def recording_fsync(fd: int) -> None:
        order.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    ref = store.put_blob(b"content the next event refers to")
    assert order == []  # written, not yet synced: that waits for the step's sync
    log.append(UserMessage(text="refers to the blob"))
    await log.sync_off_loop(first=store.sync_blobs)
    assert ref.sha256 is not None and order[0].endswith(ref.sha256[2:]) and order[-1].endswith(".jsonl")
    assert store.read_blob(ref.sha256) == b"content the next event refers to"


def test_a_damaged_blob_reads_as_lost(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    ref = store.put_blob(b"x" * 100)
    assert ref.sha256 is not None
    path = tmp_path / "sessions" / ".blobs" / ref.sha256[:2] / ref.sha256[2:]
    path.write_bytes(b"")  # what an OS crash can leave of an unsynced write
    assert store.read_blob(ref.sha256) is None

"""Applying a change set to the host: only inside the workspace, never through a symlink, never onto
a special file, all or nothing unless partial, journaled so a crash is completed or rolled back."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.apply import ApplyReport, apply_changes, recover_apply
from core.changes import ChangeSet, make_change, md5
from core.errors import ConflictError, UnsafePathError
from core.events import ApplyFinished, ApplyStarted, Event
from core.paths import escape_path
from core.redaction import Redactor
from core.state import replay
from core.store import SessionStore

LATIN1 = b"caf\xe9.txt".decode("utf-8", "surrogateescape")


class Journal:
    """A session log's stand-in: the events an apply emits, in a real store."""

    def __init__(self, root: Path) -> None:
        self.store = SessionStore(root / "sessions")
        self.events: list[Event] = []

    def emit(self, event: Event) -> Event:
        self.events.append(event)
        return event

    async def sync(self) -> None:
        pass

    async def apply(self, ws: Path, changes: ChangeSet, **options: bool) -> ApplyReport:
        return await apply_changes(ws, changes, self.store, self.emit, self.sync, **options)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path)


def changes(*files: tuple[str, bytes | None, bytes | None]) -> ChangeSet:
    return ChangeSet(files=tuple(make_change(path, old, new) for path, old, new in files))


async def test_apply_writes_deletes_keeps_modes_and_journals(ws: Path, journal: Journal) -> None:
    (ws / "old.txt").write_text("bye\n")
    (ws / "mod.sh").write_text("echo 1\n")
    os.chmod(ws / "mod.sh", 0o755)
    report = await journal.apply(
        ws,
        changes(
            ("new/dir/a.txt", None, b"hi\n"),
            ("old.txt", b"bye\n", None),
            ("mod.sh", b"echo 1\n", b"echo 2\n"),
            (LATIN1, None, b"latin\n"),
        ),
    )
    assert report.written == ["new/dir/a.txt", "old.txt", "mod.sh", LATIN1] and report.refused == {}
    assert (ws / "new/dir/a.txt").read_text() == "hi\n"
    assert not (ws / "old.txt").exists()
    assert (ws / "mod.sh").read_text() == "echo 2\n"
    assert stat.S_IMODE(os.stat(ws / "mod.sh").st_mode) == 0o755
    assert (ws / LATIN1).read_bytes() == b"latin\n"
    assert journal.kinds() == ["apply_started", "apply_finished"]
    started = journal.events[0]
    assert isinstance(started, ApplyStarted)
    assert set(started.files) == {"new/dir/a.txt", "old.txt", "mod.sh", escape_path(LATIN1)}
    assert started.files["mod.sh"].expect == md5(b"echo 1\n")
    assert not list(ws.rglob("*.tmp"))  # no temporary file left


async def test_a_conflict_writes_nothing_unless_forced(ws: Path, journal: Journal) -> None:
    (ws / "a.txt").write_text("user edited\n")
    both = changes(("b.txt", None, b"new\n"), ("a.txt", b"original\n", b"agent\n"))
    with pytest.raises(ConflictError, match=r"a\.txt.*Nothing was written"):
        await journal.apply(ws, both)
    assert not (ws / "b.txt").exists() and journal.events == []
    await journal.apply(ws, both, force=True)
    assert (ws / "a.txt").read_text() == "agent\n"


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "/etc/passwd", "a/../../x", "", "a//b", "./x", ".git/hooks/pre-commit"]
)
async def test_paths_outside_the_workspace_or_in_git_are_refused(
    ws: Path, journal: Journal, bad: str
) -> None:
    with pytest.raises(UnsafePathError):
        await journal.apply(ws, changes((bad, None, b"x")))
    assert journal.events == []


async def test_a_symlink_at_the_old_temporary_name_cannot_redirect_the_write(
    ws: Path, journal: Journal, tmp_path: Path
) -> None:
    """The reproduction: `.NAME.sidehand-tmp` linked outside (and a dangling link) took the write."""
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (ws / ".a.txt.sidehand-tmp").symlink_to(outside)
    (ws / ".b.txt.sidehand-tmp").symlink_to(tmp_path / "created-outside.txt")
    await journal.apply(ws, changes(("a.txt", None, b"agent\n"), ("b.txt", None, b"agent\n")))
    assert outside.read_text() == "precious\n"
    assert not (tmp_path / "created-outside.txt").exists()
    for name in ("a.txt", "b.txt"):
        assert stat.S_ISREG(os.lstat(ws / name).st_mode) and (ws / name).read_text() == "agent\n"


async def test_symlinks_specials_and_folders_in_the_way_are_refused(
    ws: Path, journal: Journal, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (ws / "linkdir").symlink_to(tmp_path / "outside")
    (ws / "linkfile").symlink_to(tmp_path / "outside" / "f.txt")
    os.mkfifo(ws / "pipe")
    (ws / "folder").mkdir()
    (ws / "afile").write_text("x")
    bad = {
        "linkdir/x.txt": "symlink",
        "linkfile": "symlink",
        "pipe": "special file",
        "folder": "folder",
        "afile/inside.txt": "not a folder",
    }
    for path, why in bad.items():
        with pytest.raises(UnsafePathError, match=why):
            await journal.apply(ws, changes((path, None, b"x")))
    assert os.listdir(tmp_path / "outside") == []
    assert journal.events == []


async def test_partial_writes_the_rest_and_names_what_was_refused(ws: Path, journal: Journal) -> None:
    os.mkfifo(ws / "pipe")
    (ws / "moved.txt").write_text("user\n")
    mixed = changes(("ok.txt", None, b"ok\n"), ("pipe", None, b"x"), ("moved.txt", b"was\n", b"agent\n"))
    with pytest.raises(
        UnsafePathError, match=r"nothing was written.*pipe: .*special file.*moved\.txt: changed"
    ):
        await journal.apply(ws, mixed)
    assert not (ws / "ok.txt").exists()
    report = await journal.apply(ws, mixed, partial=True)
    assert report.written == ["ok.txt"] and set(report.refused) == {"pipe", "moved.txt"}
    assert (ws / "ok.txt").read_text() == "ok\n" and (ws / "moved.txt").read_text() == "user\n"
    finished = journal.events[-1]
    assert isinstance(finished, ApplyFinished) and finished.written == ("ok.txt",)


def test_an_interrupted_apply_is_completed_when_nothing_else_moved(ws: Path, journal: Journal) -> None:
    started = _started_apply(ws, journal, write_first=2)
    state = replay([started]).workspace
    finished = recover_apply(ws, state, journal.store)
    assert finished is not None and finished.recovered == "completed"
    assert "completed" in finished.message
    assert [(ws / f"f{i}.txt").read_text() for i in range(4)] == ["new\n"] * 4


def test_recovery_removes_the_temporary_file_a_killed_write_left(ws: Path, journal: Journal) -> None:
    started = _started_apply(ws, journal, write_first=2)
    (ws / ".f2.txt.sidehand-0123456789ab.tmp").write_bytes(b"")  # the kill hit between open and rename
    (ws / ".notes.sidehand-0123456789ab.tmp").write_text("not one of this apply's files\n")
    (ws / ".f3.txt.sidehand-ba9876543210.tmp").symlink_to("/etc/passwd")  # not a regular file
    finished = recover_apply(ws, replay([started]).workspace, journal.store)
    assert finished is not None and finished.recovered == "completed"
    assert sorted(p.name for p in ws.iterdir()) == [
        ".f3.txt.sidehand-ba9876543210.tmp",
        ".notes.sidehand-0123456789ab.tmp",
        *(f"f{i}.txt" for i in range(4)),
    ]


def test_an_interrupted_apply_is_rolled_back_when_a_file_moved_since(ws: Path, journal: Journal) -> None:
    started = _started_apply(ws, journal, write_first=2)
    (ws / "f3.txt").write_text("the user's edit after the crash\n")
    finished = recover_apply(ws, replay([started]).workspace, journal.store)
    assert finished is not None and finished.recovered == "rolled_back"
    assert "f3.txt" in finished.message
    assert [(ws / f"f{i}.txt").read_text() for i in range(3)] == ["old\n"] * 3
    assert (ws / "f3.txt").read_text() == "the user's edit after the crash\n"


def _started_apply(ws: Path, journal: Journal, write_first: int) -> ApplyStarted:
    """An apply of four files that died after writing `write_first` of them."""
    from core.events import ApplyEntry

    for i in range(4):
        (ws / f"f{i}.txt").write_text("old\n")
    old, new = journal.store.put_blob(b"old\n"), journal.store.put_blob(b"new\n")
    started = ApplyStarted(
        apply_id="a1",
        files={f"f{i}.txt": ApplyEntry(expect=old.md5, write=new, previous=old) for i in range(4)},
    )
    for i in range(write_first):
        (ws / f"f{i}.txt").write_text("new\n")
    return started


CRASHING_APPLY = """
import asyncio, sys
from pathlib import Path
from core.apply import apply_changes
from core.changes import ChangeSet, make_change
from core.redaction import Redactor
from core.store import SessionStore

ws, root = Path(sys.argv[1]), Path(sys.argv[2])
store = SessionStore(root)
log = store.create("s", {"id": "s"}, Redactor())
changes = ChangeSet(files=tuple(make_change(f"f{i:04}.txt", b"old\\n", b"new\\n") for i in range(1500)))

async def main():
    async def sync():
        log.sync()
        print("journaled", flush=True)  # the parent kills us now, in the middle of the writes
    await apply_changes(ws, changes, store, log.append, sync)

asyncio.run(main())
"""


def test_a_sigkill_in_the_middle_of_an_apply_is_recovered(ws: Path, tmp_path: Path) -> None:
    for i in range(1500):
        (ws / f"f{i:04}.txt").write_text("old\n")
    root = tmp_path / "sessions"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CRASHING_APPLY), str(ws), str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "journaled\n"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    store = SessionStore(root)
    log, events = store.open("s", Redactor())
    state = replay(events).workspace
    assert state.open_apply is not None  # the log shows an apply without its end
    finished = recover_apply(ws, state, store)
    log.close()
    assert finished is not None and finished.recovered == "completed"
    assert {p.read_text() for p in ws.iterdir()} == {"new\n"}
    assert not [p for p in ws.iterdir() if p.name.endswith(".tmp")]

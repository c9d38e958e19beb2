import os
from pathlib import Path

import pytest

from core.changes import ChangeSet, make_change, write_changes
from core.errors import ConflictError, UnsafePathError


def test_make_change_diffs() -> None:
    added = make_change("a.py", None, b"x = 1\n")
    assert added.status == "added" and "--- /dev/null" in added.diff and "+++ b/a.py" in added.diff
    modified = make_change("a.py", b"x = 1\n", b"x = 2\n")
    assert modified.status == "modified" and "-x = 1" in modified.diff and "+x = 2" in modified.diff
    deleted = make_change("a.py", b"x = 1\n", None)
    assert deleted.status == "deleted" and "+++ /dev/null" in deleted.diff
    binary = make_change("b.bin", b"\x00\x01", b"\x00\x02")
    assert binary.binary and binary.diff == ""


def test_apply_writes_and_deletes(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("bye\n")
    (tmp_path / "mod.sh").write_text("echo 1\n")
    os.chmod(tmp_path / "mod.sh", 0o755)
    changes = ChangeSet(
        files=(
            make_change("new/dir/a.txt", None, b"hi\n"),
            make_change("old.txt", b"bye\n", None),
            make_change("mod.sh", b"echo 1\n", b"echo 2\n"),
        )
    )
    assert write_changes(tmp_path, changes) == ["new/dir/a.txt", "old.txt", "mod.sh"]
    assert (tmp_path / "new/dir/a.txt").read_text() == "hi\n"
    assert not (tmp_path / "old.txt").exists()
    assert (tmp_path / "mod.sh").read_text() == "echo 2\n"
    assert os.stat(tmp_path / "mod.sh").st_mode & 0o777 == 0o755


def test_conflict_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("user edited\n")
    changes = ChangeSet(
        files=(make_change("b.txt", None, b"new\n"), make_change("a.txt", b"original\n", b"agent\n"))
    )
    with pytest.raises(ConflictError, match=r"a\.txt"):
        write_changes(tmp_path, changes)
    assert not (tmp_path / "b.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "user edited\n"
    write_changes(tmp_path, changes, force=True)
    assert (tmp_path / "a.txt").read_text() == "agent\n"


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../x", ""])
def test_paths_outside_the_workspace_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        write_changes(tmp_path / "ws", ChangeSet(files=(make_change(bad, None, b"x"),)))


def test_symlinked_folder_leading_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "ws" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePathError):
        write_changes(tmp_path / "ws", ChangeSet(files=(make_change("link/x.txt", None, b"x"),)))
    assert not (tmp_path / "outside" / "x.txt").exists()

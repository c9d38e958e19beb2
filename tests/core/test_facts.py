"""Which workspace files a shell command reads, for the folder rules a read makes relevant."""

from __future__ import annotations

import pytest

from core.facts import read_paths


@pytest.mark.parametrize(
    ("command", "paths"),
    [
        ("cat api/handlers.py", ["api/handlers.py"]),
        ("cat -n /workspace/api/a.py | head -20", ["api/a.py"]),
        ("grep -rn 'def get' src/ tests/x.py", ["src", "tests/x.py"]),  # the pattern is no file
        ("sed -n '1,20p' web/app.js && tail -f log.txt", ["web/app.js", "log.txt"]),
        ("cd pkg && ls", []),
        ("cat *.py; cat $FILE", []),  # globs and computed words: unknown
        ("cat /etc/passwd ../outside.txt", []),  # outside /workspace
        ("python3 -m pytest tests/", []),  # not a reader
        ("cat 'a\nb.txt' 'two words.md'", ["a\\nb.txt", "two words.md"]),  # escaped as the change set is
        ("if [ -f a.txt ]; then cat a.txt; fi", ["a.txt"]),
        ("", []),
        ("cat <<'EOF'\nx\nEOF", []),
    ],
)
def test_the_files_a_command_reads(command: str, paths: list[str]) -> None:
    assert read_paths(command) == paths

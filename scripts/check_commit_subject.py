"""The commit-msg hook: a commit's subject (its first line) holds at most 72 characters."""

from __future__ import annotations

import sys
from pathlib import Path

MOST = 72


def main(message_file: str) -> int:
    lines = Path(message_file).read_text(encoding="utf-8", errors="replace").splitlines()
    subject = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    if len(subject) > MOST:
        sys.stdout.write(
            f"the commit subject has {len(subject)} characters (at most {MOST}): {subject}\n"
            "shorten it; put the details in the body, after a blank line\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

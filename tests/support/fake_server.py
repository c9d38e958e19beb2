"""`sidehand lsp` / `sidehand mcp` on the fakes, for tests and benchmarks:

    python -m tests.support.fake_server lsp --script turns.json [lsp options]
    python -m tests.support.fake_server mcp --script turns.json [mcp options]

The same entry points as the real commands, given a session-manager factory that builds the
scripted in-process model and the in-memory sandbox (`core.testing.fake_manager`): nothing in the
shipped servers knows they are being tested. The script file is read when each session starts,
so a test may rewrite it between sessions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Settings
    from core.sessions import SessionManager


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fake_server")
    parser.add_argument("front", choices=["lsp", "mcp"])
    parser.add_argument("--script", type=Path, required=True, help="the scripted model's turns (JSON)")
    args, rest = parser.parse_known_args(argv)

    def factory(settings: Settings) -> SessionManager:
        # Imported when the first session needs it, as the real wiring is: the server's start-up
        # (the early `initialize` answer above all) is the real one's.
        from core.testing.fake_manager import build_fake_manager

        return build_fake_manager(settings, args.script)

    if args.front == "lsp":
        from agent_lsp.cli import main as lsp_main

        return lsp_main(rest, manager_factory=factory)
    from agent_mcp.cli import main as mcp_main

    return mcp_main(rest, manager_factory=factory)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

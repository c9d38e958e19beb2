"""`sidehand lsp`: the language server over stdio (default) or TCP (`--tcp HOST:PORT`).

stdout is the protocol: logging goes to stderr (or `--log-file`), with any configured secret
redacted. `main` takes the session manager's factory: the default wires the Docker sandbox and
litellm (`sidehand.wiring`); tests pass one that builds fakes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent_lsp.handshake import ReplayReader, answer_initialize

if TYPE_CHECKING:
    from core.sessions import ManagerFactory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidehand lsp", description="Sidehand language server.")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--log-file", help="log here instead of stderr")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(
    argv: list[str] | None = None,
    *,
    manager_factory: ManagerFactory | None = None,
    warm_up: Callable[[], object] | None = None,
) -> int:
    """Run the server. Without `manager_factory`, sessions use the Docker sandbox and litellm and
    `warm_up` defaults to loading those in the background."""
    args = build_parser().parse_args(argv)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            sys.stderr.write(f"sidehand lsp: --tcp wants HOST:PORT, got {args.tcp!r}\n")
            return 2
    # The editor waits on `initialize` before anything else: answer it before the slow imports.
    early = None if args.tcp else answer_initialize(sys.stdin.buffer, sys.stdout.buffer)
    from core.logging_config import configure_logging
    from core.redaction import RedactSecrets

    redact = RedactSecrets()
    configure_logging(verbose=args.verbose, log_file=args.log_file, redact=redact)
    # Worker threads (model calls, Docker SDK calls, imports) hold the GIL for up to the switch
    # interval each time the event loop wants it: 1 ms instead of 5 bounds those waits
    # (bench/loop_lag.py: fewer stalls over 10 ms while a session's sandbox starts).
    sys.setswitchinterval(0.001)
    if manager_factory is None:
        from sidehand.wiring import build_manager, prefetch

        manager_factory, warm_up = build_manager, prefetch
    from agent_lsp.build import build_server

    server = build_server(manager_factory, redact=redact, warm_up=warm_up, early=early)
    if early is None:
        server.start_tcp(host, int(port))
        return 0
    server.start_io(stdin=ReplayReader(early.consumed, sys.stdin.buffer))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`sidehand lsp`: the language server over stdio (default) or TCP (`--tcp HOST:PORT`: loopback
only unless a token is given, which a client passes as `initializationOptions.token`).

stdout is the protocol: logging goes to stderr (or `--log-file`), with any configured secret
redacted. `main` takes the session manager's factory: the default wires the Docker sandbox and
litellm (`sidehand.wiring`); tests pass one that builds fakes."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent_lsp.handshake import RawStdin, answer_initialize

TOKEN_ENV = "SIDEHAND_LSP_TOKEN"

if TYPE_CHECKING:
    from core.sessions import ManagerFactory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidehand lsp", description="Sidehand language server.")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (port 0: any)")
    parser.add_argument(
        "--token",
        help=f"with --tcp: the token a client must pass as initializationOptions.token (or {TOKEN_ENV}); "
        "required to listen beyond loopback",
    )
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
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            sys.stderr.write(f"sidehand lsp: --tcp wants HOST:PORT, got {args.tcp!r}\n")
            return 2
        if not is_loopback(host) and token is None:
            sys.stderr.write(
                f"sidehand lsp: refusing to listen on {host} without a token: anyone who can reach it "
                f"could run commands. Pass --token (or set {TOKEN_ENV}), or listen on 127.0.0.1.\n"
            )
            return 2
    # The editor waits on `initialize` before anything else: answer it before the slow imports.
    early = None if args.tcp else answer_initialize(RawStdin(sys.stdin.fileno()), sys.stdout.buffer)
    from core.logging_config import configure_logging
    from core.redaction import RedactSecrets

    redact = RedactSecrets()
    redact.add([token] if token else [])
    configure_logging(verbose=args.verbose, log_file=args.log_file, redact=redact)
    # Worker threads (model calls, Docker SDK calls, imports) hold the GIL for up to the switch
    # interval each time the event loop wants it: 1 ms instead of 5 bounds those waits
    # (bench/loop_lag.py: fewer stalls over 10 ms while a session's sandbox starts).
    sys.setswitchinterval(0.001)
    if manager_factory is None:
        from sidehand.wiring import build_manager, prefetch

        manager_factory, warm_up = build_manager, prefetch
    from agent_lsp.build import build_server
    from agent_lsp.transport import serve_stdio, serve_tcp

    server = build_server(manager_factory, redact=redact, warm_up=warm_up, early=early)
    if early is None:
        return serve_tcp(server, host, int(port), token)
    return serve_stdio(server, early.consumed, sys.stdin.fileno())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())

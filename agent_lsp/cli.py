"""`sidehand lsp`: the language server over stdio (default) or TCP (`--tcp HOST:PORT`).

stdout is the protocol: logging goes to stderr (or `--log-file`), with any configured secret
redacted."""

from __future__ import annotations

import argparse
import logging
import sys

from agent_lsp.handshake import ReplayReader, answer_initialize
from core.redaction import RedactSecrets

log = logging.getLogger(__name__)

# The language server adds the API key once initializationOptions arrive.
REDACT = RedactSecrets()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidehand lsp", description="Sidehand language server.")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--log-file", help="log here instead of stderr")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def configure_logging(verbose: bool, log_file: str | None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.addFilter(REDACT)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # pygls logs whole messages (initializationOptions included) at INFO/DEBUG: keep it quiet.
    logging.getLogger("pygls").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_file)
    # Worker threads (model calls, Docker SDK calls, imports) hold the GIL for up to the switch
    # interval each time the event loop wants it: 1 ms instead of 5 bounds those waits
    # (bench/loop_lag.py: fewer stalls over 10 ms while a session's sandbox starts).
    sys.setswitchinterval(0.001)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            log.error("--tcp wants HOST:PORT, got %r", args.tcp)
            return 2
        from agent_lsp.server import build_server

        build_server().start_tcp(host, int(port))
        return 0
    # The editor waits on `initialize` before anything else: answer it before the slow imports.
    early = answer_initialize(sys.stdin.buffer, sys.stdout.buffer)
    from agent_lsp.server import build_server

    build_server(early).start_io(stdin=ReplayReader(early.consumed, sys.stdin.buffer))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())

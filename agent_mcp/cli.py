"""`sidehand mcp`: the MCP server over stdio (default) or streamable HTTP (`--http`).

stdout is the protocol in stdio mode: logging goes to stderr (or `--log-file`). Over HTTP the
server binds 127.0.0.1 by default, checks Host/Origin headers (DNS-rebinding protection) and
requires a bearer token; it refuses to listen beyond loopback unless the token is given."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_mcp.auth import (
    TOKEN_ENV,
    BearerTokenMiddleware,
    TokenFileError,
    default_token_file,
    is_loopback,
    new_token,
    read_token_file,
    write_token_file,
)
from core.config import load_settings
from core.errors import SidehandError
from core.logging_config import configure_logging
from core.redaction import RedactSecrets

if TYPE_CHECKING:
    from agent_mcp.app import SidehandApp
    from core.sessions import ManagerFactory, SessionManager

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
ROOTS_ENV = "SIDEHAND_MCP_ROOTS"  # allowed roots, separated by os.pathsep (when no --root is given)
PREFETCH_DELAY = 1.0  # let the handshake go first: importing litellm holds the GIL for seconds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sidehand mcp", description="Sidehand MCP server (stdio by default).")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any)"
    )
    p.add_argument("--token", help=f"HTTP bearer token (or {TOKEN_ENV}); generated when not given")
    p.add_argument(
        "--token-file",
        type=Path,
        help=f"where the generated token is kept and reused from (default {default_token_file()})",
    )
    p.add_argument(
        "--rotate-token",
        action="store_true",
        help="replace the kept token with a new one (old clients get 401)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="Host header to accept when not on loopback (repeatable)",
    )
    p.add_argument(
        "--root",
        action="append",
        type=Path,
        default=[],
        help=f"allowed workspace root (repeatable; else ${ROOTS_ENV}, else the client's roots, else cwd)",
    )
    p.add_argument("--model", help="litellm model name (default: SIDEHAND_MODEL / config file)")
    p.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    p.add_argument("--image", dest="sandbox_image", help="sandbox image")
    p.add_argument("--config", type=Path, help="config file (default: ~/.config/sidehand/config.toml)")
    p.add_argument("--max-tasks", type=int, default=8, help="tasks running at once (default 8)")
    p.add_argument("--max-sandboxes", type=int, default=8, help="sandboxes open at once (default 8)")
    p.add_argument(
        "--approval-timeout",
        type=float,
        default=300.0,
        help="seconds before an unanswered approval is rejected",
    )
    p.add_argument("--log-file", help="log here instead of stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def say(message: str) -> None:
    """A line for the person who started the server (stderr: stdout may be the protocol)."""
    sys.stderr.write(f"sidehand mcp: {message}\n")
    sys.stderr.flush()


def main(
    argv: list[str] | None = None,
    *,
    manager_factory: ManagerFactory | None = None,
    warm_up: Callable[[], object] | None = None,
) -> int:
    """Run the server. Without `manager_factory`, sessions use the Docker sandbox and litellm and
    `warm_up` defaults to loading those in the background; tests pass a factory that builds fakes."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    redact = RedactSecrets()
    configure_logging(verbose=args.verbose, log_file=args.log_file, redact=redact)
    # Worker threads (model calls, Docker SDK calls, imports) hold the GIL for up to the switch
    # interval each time the event loop wants it: 1 ms instead of 5 bounds those waits
    # (bench/loop_lag.py: fewer stalls over 10 ms while a session's sandbox starts).
    sys.setswitchinterval(0.001)
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.http and not is_loopback(args.host) and not token:
        say(
            f"refusing to listen on {args.host} without a token: anyone who can reach it could run commands. "
            f"Pass --token (or set {TOKEN_ENV}) to expose it, or keep the default --host 127.0.0.1."
        )
        return 2
    try:
        settings = load_settings(
            {"model": args.model, "api_base": args.api_base, "sandbox_image": args.sandbox_image},
            config_file=args.config,
        )
    except SidehandError as exc:
        say(str(exc))
        return 2
    redact.add(settings.secrets())
    if manager_factory is None:
        from sidehand.wiring import build_manager, prefetch

        manager_factory, warm_up = build_manager, prefetch
    try:
        asyncio.run(_serve(args, _build_app(args, manager_factory(settings)), token, warm_up))
    except KeyboardInterrupt:
        pass
    except (SidehandError, TokenFileError) as exc:
        say(str(exc))
        return 2
    except OSError as exc:
        say(f"cannot serve: {exc}")
        return 1
    return 0


def _build_app(args: argparse.Namespace, manager: SessionManager) -> SidehandApp:
    from agent_mcp.app import ServerConfig, SidehandApp

    roots = args.root or [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    config = ServerConfig(
        roots=tuple(roots),
        max_tasks=args.max_tasks,
        max_sandboxes=args.max_sandboxes,
        approval_timeout=args.approval_timeout,
    )
    return SidehandApp(manager, config)


async def _serve(
    args: argparse.Namespace, app: SidehandApp, token: str | None, warm_up: Callable[[], object] | None
) -> None:
    from agent_mcp.server import build_server

    server = build_server(app)
    loop = asyncio.get_running_loop()
    recovering = loop.create_task(_recover(app, warm_up))
    main_task = asyncio.current_task()
    # SIGTERM stops the transport: stdio by cancelling it, HTTP by a graceful uvicorn shutdown
    # (cancelling uvicorn mid-lifespan prints a traceback).
    stoppers: list[Callable[[], object]] = [main_task.cancel] if main_task is not None else []
    loop.add_signal_handler(signal.SIGTERM, lambda: stoppers[-1]() if stoppers else None)
    try:
        if args.http:
            await _serve_http(args, server, token, stoppers)
        else:
            await server.run_stdio_async()
    except asyncio.CancelledError:
        log.info("stopping (SIGTERM)")
    finally:
        recovering.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(app.aclose(), 30)


async def _recover(app: SidehandApp, warm_up: Callable[[], object] | None) -> None:
    """Warm up (after the handshake: importing litellm holds the GIL for seconds), then settle what
    a killed Sidehand process left behind (its sandboxes, its open sessions), then have sandboxes
    of the configured roots ready."""
    await asyncio.sleep(PREFETCH_DELAY)
    warming = warm_up() if warm_up is not None else None
    if isinstance(warming, threading.Thread):
        await asyncio.to_thread(warming.join)
    try:
        await app.manager.recover()
    except Exception:
        log.warning("could not settle what a stopped process left behind", exc_info=True)
    for root in app.configured_roots:  # ready sandboxes of the folders it serves
        await app.manager.prewarm(root)


async def _serve_http(
    args: argparse.Namespace, server: Any, token: str | None, stoppers: list[Callable[[], object]]
) -> None:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: ours ask it to stop gracefully."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    from mcp.server.transport_security import TransportSecuritySettings

    if token is None:
        token_file = args.token_file or default_token_file()
        kept = None if args.rotate_token else read_token_file(token_file)
        if kept is not None:
            token = kept
            say(f"bearer token read from {token_file}")
        else:
            token = new_token()
            write_token_file(token_file, token)
            say(f"bearer token written to {token_file} (mode 0600)")
    if is_loopback(args.host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", *args.allowed_host],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    elif args.allowed_host:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=args.allowed_host,
            allowed_origins=[f"http://{h}" for h in args.allowed_host]
            + [f"https://{h}" for h in args.allowed_host],
        )
    else:
        log.warning("no --allowed-host: Host headers are not checked (the bearer token still is)")
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    starlette_app = server.streamable_http_app(host=args.host, transport_security=security)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        BearerTokenMiddleware(starlette_app, token), log_level="warning", lifespan="on", access_log=False
    )
    http = QuietServer(config)
    stoppers.append(lambda: setattr(http, "should_exit", True))
    host = f"[{args.host}]" if ":" in args.host else args.host
    say(f"listening on http://{host}:{port}/mcp")
    await http.serve(sockets=[sock])

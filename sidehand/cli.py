"""The `sidehand` command: parse the arguments and dispatch. The servers (`sidehand lsp`, `sidehand
mcp`) parse their own options; the other commands live in `sidehand.commands`, imported only
when used, so that an editor's `sidehand lsp` starts without loading the core."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="litellm model name (default: SIDEHAND_MODEL / config file)")
    p.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    p.add_argument("--image", dest="sandbox_image", help="sandbox image (any image with a POSIX shell)")
    p.add_argument("--network", action="store_true", default=None, help="allow network access in the sandbox")
    p.add_argument("--config", type=Path, help="config file (default: ~/.config/sidehand/config.toml)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--apply", action="store_true", help="write the agent's changes to the workspace")
    p.add_argument(
        "--partial",
        action="store_true",
        help="with --apply: write what can be written and list the refused files (default: all or nothing)",
    )
    p.add_argument("--confirm", action="store_true", help="ask on the terminal before each action")
    p.add_argument("--max-iterations", type=int, help="stop after this many steps")
    p.add_argument(
        "--max-cost", type=float, dest="max_budget", metavar="USD", help="stop when the task has cost this"
    )
    p.add_argument("--max-tokens", type=int, help="stop when the task has used this many tokens")
    p.add_argument(
        "--timeout", type=float, dest="turn_timeout", metavar="SECONDS", help="stop the task after this long"
    )
    _settings_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sidehand", description="A self-hostable coding agent in a Docker sandbox."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one task headless and exit")
    run.add_argument("task", help="what the agent should do")
    run.add_argument("--workspace", "-w", type=Path, default=Path.cwd(), help="project folder (default: cwd)")
    run.add_argument(
        "--resume",
        metavar="SESSION",
        help="continue this session (its history, its sandbox's changes, its approvals) with the task",
    )
    _run_args(run)

    sessions = sub.add_parser("sessions", help="list and inspect sessions")
    ssub = sessions.add_subparsers(dest="action", required=True)
    ssub.add_parser("list", help="list sessions, newest first")
    resume = ssub.add_parser("resume", help="continue a session with a new instruction (as run --resume)")
    resume.add_argument("resume", metavar="session_id")
    resume.add_argument("task", help="what the agent should do next")
    _run_args(resume)
    checkpoints = ssub.add_parser("checkpoints", help="list a session's checkpoints (one per tool call)")
    checkpoints.add_argument("session_id")
    restore = ssub.add_parser(
        "restore", help="put a session's sandbox files back as they were at a checkpoint (undoable)"
    )
    restore.add_argument("session_id")
    restore.add_argument("checkpoint_id")
    restore.add_argument(
        "--conversation",
        action="store_true",
        help="also go back in the conversation: a new session forked at the checkpoint",
    )
    show = ssub.add_parser("show", help="print a session's transcript")
    show.add_argument("session_id")
    show.add_argument("--json", action="store_true", help="print the raw events (JSON Lines)")

    sandbox = sub.add_parser("sandbox", help="manage sandbox images and containers")
    xsub = sandbox.add_subparsers(dest="action", required=True)
    build = xsub.add_parser("build-base", help="build the base image with debootstrap (no registry needed)")
    build.add_argument("--image", default=None, help="tag to build (default: the configured sandbox image)")
    build.add_argument("--suite", default="bookworm", help="Debian suite (bookworm, trixie)")
    xsub.add_parser("reap", help="remove sandbox containers left by processes that are gone")

    # The servers parse their own options: `sidehand lsp --help`, `sidehand mcp --help`.
    for name, what in (("lsp", "language server (stdio; --tcp)"), ("mcp", "MCP server (stdio; --http)")):
        server = sub.add_parser(name, help=f"start the {what}", add_help=False)
        server.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The servers own their options (argparse's REMAINDER would not pass leading --flags through);
    # `sidehand mcp -- --http` is `sidehand mcp --http` (the form MCP clients' configs often use).
    if argv and argv[0] in ("lsp", "mcp"):
        options = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        if argv[0] == "lsp":
            from agent_lsp.cli import main as lsp_main

            return lsp_main(options)
        from agent_mcp.cli import main as mcp_main

        return mcp_main(options)
    args = build_parser().parse_args(argv)
    import asyncio

    from core.errors import SidehandError
    from core.logging_config import configure_logging
    from core.redaction import RedactSecrets
    from sidehand.commands import run_task, sandbox_command, sessions_command

    redact = RedactSecrets()
    configure_logging(verbose=args.verbose, redact=redact)
    try:
        if args.command == "run" or (args.command == "sessions" and args.action == "resume"):
            return asyncio.run(run_task(args, redact))
        if args.command == "sessions":
            code = sessions_command(args)
            sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
            return code
        if args.command == "sandbox":
            return sandbox_command(args)
    except SidehandError as exc:
        print(f"sidehand: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_went_away()
    return 2


def _reader_went_away() -> int:
    """`sidehand sessions list | head`: the reader closed the pipe. Nothing to say about it; stdout
    is pointed at /dev/null so the interpreter's final flush does not complain either."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe

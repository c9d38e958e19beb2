"""The `sidehand` command: run a task headless, manage sessions and sandboxes, start the servers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.errors import SidehandError
from core.events import ApprovalRequested, Event
from core.protocols import Sandbox
from core.session import Decision, Session
from sidehand.progress import ProgressPrinter

log = logging.getLogger("sidehand")

EXIT_CODES = {"end_turn": 0, "cancelled": 130, "max_iterations": 3, "budget": 4, "error": 1, "stuck": 5}


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="litellm model name (default: SIDEHAND_MODEL / config file)")
    p.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    p.add_argument("--image", dest="sandbox_image", help="sandbox image (any image with a POSIX shell)")
    p.add_argument("--network", action="store_true", default=None, help="allow network access in the sandbox")
    p.add_argument("--config", type=Path, help="config file (default: ~/.config/sidehand/config.toml)")


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n, None) for n in ("model", "api_base", "sandbox_image", "network", *names)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sidehand", description="A self-hostable coding agent in a Docker sandbox."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one task headless and exit")
    run.add_argument("task", help="what the agent should do")
    run.add_argument("--workspace", "-w", type=Path, default=Path.cwd(), help="project folder (default: cwd)")
    run.add_argument("--apply", action="store_true", help="write the agent's changes to the workspace")
    run.add_argument("--confirm", action="store_true", help="ask on the terminal before each action")
    run.add_argument("--max-iterations", type=int, help="stop after this many steps")
    _settings_args(run)

    sessions = sub.add_parser("sessions", help="list and inspect sessions")
    ssub = sessions.add_subparsers(dest="action", required=True)
    ssub.add_parser("list", help="list sessions, newest first")
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
    # The servers own their options (argparse's REMAINDER would not pass leading --flags through).
    if argv and argv[0] == "lsp":
        from agent_lsp.cli import main as lsp_main

        return lsp_main(argv[1:])
    if argv and argv[0] == "mcp":
        from agent_mcp.cli import main as mcp_main

        return mcp_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "run":
            return asyncio.run(run_task(args))
        if args.command == "sessions":
            return sessions_command(args)
        if args.command == "sandbox":
            return sandbox_command(args)
    except SidehandError as exc:
        print(f"sidehand: {exc}", file=sys.stderr)
        return 2
    return 2


async def run_task(args: argparse.Namespace) -> int:
    from core.llm import prefetch_litellm
    from sidehand.wiring import build_manager

    overrides = _overrides(args, "max_iterations")
    overrides["approval_mode"] = "always" if args.confirm else "never"
    settings = load_settings(overrides, config_file=args.config)
    settings.require_model()
    printer = ProgressPrinter(verbose=args.verbose)
    prefetch_litellm()  # ~4 s of imports, overlapped with the sandbox start
    manager = build_manager(settings)
    try:
        session = await manager.create(args.workspace)
        printer.status(f"session {session.id}: starting the sandbox ({settings.sandbox_image})")
        session.subscribe(printer)
        if args.confirm:
            session.subscribe(_terminal_approver(session))
        await session.sandbox()
        printer.status(
            f"working with {settings.model} (loading the model client, then waiting for the model)"
        )
        turn = asyncio.ensure_future(session.prompt(args.task))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(session.cancel()))
        end = await turn
        loop.remove_signal_handler(signal.SIGINT)
        changes = await session.changes()
        if changes.files and args.apply:
            written = await session.apply_changes()
            printer.status(f"applied {len(written)} change(s) to {session.workspace}: {', '.join(written)}")
        elif changes.files:
            printer.status(
                f"changes not applied (use --apply); patch saved: {session.directory / 'changes.patch'}"
            )
        printer.status(f"session log: {session.directory / 'events.jsonl'}")
        if end.message:
            print(end.message)
        return EXIT_CODES[end.stop_reason]
    finally:
        await manager.aclose()


def _terminal_approver(session: Session) -> Any:
    asking: set[asyncio.Task[None]] = set()

    def on_event(event: Event) -> None:
        if isinstance(event, ApprovalRequested):
            task = asyncio.ensure_future(_ask(session, event))
            asking.add(task)
            task.add_done_callback(asking.discard)

    return on_event


async def _ask(session: Session, event: ApprovalRequested) -> None:
    sys.stderr.write(f"Allow {event.tool} {event.arguments}? [y]es once / [a]lways this session / [n]o: ")
    sys.stderr.flush()
    answer = (await asyncio.to_thread(sys.stdin.readline)).strip().lower()
    decision = Decision(
        allow=answer in ("y", "yes", "a", "always"), scope="session" if answer.startswith("a") else "once"
    )
    with contextlib.suppress(SidehandError):
        session.decide(event.call_id, decision)


def sessions_command(args: argparse.Namespace) -> int:
    from core.eventlog import read_events
    from core.sessions import SessionManager

    settings = load_settings()
    manager = SessionManager(settings, sandbox_factory=_no_sandbox)
    if args.action == "list":
        for info in manager.list():
            print(f"{info.id}  {info.status:<10} {info.model or '-':<24} {info.workspace}  {info.title}")
        return 0
    directory = settings.sessions_dir / args.session_id
    if not directory.is_dir():
        raise SidehandError(f"unknown session {args.session_id!r} (sessions live in {settings.sessions_dir})")
    for event in read_events(directory):
        if args.json:
            print(event.model_dump_json())
        else:
            print(json.dumps({"seq": event.seq, "kind": event.kind, **_brief(event)}, ensure_ascii=False))
    return 0


def _brief(event: Event) -> dict[str, Any]:
    data = event.model_dump(exclude={"seq", "id", "timestamp", "kind", "source"}, exclude_defaults=True)
    return {k: (v[:500] + "…" if isinstance(v, str) and len(v) > 500 else v) for k, v in data.items()}


async def _no_sandbox(workspace: Path, session_id: str, session_dir: Path) -> Sandbox:
    raise SidehandError("this command does not start sandboxes")


def sandbox_command(args: argparse.Namespace) -> int:
    import docker

    from sandbox.image import build_base_image

    client = docker.from_env()
    if args.action == "build-base":
        tag = args.image or load_settings().sandbox_image
        print(build_base_image(client, tag=tag, suite=args.suite))
        return 0
    from sandbox.container import reap_orphans

    for name in reap_orphans(client):
        print(f"removed {name}")
    return 0

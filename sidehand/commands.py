"""What `sidehand run`, `sidehand sessions` and `sidehand sandbox` do (`sidehand.cli` parses and
dispatches; it stays light so that `sidehand lsp` and `sidehand mcp` start without these imports)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.errors import SidehandError
from core.events import ApprovalRequested, Event
from core.host_watch import HostWatch
from core.messages import decode_arguments
from core.paths import escape_path
from core.policy import ApprovalDecision, approval_options
from core.protocols import Sandbox
from core.redaction import RedactSecrets
from core.session import Session
from core.sessions import SessionManager
from sidehand.progress import ProgressPrinter

EXIT_CODES = {
    "end_turn": 0,
    "cancelled": 130,
    "max_iterations": 3,
    "budget": 4,
    "max_tokens": 6,
    "timeout": 124,  # timeout(1)'s status
    "error": 1,
    "stuck": 5,
    "interrupted": 143,  # SIGTERM's conventional status
    "empty_reply": 7,  # the model replied with nothing, twice in a row
}


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n, None) for n in ("model", "api_base", "sandbox_image", "network", *names)}


async def run_task(args: argparse.Namespace, redact: RedactSecrets) -> int:
    from sidehand.wiring import build_manager, prefetch

    overrides = _overrides(args, "max_iterations", "max_budget", "max_tokens", "turn_timeout")
    overrides["approval_mode"] = "always" if args.confirm else "never"
    settings = load_settings(overrides, config_file=args.config)
    redact.add(settings.secrets())
    settings.require_model()
    printer = ProgressPrinter(verbose=args.verbose)
    prefetch()  # seconds of imports, overlapped with the sandbox start
    manager = build_manager(settings)
    try:
        await manager.recover()  # what a killed run left behind: its sandboxes, its open sessions
        if args.resume:
            session = await manager.load(args.resume)
            printer.status(f"resuming session {session.id} in {session.workspace}")
        else:
            session = await manager.create(args.workspace)
        printer.status(f"session {session.id}: starting the sandbox ({settings.sandbox_image})")
        session.subscribe(printer)
        if args.confirm:
            session.subscribe(_terminal_approver(session))
        await session.sandbox()
        printer.status(
            f"working with {settings.model} (loading the model client, then waiting for the model)"
        )
        usage_before = session.state.usage
        turn = asyncio.ensure_future(session.prompt(args.task))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(session.cancel()))
        loop.add_signal_handler(
            signal.SIGTERM,
            lambda: asyncio.ensure_future(session.cancel(interrupted="stopped by SIGTERM")),
        )
        end = await turn
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        changes = await session.changes()
        if end.stop_reason == "interrupted":
            printer.status("interrupted: nothing applied; the session can be resumed")
        elif changes.files and args.apply:
            report = await session.apply_changes(partial=args.partial)
            shown = ", ".join(escape_path(p) for p in report.written)
            printer.status(f"applied {len(report.written)} change(s) to {session.workspace}: {shown}")
            for path, why in report.refused.items():
                printer.status(f"not applied: {escape_path(path)}: {why}")
        elif changes.files:
            printer.status(
                f"changes not applied (use --apply); patch saved: {session.store.patch_path(session.id)}"
            )
        printer.status(f"session log: {session.store.log_path(session.id)}")
        printer.usage(session.state.usage, usage_before)
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


KEYS = {"allow_once": "y", "allow_session": "s", "allow_always": "a", "reject": "n"}


async def _ask(session: Session, event: ApprovalRequested) -> None:
    """The same answers as in the editor: once, this session, always these commands (or edits under
    this folder), or no. Anything else (or end of input) is no."""
    options = approval_options(event.tool, decode_arguments(event.arguments), event.risk)
    choices = " / ".join(f"[{KEYS[o.id]}] {o.label}" for o in options)
    sys.stderr.write(f"Allow {event.tool} {event.arguments}?\n  {choices}: ")
    sys.stderr.flush()
    answer = (await asyncio.to_thread(sys.stdin.readline)).strip().lower()
    if not sys.stdin.isatty():  # a terminal echoed the answer and its newline; a pipe did not
        sys.stderr.write(f"{answer}\n")
    chosen = next((o for o in options if answer in (KEYS[o.id], o.id)), None)
    if chosen is None or not chosen.decision.allow:
        decision = ApprovalDecision(allow=False, reason="rejected on the terminal")
    else:
        decision = chosen.decision
    with contextlib.suppress(SidehandError):
        session.decide(event.call_id, decision)


def sessions_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    manager = SessionManager(settings, sandbox_factory=_NoSandboxes())
    if args.action == "list":
        for info in manager.list():
            print(f"{info.id}  {info.status:<10} {info.model or '-':<24} {info.workspace}  {info.title}")
        return 0
    if not manager.store.exists(args.session_id):
        raise SidehandError(f"unknown session {args.session_id!r} (sessions live in {settings.sessions_dir})")
    if args.action in ("checkpoints", "restore"):
        return asyncio.run(_checkpoints(manager, args))
    for event in manager.store.events(args.session_id):
        if args.json:
            print(event.model_dump_json())
        else:
            print(json.dumps({"seq": event.seq, "kind": event.kind, **_brief(event)}, ensure_ascii=False))
    return 0


async def _checkpoints(manager: SessionManager, args: argparse.Namespace) -> int:
    """List or restore checkpoints of a session that is not open elsewhere (no sandbox is started:
    a restore moves the log, and the session's next sandbox holds the restored files)."""
    try:
        session = await manager.load(args.session_id, start_sandbox=False)
        if args.action == "checkpoints":
            for checkpoint in session.state.checkpoints:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(checkpoint.timestamp))
                print(f"{checkpoint.checkpoint_id:>4}  {when}  {checkpoint.label}")
            return 0
        if args.conversation:
            target = session.find_checkpoint(args.checkpoint_id)
            forked = await manager.fork(session.id, target.seq, start_sandbox=False)
            print(f"new session {forked.id}: the conversation and files of checkpoint {args.checkpoint_id}")
            return 0
        report = await session.restore_checkpoint(args.checkpoint_id)
        changed = ", ".join(escape_path(p) for p in report.paths) or "no file"
        print(f"restored checkpoint {args.checkpoint_id} ({changed} changed)")
        print(f"to undo: sidehand sessions restore {session.id} {report.undo}")
        return 0
    finally:
        await manager.aclose()


def _brief(event: Event) -> dict[str, Any]:
    data = event.model_dump(exclude={"seq", "id", "timestamp", "kind", "source"}, exclude_defaults=True)
    return {k: (v[:500] + "…" if isinstance(v, str) and len(v) > 500 else v) for k, v in data.items()}


class _NoSandboxes:
    """For commands that read sessions and start no sandbox."""

    async def __call__(self, workspace: Path, session_id: str) -> Sandbox:
        raise SidehandError("this command does not start sandboxes")

    async def reap(self) -> int:
        return 0

    async def prewarm(self, workspace: Path, watch: HostWatch) -> None:
        pass

    async def aclose(self) -> None:
        pass


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

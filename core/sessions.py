"""The session manager: creates, lists, loads, forks and closes sessions. Many sessions run at once
on one event loop; each has its own log, sandbox and model client."""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config import Settings, validate_settings
from core.errors import SessionBusyError, SessionError, UnknownSessionError
from core.eventlog import EventLog, EventLogError
from core.events import ApplyFinished, StateChanged, ToolResultEvent, TurnEnded
from core.mirror import HostWatches
from core.owner import Owner
from core.protocols import LLM, ExternalToolsFactory, SandboxFactory
from core.redaction import Redactor
from core.session import Session
from core.state import State, replay
from core.store import SessionStore
from core.tools import Tool, default_tools

log = logging.getLogger(__name__)

LLMFactory = Callable[[Settings], LLM]
SessionKind = Literal["agent", "sandbox"]
INTERRUPTED = (
    "Interrupted: Sidehand stopped before this action finished. It was not re-run; check the "
    "sandbox state before trying it again."
)
FORKED_BEFORE_RESULT = "Not run: this session was forked from another before this action's result."
FORKED_DURING_APPLY = (
    "This session was forked while its parent was applying changes: in this fork that apply did "
    "not happen (the host may hold its files: applying them here reports them as conflicts)."
)


def default_llm_factory(settings: Settings) -> LLM:
    from core.llm import LiteLLMClient  # litellm itself is imported lazily inside

    profile = settings.profile()
    sampling = {"top_p": profile.top_p, "seed": profile.seed, "max_tokens": profile.max_output_tokens}
    prices = None
    if profile.input_price is not None or profile.output_price is not None:
        prices = (profile.input_price or 0.0, profile.output_price or 0.0)
    return LiteLLMClient(
        settings.require_model(),
        api_base=settings.api_base,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_retries,
        temperature=profile.temperature,
        extra={k: v for k, v in sampling.items() if v is not None},
        prices=prices,
    )


@dataclass(frozen=True)
class SessionInfo:
    id: str
    workspace: str
    title: str
    created: float
    updated: float
    model: str | None
    status: str
    live: bool
    parent: str | None = None
    kind: SessionKind = "agent"


def new_session_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class SessionManager:
    def __init__(
        self,
        settings: Settings,
        sandbox_factory: SandboxFactory,
        llm_factory: LLMFactory = default_llm_factory,
        tools_factory: Callable[[], dict[str, Tool]] = default_tools,
        external_tools: ExternalToolsFactory | None = None,
    ) -> None:
        self.settings = settings
        self.sandbox_factory = sandbox_factory
        self.llm_factory = llm_factory
        self.tools_factory = tools_factory
        self.external_tools = external_tools  # the MCP servers' tools (sidehand.mcp_client)
        self.store = SessionStore(settings.sessions_dir)
        self.sessions: dict[str, Session] = {}
        # The live mirror's watches, one per workspace folder (none when it is turned off).
        self.host_watches = HostWatches(settings) if settings.sandbox_mirror else None
        self._prewarmed: set[Path] = set()

    def settings_for(self, overrides: dict[str, Any]) -> Settings:
        values = self.settings.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validate_settings(values, where="session options")

    async def create(
        self, workspace: Path | str, *, kind: SessionKind = "agent", **overrides: Any
    ) -> Session:
        """A new session over `workspace`. An "agent" session runs turns and needs a model; a
        "sandbox" session is only its sandbox (for an MCP client that works in it itself)."""
        settings = self.settings_for(overrides)
        if kind == "agent":
            settings.require_model()
        path = Path(workspace).expanduser()
        if not path.is_dir():
            raise SessionError(f"workspace {path} does not exist or is not a folder")
        path = path.resolve()
        session_id = new_session_id()
        now = time.time()
        meta = {
            "id": session_id,
            "workspace": str(path),
            "created": now,
            "updated": now,
            "model": settings.model,
            "title": "" if kind == "agent" else "sandbox",
            "status": "idle",
            "parent": overrides.get("parent"),
            "kind": kind,
            "owner": Owner.current().as_dict(),  # this process has it open (see recover_orphans)
        }
        # A folder, two files and an fsync: disk work kept off the loop, which serves other sessions.
        event_log = await asyncio.to_thread(self.store.create, session_id, meta, Redactor(settings.secrets()))
        session = self._open(session_id, path, settings, event_log, State())
        session.start_sandbox()
        return session

    def _open(
        self, session_id: str, workspace: Path, settings: Settings, event_log: EventLog, state: State
    ) -> Session:
        session = Session(
            session_id=session_id,
            workspace=workspace,
            settings=settings,
            event_log=event_log,
            store=self.store,
            state=state,
            sandbox_factory=self.sandbox_factory,
            llm_factory=self.llm_factory,
            tools=self.tools_factory(),
            host_watches=self.host_watches,
            external_tools=self.external_tools,
        )
        self.sessions[session_id] = session
        return session

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise UnknownSessionError(f"unknown session {session_id!r}: list sessions, or load it first")
        return session

    def list(self) -> list[SessionInfo]:
        infos = []
        for meta in self.store.list_meta():
            live = self.sessions.get(meta["id"])
            infos.append(
                SessionInfo(
                    id=meta["id"],
                    workspace=meta["workspace"],
                    title=(live.state.title if live else "") or meta.get("title", ""),
                    created=meta["created"],
                    updated=meta.get("updated", meta["created"]),
                    model=meta.get("model"),
                    status=live.state.status if live and not live.closed else meta.get("status", "idle"),
                    live=bool(live and not live.closed),
                    parent=meta.get("parent"),
                    kind=meta.get("kind", "agent"),
                )
            )
        return sorted(infos, key=lambda i: i.updated, reverse=True)

    async def load(self, session_id: str, *, start_sandbox: bool = True, **overrides: Any) -> Session:
        """Open a session from its log. Actions that had no result when the process stopped are
        reported as interrupted (never re-run), an open turn ends as interrupted, and an apply the
        process did not finish is completed or rolled back."""
        if (live := self.sessions.get(session_id)) is not None and not live.closed:
            return live
        if not self.store.exists(session_id):
            raise UnknownSessionError(f"unknown session {session_id!r}: no such session in {self.store.root}")
        session = await asyncio.to_thread(self._load, session_id, overrides)
        await session.sync()
        if start_sandbox:
            session.start_sandbox()
        return session

    def _load(self, session_id: str, overrides: dict[str, Any]) -> Session:
        """Open the log, settle what it left open, recover an unfinished apply (blocking)."""
        meta = self.store.read_meta(session_id)
        owner = Owner.from_dict(meta.get("owner") or {})
        if owner is not None and owner != Owner.current() and owner.alive():
            raise SessionBusyError(
                f"session {session_id} is open in another Sidehand process (pid {owner.pid} on "
                f"{owner.host}): close it there first (two processes must not write one log)"
            )
        settings = self.settings_for({"model": meta.get("model"), **overrides})
        event_log, events = self.store.open(session_id, Redactor(settings.secrets()))
        state = replay(events)
        session = self._open(session_id, Path(meta["workspace"]), settings, event_log, state)
        _settle(session, INTERRUPTED, "the previous process stopped during this turn")
        session.files.recover()
        self.store.update_meta(session_id, owner=Owner.current().as_dict(), status=state.status)
        return session

    async def fork(
        self, session_id: str, upto_seq: int | None = None, *, start_sandbox: bool = True
    ) -> Session:
        """A new session with this one's history up to `upto_seq` (default: all of it)."""
        source = self.sessions.get(session_id) or await self.load(session_id, start_sandbox=start_sandbox)
        if source.busy:
            raise SessionBusyError(f"session {session_id} is running a turn: fork it when the turn ends")
        upto = source.state.last_seq if upto_seq is None else upto_seq
        new_id = new_session_id()
        now = time.time()
        meta = {
            **self.store.read_meta(session_id),
            "id": new_id,
            "created": now,
            "updated": now,
            "parent": session_id,
            "owner": Owner.current().as_dict(),
        }
        source.log.sync()
        event_log = self.store.fork(session_id, new_id, upto, meta, Redactor(source.settings.secrets()))
        state = replay(self.store.events(new_id))
        session = self._open(new_id, source.workspace, source.settings, event_log, state)
        # The model must see a valid history: an action the fork cut off gets a result.
        _settle(session, FORKED_BEFORE_RESULT, "this session was forked during the turn")
        if (started := state.workspace.open_apply) is not None:
            session.emit(ApplyFinished(apply_id=started.apply_id, message=FORKED_DURING_APPLY))
        await session.sync()
        if start_sandbox:
            session.start_sandbox()
        return session

    async def close(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            raise UnknownSessionError(f"unknown session {session_id!r}")
        await self._close(session)

    async def _close(self, session: Session) -> None:
        await session.close()
        try:
            self.store.update_meta(
                session.id, title=session.state.title or None, status=session.state.status, owner=None
            )
        except (EventLogError, OSError):
            log.warning("session %s: cannot update its metadata", session.id, exc_info=True)

    async def recover(self) -> builtins.list[str]:
        """What a process that died (SIGKILL, a crash) left behind: its sandboxes are removed, and
        the sessions it had open are settled (an open turn ends interrupted, an unfinished apply is
        completed or rolled back) as of their last step boundary. The fronts call this as they
        start. Returns the sessions settled."""
        reaped = await self.sandbox_factory.reap()
        if reaped:
            log.info("removed %d sandbox(es) of processes that are gone", reaped)
        settled = []
        for meta in await asyncio.to_thread(self.store.list_meta):
            owner = Owner.from_dict(meta.get("owner") or {})
            if owner is None or owner.alive() or meta["id"] in self.sessions:
                continue
            try:
                session = await self.load(meta["id"], start_sandbox=False)
                await self.close(session.id)
            except Exception:
                log.warning("session %s: could not settle it", meta["id"], exc_info=True)
                continue
            settled.append(meta["id"])
        if settled:
            log.warning(
                "settled %d session(s) a stopped process had open: %s", len(settled), ", ".join(settled)
            )
        return settled

    async def aclose(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(self._close(s) for s in sessions), return_exceptions=True)
        try:
            await self.sandbox_factory.aclose()
        except Exception:
            log.warning("could not remove the ready sandboxes", exc_info=True)
        if self.host_watches is not None:
            await self.host_watches.aclose()

    async def prewarm(self, workspace: Path) -> None:
        """Have sandboxes of `workspace` ready before sessions ask (the servers call this for the
        folders they serve). Ready sandboxes follow the host's changes: without the live mirror
        there are none."""
        if self.host_watches is None or not self.settings.sandbox_pool:
            return
        root = workspace.resolve()
        if root in self._prewarmed or not root.is_dir():
            return
        self._prewarmed.add(root)
        try:
            watch = await self.host_watches.acquire(root)
            await self.sandbox_factory.prewarm(root, watch)
        except Exception:
            log.warning("could not prepare sandboxes for %s", root, exc_info=True)


def _settle(session: Session, result: str, turn_message: str) -> None:
    """Close what the log left open: actions without a result get `result` (never re-run), and an
    open turn ends as interrupted."""
    for action in list(session.state.pending_calls.values()):
        session.emit(ToolResultEvent(call_id=action.call_id, tool=action.tool, output=result, error=True))
    if session.state.turn_open:
        session.emit(TurnEnded(stop_reason="interrupted", message=turn_message))
        session.emit(StateChanged(state="interrupted", reason=turn_message))


# How a front gets its manager once the settings are known: `sidehand.wiring.build_manager` wires
# the Docker sandbox and litellm; tests pass one that builds fakes.
ManagerFactory = Callable[[Settings], SessionManager]

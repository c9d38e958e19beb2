"""A safe sandbox for other agents: a Docker sandbox mirroring a workspace, with Sidehand's own
shell and editor tools (core.tools) but no Sidehand model. Each is a "sandbox" session of the
core's: what the client changes is recorded in its log after every tool call, so its change set,
its journaled apply and its resources (events, diff) work as a task's do. Nothing reaches the
workspace until the client applies the sandbox's changes."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent_mcp.models import (
    ApplyResult,
    CommandOutput,
    DiffResult,
    EditorOutput,
    SandboxInfo,
    SearchMatch,
    SearchResult,
    file_briefs,
)
from core.errors import SidehandError
from core.output import OutputBudget
from core.paths import escape_path, unescape_path
from core.protocols import WORKDIR
from core.session import Session
from core.sessions import SessionManager
from core.tools import ToolContext
from core.tools.bash import BashParams, BashTool
from core.tools.editor import EditorParams, EditorTool

log = logging.getLogger(__name__)

SEARCH_LINE_CHARS = 300
_GREP_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<text>.*)$")


class SandboxToolError(SidehandError):
    """A sandbox tool call does not fit: unknown sandbox, too many open, bad path, ..."""


def sandbox_path(path: str) -> str:
    """An absolute POSIX path inside the sandbox (relative paths are under the workspace copy)."""
    pure = PurePosixPath(path.strip() or ".")
    return str(pure if pure.is_absolute() else PurePosixPath(WORKDIR) / pure)


@dataclass
class OpenSandbox:
    id: str
    session: Session
    outputs: OutputBudget
    edit_history: dict[str, list[bytes | None]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one command at a time in its shell


class SandboxRegistry:
    def __init__(self, manager: SessionManager, *, max_open: int = 8) -> None:
        self.manager = manager
        self.settings = manager.settings
        self.max_open = max_open
        self.open: dict[str, OpenSandbox] = {}
        self._bash = BashTool()
        self._editor = EditorTool()

    async def create(self, workspace: Path) -> SandboxInfo:
        if len(self.open) >= self.max_open:
            raise SandboxToolError(
                f"{len(self.open)} sandboxes are open (the limit is {self.max_open}): close one with sandbox_close"
            )
        session = await self.manager.create(workspace, kind="sandbox")
        try:
            await session.sandbox()
        except BaseException:
            await self.manager.close(session.id)
            raise
        outputs = OutputBudget(
            session.store.outputs_dir(session.id),
            self.settings.max_saved_output,
            self.settings.max_session_outputs,
        )
        self.open[session.id] = OpenSandbox(session.id, session, outputs)
        return SandboxInfo(sandbox_id=session.id, workspace=str(session.workspace), workdir=WORKDIR)

    def get(self, sandbox_id: str) -> OpenSandbox:
        box = self.open.get(sandbox_id)
        if box is None:
            known = ", ".join(self.open) or "none"
            raise SandboxToolError(
                f"unknown sandbox {sandbox_id!r}: open one with sandbox_open (open: {known})"
            )
        return box

    async def _context(self, box: OpenSandbox, command_timeout: float | None = None) -> ToolContext:
        # An MCP client's call waits for its command (no early return): `timeout` kills it.
        return ToolContext(
            sandbox=await box.session.sandbox(),
            outputs=box.outputs,
            call_id=f"mcp-{secrets.token_hex(6)}",
            command_timeout=command_timeout or self.settings.command_timeout,
            edit_history=box.edit_history,
            quiet_timeout=None,
        )

    async def run(self, sandbox_id: str, command: str, timeout: float | None) -> CommandOutput:
        box = self.get(sandbox_id)
        async with box.lock:
            params = BashParams(command=command)
            obs = await self._bash.execute(params, await self._context(box, timeout))
            await box.session.after_tool(f"bash: {self._bash.title(params)}")
        note = box.session.take_sandbox_note()  # it was stopped while idle and started again
        return CommandOutput(
            output=f"{note}\n{obs.output}" if note else obs.output,
            exit_code=obs.exit_code,
            timed_out=obs.timed_out,
            truncated=obs.truncated,
        )

    async def editor(self, sandbox_id: str, params: EditorParams) -> EditorOutput:
        box = self.get(sandbox_id)
        async with box.lock:
            obs = await self._editor.execute(params, await self._context(box))
            if params.command != "view":
                await box.session.after_tool(f"editor: {self._editor.title(params)}")
        if obs.error:
            raise SandboxToolError(obs.output)
        return EditorOutput(path=params.path, output=obs.output, diff=obs.diff)

    async def write(self, sandbox_id: str, path: str, content: str) -> EditorOutput:
        """Create or overwrite a file (the editor's `create` refuses to overwrite; agents want both)."""
        box = self.get(sandbox_id)
        target = sandbox_path(path)
        sandbox = await box.session.sandbox()
        async with box.lock:
            kind = await sandbox.path_kind(target)
            if kind == "dir":
                raise SandboxToolError(f"{target} is a folder: give a file path")
            if kind == "file":
                box.edit_history.setdefault(target, []).append(await sandbox.read_file(target))
            else:
                box.edit_history.setdefault(target, []).append(b"")
            await sandbox.write_file(target, content.encode())
            await box.session.after_tool(f"write: {target}")
        verb = "overwrote" if kind == "file" else "created"
        return EditorOutput(path=target, output=f"{verb} {target} ({len(content.encode())} bytes)")

    async def search(
        self, sandbox_id: str, pattern: str, path: str, glob: str | None, ignore_case: bool, max_results: int
    ) -> SearchResult:
        """grep -rnE in the sandbox (hidden folders such as .git left out)."""
        box = self.get(sandbox_id)
        flags = "-rnIE" + ("i" if ignore_case else "")
        include = f" --include={shlex.quote(glob)}" if glob else ""
        command = (
            f"grep {flags} --exclude-dir='.*'{include} -e {shlex.quote(pattern)} -- {shlex.quote(sandbox_path(path))}"
            f" 2>/dev/null | head -n {max_results + 1}"
        )
        async with box.lock:
            sandbox = await box.session.sandbox()
            result = await sandbox.run(command, timeout=min(60.0, self.settings.command_timeout))
        matches = []
        for raw in result.output.splitlines():
            if (m := _GREP_LINE.match(raw)) is None:
                continue
            matches.append(
                SearchMatch(path=m["path"], line=int(m["line"]), text=m["text"][:SEARCH_LINE_CHARS])
            )
        return SearchResult(matches=matches[:max_results], truncated=len(matches) > max_results)

    async def diff(self, sandbox_id: str) -> DiffResult:
        changes = await self.get(sandbox_id).session.changes()
        return DiffResult(files=file_briefs(changes), patch=changes.patch())

    async def apply(
        self, sandbox_id: str, paths: list[str] | None, force: bool, partial: bool
    ) -> ApplyResult:
        session = self.get(sandbox_id).session
        wanted = None if paths is None else [unescape_path(p) for p in paths]
        report = await session.apply_changes(paths=wanted, force=force, partial=partial)
        remaining = await session.changes()
        return ApplyResult(
            id=sandbox_id,
            written=[escape_path(p) for p in report.written],
            refused={escape_path(p): why for p, why in report.refused.items()},
            remaining=[c.shown_path for c in remaining.files],
        )

    async def close(self, sandbox_id: str) -> None:
        box = self.open.pop(sandbox_id, None)
        if box is None:
            raise SandboxToolError(f"unknown sandbox {sandbox_id!r} (already closed?)")
        await self.manager.close(sandbox_id)
        # Its full outputs served its client's calls; they have no use once it is closed.
        await asyncio.to_thread(shutil.rmtree, box.session.store.outputs_dir(sandbox_id), True)

    async def aclose(self) -> None:
        boxes, self.open = list(self.open.values()), {}
        results = await asyncio.gather(*(self.manager.close(b.id) for b in boxes), return_exceptions=True)
        for box, result in zip(boxes, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("sandbox %s did not close cleanly: %s", box.id, result)

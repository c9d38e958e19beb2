"""A workspace with a session store and managers whose sandboxes are in-memory copies of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.config import Settings
from core.messages import LLMReply
from core.sessions import SessionManager
from core.testing.fake_manager import seed_files
from core.testing.fake_sandbox import FakeSandboxFactory, InMemorySandbox
from core.testing.scripted_llm import ScriptedLLM, call, reply


class World:
    """A workspace, a store, and managers that each start fresh sandboxes copied from the host (as
    the Docker factory does), one scripted model shared by all."""

    def __init__(self, tmp_path: Path) -> None:
        self.workspace = tmp_path / "ws"
        self.workspace.mkdir()
        self.sessions_dir = tmp_path / "sessions"
        self.sandboxes: list[InMemorySandbox] = []
        self.llm = ScriptedLLM([])

    def script(self, replies: Sequence[LLMReply]) -> None:
        self.llm.replies = list(replies)

    async def _sandbox(self, workspace: Path, session_id: str) -> InMemorySandbox:
        box = InMemorySandbox(seed_files(workspace))
        self.sandboxes.append(box)
        return box

    def manager(self, **settings: object) -> SessionManager:
        s = Settings.model_validate(
            {"model": "scripted", "sessions_dir": self.sessions_dir, "approval_mode": "never", **settings}
        )
        return SessionManager(s, FakeSandboxFactory(self._sandbox), lambda _: self.llm)


def create(path: str, text: str) -> LLMReply:
    return reply(None, call("editor", {"command": "create", "path": f"/workspace/{path}", "file_text": text}))

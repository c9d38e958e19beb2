"""`sidehand/checkpoints/*`: the checkpoints a session took (one after every tool call), and
restoring one: the sandbox's files go back (the state before and the restore are checkpoints too,
so a restore can be undone); with `conversation`, a new session forked at the checkpoint."""

from __future__ import annotations

from typing import Any

from agent_lsp import protocol as p
from agent_lsp.errors import rpc_error
from agent_lsp.server import SidehandServer
from agent_lsp.sessions import SessionHub
from agent_lsp.updates import checkpoint_json
from core.errors import SidehandError
from core.paths import escape_path


def register(server: SidehandServer, hub: SessionHub) -> None:
    @server.feature(p.CHECKPOINTS_LIST)
    def checkpoints_list(ls: SidehandServer, params: Any) -> dict[str, Any]:
        session = ls.session(p.parse(p.SessionParams, params).session_id)
        return {"checkpoints": [checkpoint_json(c) for c in session.state.checkpoints]}

    @server.feature(p.CHECKPOINTS_RESTORE)
    async def checkpoints_restore(ls: SidehandServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.RestoreParams, params)
        session = ls.session(args.session_id)
        try:
            if args.conversation:
                target = session.find_checkpoint(args.checkpoint_id)
                forked = await ls.manager().fork(session.id, target.seq)
                hub.attach(forked)
                return {"sessionId": forked.id, "parent": session.id, "checkpointId": args.checkpoint_id}
            report = await session.restore_checkpoint(args.checkpoint_id)
        except SidehandError as exc:
            raise rpc_error(exc) from None
        return {
            "sessionId": session.id,
            "checkpointId": report.checkpoint.checkpoint_id,
            "undo": report.undo,
            "paths": [escape_path(path) for path in report.paths],
        }

"""initialize / initialized / shutdown: settings from the client, their problems shown, the
session machinery warmed up in the background, everything closed at shutdown."""

from __future__ import annotations

from lsprotocol import types

from agent_lsp.server import SidehandServer


def register(server: SidehandServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: SidehandServer, params: types.InitializeParams) -> None:
        ls.configure(params)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SidehandServer, params: types.InitializedParams) -> None:
        ls.load_settings()
        for problem in ls.settings_problems:
            ls.show(types.MessageType.Error, f"Sidehand settings: {problem}")
        if ls.warm_up is not None:
            ls.warm_up()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SidehandServer, params: None) -> None:
        await ls.aclose()

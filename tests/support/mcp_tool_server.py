"""A small MCP server (the `mcp` SDK's own MCPServer) for the tests of Sidehand's MCP client:

    python -m tests.support.mcp_tool_server [--pid-file F]                 # stdio
    python -m tests.support.mcp_tool_server --http [--require-header N=V]  # streamable HTTP
    python -m tests.support.mcp_tool_server --sse                          # the older SSE transport

Over HTTP it listens on 127.0.0.1 (a free port) and prints its URL on stdout; with
`--require-header` it answers 401 to a request without that header. `--crash` writes a message on
stderr and exits at once (a server that fails to start). Tools: `add`, `echo`, `fail` (an error
result), `where` (its working folder and the environment variable `PROBE`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("test-tools")

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool()
    def fail(message: str) -> str:
        """Fail with the message."""
        raise ToolError(message)

    @server.tool()
    def where() -> str:
        """The server's working folder and $PROBE."""
        return f"{os.getcwd()} PROBE={os.environ.get('PROBE', '')}"

    return server


class RequireHeader:
    """ASGI middleware: 401 unless the request carries `name: value`."""

    def __init__(self, app: Any, name: str, value: str) -> None:
        self.app, self.name, self.value = app, name.lower().encode(), value.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(self.name) != self.value:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


async def serve_http(server: MCPServer[Any], header: str | None, sse: bool) -> None:
    import uvicorn

    app: Any = server.sse_app() if sse else server.streamable_http_app()
    if header:
        name, _, value = header.partition("=")
        app = RequireHeader(app, name, value)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/{'sse' if sse else 'mcp'}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--sse", action="store_true")
    parser.add_argument("--require-header")
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--crash", action="store_true")
    args = parser.parse_args(argv)
    if args.crash:
        sys.stderr.write("test-tools: cannot open the database (by design)\n")
        return 3
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    server = build()
    if args.http or args.sse:
        asyncio.run(serve_http(server, args.require_header, args.sse))
    else:
        server.run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Bearer-token protection of the HTTP transport: every request needs `Authorization: Bearer
<token>`; anything else gets 401. The token is given (`--token`, SIDEHAND_MCP_TOKEN), or read from
the token file an earlier start wrote, or generated and written there (only the user can read it),
so a client's configuration keeps working across restarts (`--rotate-token` makes a new one)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "SIDEHAND_MCP_TOKEN"


def default_token_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "sidehand" / "mcp-token"


def write_token_file(path: Path, token: str) -> None:
    """Write the token with mode 0600 (created that way, never world-readable in between)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token_file(path: Path) -> str | None:
    """The token kept in `path` by an earlier start (None: no usable one). A file others can read
    is not trusted: anyone who could read it could have used it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc}") from exc
    if mode & 0o077:
        raise TokenFileError(
            f"the token file {path} can be read by other users (mode {mode & 0o777:o}): "
            "start with --rotate-token to write a new one with mode 0600"
        )
    return text or None


class TokenFileError(Exception):
    """The token file exists but cannot be used safely."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerTokenMiddleware:
    """ASGI middleware: HTTP requests without the right bearer token are answered 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        # RFC 7235: the scheme name is case-insensitive (`bearer`, `BEARER`), then spaces, then
        # the credentials, compared in constant time.
        scheme, _, credentials = given.strip().partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        reason = "missing bearer token" if not given else "wrong bearer token"
        body = json.dumps(
            {"error": "unauthorized", "error_description": f"{reason}: send Authorization: Bearer <token>"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="sidehand"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

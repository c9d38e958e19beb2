"""A scripted OpenAI-compatible chat-completions server for tests, demos and benchmarks.

It is reached over HTTP exactly like a real provider (through litellm, the openai SDK or curl), so
the code under test needs no patching. Replies come from `Script`s — plain data, loadable from a
JSON file — one script per requested `model` plus a default one, each with its own cursor.

    with ScriptedLLMServer(Script(turns=[Turn.call("bash", {"command": "ls"}), Turn.say("Done.")])) as srv:
        client = LiteLLMClient("openai/scripted", api_base=srv.base_url)

Command line (for demos): `python -m core.testing.scripted_server script.json [--port N]` prints the
base URL on stdout and serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)

SCRIPT_FINISHED = "Script finished."


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScriptedToolCall(_Data):
    """`arguments` as a dict is sent as JSON; as a string it is sent verbatim (malformed JSON too)."""

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


class ScriptedError(_Data):
    """An HTTP error reply. `body` defaults to an OpenAI-style error object."""

    status: int = Field(ge=400, le=599)
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        body = self.body or {
            "error": {
                "message": f"scripted error {self.status}",
                "type": "scripted_error",
                "code": self.status,
            }
        }
        return json.dumps(body).encode()


class Turn(_Data):
    """One reply: text and/or tool calls, or an error. `hold` keeps the reply back until the test
    calls `ScriptedLLMServer.release()`; `delay` waits that many seconds first; `chunks` is how many
    pieces streamed text is cut into (default: one per word); `chunk_delay` paces a streamed reply."""

    text: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    error: ScriptedError | None = None
    delay: float = Field(0.0, ge=0)
    hold: bool = False
    chunks: int | None = Field(None, ge=1)
    chunk_delay: float = Field(0.0, ge=0)
    finish_reason: str | None = None

    @model_validator(mode="after")
    def _error_is_alone(self) -> Turn:
        if self.error is not None and (self.text is not None or self.tool_calls):
            raise ValueError("a turn is either an error or a reply (text and/or tool calls), not both")
        return self

    @classmethod
    def say(cls, text: str, **options: Any) -> Turn:
        return cls(text=text, **options)

    @classmethod
    def call(cls, name: str, arguments: dict[str, Any] | str | None = None, **options: Any) -> Turn:
        return cls(tool_calls=(ScriptedToolCall(name=name, arguments=arguments or {}),), **options)

    @classmethod
    def fail(cls, status: int, body: dict[str, Any] | str | None = None, **options: Any) -> Turn:
        return cls(error=ScriptedError(status=status, body=body), **options)


class Script(_Data):
    """Turns played in order; after the last one every request gets `SCRIPT_FINISHED` as text,
    unless `repeat` plays the turns again from the start (for benchmarks)."""

    turns: tuple[Turn, ...] = ()
    repeat: bool = False
    # Answer every request that carries `tools` with this error, without playing a turn (as
    # llama.cpp's server does without --jinja: HTTP 500 "tools param requires --jinja flag").
    refuse_tools: ScriptedError | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_list(cls, data: Any) -> Any:
        return {"turns": data} if isinstance(data, list) else data


class ScriptSet(_Data):
    """Scripts keyed by the request's `model` field; requests for other models play `default`.
    A JSON file may hold a ScriptSet, a Script, or a bare list of turns."""

    default: Script = Script()
    models: dict[str, Script] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _accept_single_script(cls, data: Any) -> Any:
        if isinstance(data, list) or (isinstance(data, dict) and "turns" in data):
            return {"default": data}
        return data

    @classmethod
    def from_file(cls, path: Path) -> ScriptSet:
        return cls.model_validate_json(Path(path).read_bytes())


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None  # the parsed JSON body of a POST


def _split_words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]


def _split_even(text: str, pieces: int) -> list[str]:
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


class _Reply:
    """The wire forms of one scripted turn for one request."""

    def __init__(self, turn: Turn, model: str, prompt_bytes: int, serial: int) -> None:
        self.turn = turn
        self.model = model
        self.id = f"chatcmpl-scripted-{serial}"
        self.created = int(time.time())
        self.calls = [
            {"id": c.id or f"call_{serial}_{i}", "name": c.name, "arguments": c.arguments_text()}
            for i, c in enumerate(turn.tool_calls)
        ]
        completion_chars = len(turn.text or "") + sum(
            len(c["name"]) + len(c["arguments"]) for c in self.calls
        )
        prompt_tokens = max(1, prompt_bytes // 4)
        completion_tokens = max(1, completion_chars // 4)
        self.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        self.finish_reason = turn.finish_reason or ("tool_calls" if self.calls else "stop")

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.turn.text}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }

    def stream_events(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        """OpenAI's chunk sequence: role, text deltas, tool-call deltas, finish reason, usage."""
        yield self._chunk({"role": "assistant", "content": ""})
        text = self.turn.text
        if text:
            pieces = _split_even(text, self.turn.chunks) if self.turn.chunks else _split_words(text)
            for piece in pieces:
                yield self._chunk({"content": piece})
        for index, call in enumerate(self.calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            yield self._chunk({"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]})
            for piece in _split_even(call["arguments"], 3) if call["arguments"] else []:
                yield self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield self._chunk({}, finish_reason=self.finish_reason)
        if include_usage:
            yield {**self._chunk({}), "choices": [], "usage": self.usage}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


class _HTTPServer(ThreadingHTTPServer):
    """Counts accepted TCP connections and keeps the open ones, so they can be closed on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: ScriptedLLMServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.owner._connection_closed(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TCP connection serves many requests
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(ReceivedRequest("GET", self.path, dict(self.headers), None))
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            models = [{"id": m, "object": "model", "owned_by": "sidehand"} for m in owner.model_names()]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        owner._record(ReceivedRequest("POST", self.path, dict(self.headers), body))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "the body is not a JSON object", "type": "invalid"}})
            return
        model = str(body.get("model", ""))
        if body.get("tools") and (refusal := owner._tools_refusal(model)) is not None:
            self._send_bytes(refusal.status, refusal.body_bytes(), "application/json", refusal.headers)
            return
        turn, serial = owner._next_turn(model)
        if turn.hold:
            owner._hold()
        if turn.delay:
            time.sleep(turn.delay)
        try:
            if turn.error is not None:
                self._send_bytes(
                    turn.error.status, turn.error.body_bytes(), "application/json", turn.error.headers
                )
                return
            reply = _Reply(turn, model, len(raw), serial)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._send_stream(reply.stream_events(include_usage), turn.chunk_delay)
            else:
                self._send_json(200, reply.completion())
        except OSError:
            # The client gave up (timed out or closed); nothing more to tell it.
            self.close_connection = True

    def _send_json(self, status: int, obj: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), "application/json")

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: Iterator[dict[str, Any]], chunk_delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        frames = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        frames.append(b"data: [DONE]\n\n")
        if chunk_delay:
            for frame in frames:
                self.wfile.write(_http_chunk(frame))
                time.sleep(chunk_delay)
            self.wfile.write(b"0\r\n\r\n")
        else:
            # One write for the whole stream: the client still parses every SSE event separately.
            self.wfile.write(b"".join(_http_chunk(f) for f in frames) + b"0\r\n\r\n")


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class ScriptedLLMServer:
    """The server on 127.0.0.1 (ephemeral port by default), run on a background thread."""

    def __init__(self, scripts: Script | ScriptSet | None = None, *, port: int = 0) -> None:
        if isinstance(scripts, Script):
            scripts = ScriptSet(default=scripts)
        self._scripts: dict[str, Script] = dict((scripts or ScriptSet()).models)
        self._default = (scripts or ScriptSet()).default
        self._cursors: dict[str | None, int] = {}
        self._port = port
        self._state = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._open: set[socket.socket] = set()
        self._accepted = 0
        self._held = 0
        self._releases = 0
        self._serial = 0
        self._stopping = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        if self._httpd is None:
            self._httpd = _HTTPServer(("127.0.0.1", self._port), self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="scripted-llm",
                daemon=True,
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, let held replies go, close open connections. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with self._state:
            self._stopping = True
            self._state.notify_all()
            sockets = list(self._open)
        httpd.shutdown()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        try:
            self.wait_until(lambda: not self._open, timeout=5.0)
        except TimeoutError:
            logger.warning("scripted server: %d connection(s) still open at stop", len(self._open))
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the scripted server is not running: call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- what tests drive and inspect ------------------------------------------------------------

    def set_script(self, script: Script, model: str | None = None) -> None:
        """Replace the script for `model` (None: the default script) and rewind its cursor."""
        with self._state:
            if model is None:
                self._default = script
            else:
                self._scripts[model] = script
            self._cursors.pop(model, None)

    def model_names(self) -> list[str]:
        with self._state:
            return sorted(self._scripts) or ["scripted"]

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._state:
            return list(self._requests)

    @property
    def connections_accepted(self) -> int:
        with self._state:
            return self._accepted

    @property
    def open_connections(self) -> int:
        with self._state:
            return len(self._open)

    @property
    def held(self) -> int:
        """How many replies are being held right now."""
        with self._state:
            return self._held

    def release(self, count: int = 1) -> None:
        """Let `count` held replies go (a release before the hold starts lets the next one through)."""
        with self._state:
            self._releases += count
            self._state.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait for the server's state to satisfy `predicate` (e.g. `lambda: srv.held == 1`)."""
        deadline = time.monotonic() + timeout
        with self._state:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the scripted server did not reach the expected state in time")
                self._state.wait(min(left, 0.05))

    # -- called from handler threads -------------------------------------------------------------

    def _tools_refusal(self, model: str) -> ScriptedError | None:
        with self._state:
            return self._scripts.get(model, self._default).refuse_tools

    def _next_turn(self, model: str) -> tuple[Turn, int]:
        with self._state:
            key: str | None = model if model in self._scripts else None
            script = self._scripts[model] if key is not None else self._default
            cursor = self._cursors.get(key, 0)
            self._cursors[key] = cursor + 1
            self._serial += 1
            if script.repeat and script.turns:
                cursor %= len(script.turns)
            turn = script.turns[cursor] if cursor < len(script.turns) else Turn(text=SCRIPT_FINISHED)
            return turn, self._serial

    def _hold(self) -> None:
        with self._state:
            self._held += 1
            self._state.notify_all()
            while self._releases == 0 and not self._stopping:
                self._state.wait()
            if self._releases:
                self._releases -= 1
            self._held -= 1
            self._state.notify_all()

    def _record(self, request: ReceivedRequest) -> None:
        with self._state:
            self._requests.append(request)
            self._state.notify_all()

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._state:
            self._accepted += 1
            self._open.add(sock)
            self._state.notify_all()

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._state:
            self._open.discard(sock)
            self._state.notify_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve scripted OpenAI-compatible chat completions.")
    parser.add_argument("script", type=Path, help="JSON file: a list of turns, a Script or a ScriptSet")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = ScriptedLLMServer(ScriptSet.from_file(args.script), port=args.port)
    # The base URL on stdout is this program's output: demos and benchmarks read it.
    sys.stdout.write(server.start() + "\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seams of Sidehand, in one place. `core` depends only on these; `sandbox/` and `core/llm.py`
implement them, and the fakes in `core/testing/` implement them for tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from core.host_watch import HostFile, HostWatch
from core.messages import ChatMessage, LLMReply, ToolSpec
from core.output import OutputFile

if TYPE_CHECKING:
    from core.condenser import Condensed, View
    from core.config import Settings
    from core.events import Event

WORKDIR = "/workspace"
# Longer commands are refused: a model never needs one, and the shell would spend seconds on it.
MAX_COMMAND_BYTES = 1 << 20
# Input sent to a running command at once: the sandbox's stdin pipe holds 64 KiB, so what a command
# does not read never blocks the sandbox.
MAX_INPUT_BYTES = 4096


@dataclass(frozen=True)
class Wait:
    """When a call may return while its command runs on: after `at_most` seconds, or once the
    command printed nothing for `quiet` seconds (None: not for that reason)."""

    at_most: float | None = None
    quiet: float | None = None


@dataclass(frozen=True)
class RunningCommand:
    """The command a shell is running (a call returned early and it runs on)."""

    command: str
    elapsed: float  # seconds since it started


@dataclass(frozen=True)
class CommandResult:
    """What one shell command produced: facts only (the bash tool puts them into words for the
    model). `output` is stdout and stderr interleaved, middle-truncated to the sandbox's output
    limit; the whole text is in `full_output_path` when it was cut."""

    output: str
    exit_code: int | None  # None when the command did not finish (timed out or interrupted)
    timed_out: bool = False
    interrupted: bool = False
    truncated: bool = False
    full_output_path: Path | None = None
    # A new shell replaced the old one, so cwd and environment were reset: the command ended the
    # shell (`exit 3`: exit_code 3), or, after a timeout or interrupt, it would not die.
    shell_restarted: bool = False
    running: bool = False  # the call returned early (see Wait); the command runs on
    elapsed: float = 0.0  # seconds since the command started
    # Where this call's whole output is inside the sandbox, when it was cut (the model can read it).
    sandbox_output_path: str | None = None
    # The sandbox was at its process limit (a fork bomb, a runaway job): every process in it was
    # killed and its shells restarted (the files are kept).
    sandbox_restarted: bool = False
    # The previous command ended after its last call returned: what it printed since, and how it ended.
    previous: CommandResult | None = None


PathKind = Literal["file", "dir", "other"]


class Sandbox(Protocol):
    """An isolated copy of the workspace with a persistent shell. Paths are POSIX paths inside the
    sandbox: absolute, or relative to WORKDIR. File errors are the builtin FileNotFoundError,
    IsADirectoryError, NotADirectoryError and PermissionError with a readable message."""

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        output_file: OutputFile | None = None,
        wait: Wait | None = None,
    ) -> CommandResult:
        """Run `command` in the session's persistent shell (cwd and env persist). After `timeout`
        seconds the command's foreground job is killed (earlier background jobs live on) and the
        shell survives. With `wait`, the call may return first (`running`): the command runs on,
        and `wait_for_command`, `send_input` and `interrupt` deal with it. `output_file` receives
        the full output when it is cut (up to its size cap). Raises CommandRunningError while
        another command runs, and ValueError for a command over MAX_COMMAND_BYTES."""
        ...

    def running_command(self) -> RunningCommand | None:
        """The command still running after its call returned, if any."""
        ...

    async def wait_for_command(
        self, *, wait: Wait | None = None, output_file: OutputFile | None = None
    ) -> CommandResult:
        """More of the running command: its output since the last call returned, until it ends or
        `wait` says to return. Raises CommandRunningError(None) when no command is running."""
        ...

    async def send_input(self, data: bytes) -> None:
        """Write `data` (at most MAX_INPUT_BYTES) to the running command's standard input."""
        ...

    async def interrupt(self) -> None:
        """Stop the running command's foreground job, if any (SIGINT, then SIGKILL if it stays);
        a pending `run` returns interrupted."""
        ...

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        """The file's content; FileTooLargeError when it holds more than `max_bytes`."""
        ...

    async def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite a file (parent folders are created)."""
        ...

    async def delete_file(self, path: str) -> None:
        """Remove a file (not a folder)."""
        ...

    async def path_kind(self, path: str) -> PathKind | None:
        """'file', 'dir', 'other', or None when nothing is there."""
        ...

    async def list_dir(self, path: str, max_depth: int = 2, *, hidden: bool = False) -> list[str]:
        """Paths under `path` (relative to it, folders ending in '/'; symlinked folders are
        followed). Hidden entries are left out, or with `hidden` listed but not descended into."""
        ...

    @property
    def copied(self) -> Mapping[str, str]:
        """md5 of every regular file copied into the workspace when the sandbox was made, by
        workspace-relative path (what the host had then; .git and excluded folders left out)."""
        ...

    async def collect_changes(self) -> dict[str, bytes | None]:
        """The workspace files whose content changed since the last call (the first call: since
        the copy), by workspace-relative path, with their content now (None: gone, or no longer a
        regular file). Cheap when nothing changed: it must not read the whole workspace."""
        ...

    @property
    def left_out(self) -> Mapping[str, str]:
        """Workspace files the sandbox does not hold or report, and why (too large to copy, or
        to collect as a change): for a note to the model."""
        ...

    def take_refilled(self) -> bool:
        """True once after the sandbox lost its workspace files (a restart emptied its in-memory
        /workspace) and was filled from the host again: `copied` is the host's files now, and
        the session puts its change set back."""
        ...

    async def follow_host(self, files: Mapping[str, HostFile], expect: Mapping[str, str | None]) -> set[str]:
        """The host's files changed: each of `files` whose sandbox copy still has the md5
        `expect[path]` (None: no file) takes the host's content, and counts as copied from now on;
        the others keep theirs (the agent changed them since). Returns the paths taken."""
        ...

    async def put_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (or, for None, delete) these workspace-relative files, parent folders made as
        needed; the next `collect_changes` does not report them. For restoring a session's files
        and reverting rejected changes."""
        ...

    async def close(self) -> None:
        """Stop and remove everything the sandbox holds. Safe to call twice."""
        ...


class SandboxFactory(Protocol):
    async def __call__(self, workspace: Path, session_id: str) -> Sandbox:
        """A new sandbox holding a copy of `workspace`, for the session `session_id`."""
        ...

    async def reap(self) -> int:
        """Remove the sandboxes whose owning process is gone (killed, crashed); how many."""
        ...

    async def prewarm(self, workspace: Path, watch: HostWatch) -> None:
        """Have sandboxes of `workspace` ready ahead of the sessions that will ask for them,
        following the host's changes through `watch` meanwhile (a factory may do nothing)."""
        ...

    async def aclose(self) -> None:
        """Remove what the factory holds (ready sandboxes, its engine connection)."""
        ...


TextSink = Callable[[str], None]


class LLM(Protocol):
    """One model endpoint. `complete` never blocks the event loop: CPU-heavy request building and
    response parsing run on a worker thread. `on_text` receives streamed text as it arrives."""

    model: str

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        on_text: TextSink | None = None,
    ) -> LLMReply: ...

    async def supports_tools(self) -> bool | None:
        """Whether the model takes tools natively, as far as is known without a call (litellm's
        model information); None: unknown."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections to the model server."""
        ...


class Condenser(Protocol):
    """A function from the model's view to a shorter view and the Condensation event that makes
    it (None when the view fits its budget). Pure but for the model call a summary may make."""

    async def condense(self, view: View) -> Condensed | None: ...


@dataclass(frozen=True)
class ExternalResult:
    """What an external tool returned, as text for the model."""

    output: str
    error: bool = False


class ExternalTools(Protocol):
    """Tools from outside Sidehand (the MCP servers the user configured), open for one session.
    `specs` are named so they cannot clash with the built-in tools."""

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    @property
    def problems(self) -> Sequence[str]:
        """What could not be started or listed, for the user (each becomes a notice)."""
        ...

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> ExternalResult: ...

    async def aclose(self) -> None:
        """Close the connections (stop the servers this session started)."""
        ...


class ExternalToolsFactory(Protocol):
    async def __call__(self, workspace: Path, settings: Settings) -> ExternalTools:
        """The external tools for a session over `workspace`; never raises for a server that
        fails (it is left out and named in `problems`)."""
        ...


EventSink = Callable[["Event"], None]

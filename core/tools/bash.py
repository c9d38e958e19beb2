"""The `bash` tool: commands in the session's persistent shell, with the terminal semantics models
are trained on (OpenHands' terminal): a call returns when its command ends or goes quiet, and a
command that runs on can be waited for, given input, or interrupted. The sandbox returns facts
(core.protocols.CommandResult); this module is the one place they are put into words."""

from __future__ import annotations

import functools
from typing import ClassVar

from pydantic import Field

from core.config import Settings
from core.errors import CommandRunningError, SandboxError
from core.messages import ToolSpec
from core.protocols import MAX_COMMAND_BYTES, MAX_INPUT_BYTES, CommandResult, Wait
from core.tools.base import Observation, Params, Tool, ToolContext, tool_spec

INTERRUPT = "C-c"
KEYS_NOT_SUPPORTED = {"C-d", "C-z", "C-\\"}


class BashParams(Params):
    command: str = Field(
        description=(
            "The command to run; cwd and environment persist between calls. While a command is "
            'still running: "" (empty) waits for more of its output, "C-c" interrupts it.'
        )
    )
    is_input: bool = Field(
        False,
        description="true: `command` is text typed into the running command's input (a newline is added).",
    )
    timeout: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Seconds to wait before the call returns with the output so far; the command runs on.",
    )


DESCRIPTION = """Run a command in a bash shell in the sandbox. The project is in /workspace, where the shell starts.
* cwd and environment variables persist between calls; `set -e` lasts for one command.
* stdout and stderr come back together. Long output is cut in the middle; a note says where the whole of it is.
* A call returns when the command ends, or once it has printed nothing for {quiet:g} seconds (or after `timeout` seconds if you give one). The command then keeps running: call again with an empty command to wait for more output, "C-c" to interrupt it, or is_input=true to type into its input. Other commands are refused until it ends.
* A command is killed after {hard:g} seconds in all. Run servers and other endless programs in the background: `python3 -m http.server 8000 > /tmp/server.log 2>&1 &`.
* Commands that read input wait for it: prefer non-interactive flags (-y, --no-pager)."""


class BashTool(Tool):
    name = "bash"
    description = DESCRIPTION.format(quiet=10, hard=600)
    params: ClassVar[type[Params]] = BashParams

    def spec_for(self, settings: Settings) -> ToolSpec:
        return _spec(settings.command_quiet_timeout, settings.command_timeout)

    def title(self, params: Params) -> str:
        assert isinstance(params, BashParams)
        command = params.command.strip()
        if params.is_input:
            return f"input: {command[:100]}"
        if not command:
            return "wait for the running command"
        return "interrupt the running command" if command == INTERRUPT else command.splitlines()[0][:120]

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, BashParams)
        key = params.command.strip()
        wait = (
            Wait(at_most=params.timeout)
            if params.timeout
            else (Wait(quiet=ctx.quiet_timeout) if ctx.quiet_timeout else None)
        )
        output_file = ctx.outputs.file_for(ctx.call_id)
        try:
            if params.is_input or key == INTERRUPT or key in KEYS_NOT_SUPPORTED or not key:
                result = await self._to_running(params, key, wait, ctx)
                if isinstance(result, Observation):
                    return result
            else:
                size = len(params.command.encode("utf-8", "surrogateescape"))
                if size > MAX_COMMAND_BYTES:
                    return Observation(
                        f"The command is {size} bytes long; commands are limited to {MAX_COMMAND_BYTES} "
                        "bytes. Write long content with the editor's `create` command, or in parts.",
                        error=True,
                    )
                result = await ctx.sandbox.run(
                    params.command, timeout=ctx.command_timeout, output_file=output_file, wait=wait
                )
        except CommandRunningError as exc:
            return Observation(_refusal(exc), error=True)
        ctx.outputs.spend(result.full_output_path)
        return _observe(result, ctx.command_timeout)

    async def _to_running(
        self, params: BashParams, key: str, wait: Wait | None, ctx: ToolContext
    ) -> CommandResult | Observation:
        """An empty command, C-c, or input: all for the command that is running."""
        sandbox, output_file = ctx.sandbox, ctx.outputs.file_for(ctx.call_id)
        if key in KEYS_NOT_SUPPORTED and not params.is_input:
            return Observation(
                f"{key} cannot be sent here (the command's input never ends as a terminal's does). "
                'Send "C-c" to interrupt the command, or give input with is_input=true.',
                error=True,
            )
        if key == INTERRUPT:
            await sandbox.interrupt()
        elif params.is_input:
            data = (params.command + "\n").encode("utf-8", "surrogateescape")
            if len(data) > MAX_INPUT_BYTES:
                return Observation(
                    f"The input is {len(data)} bytes; send at most {MAX_INPUT_BYTES} at a time.", error=True
                )
            if sandbox.running_command() is None:
                return Observation(
                    "No command is running, so there is nothing to send input to. Run a command instead "
                    "(is_input=false).",
                    error=True,
                )
            try:
                await sandbox.send_input(data)
            except SandboxError as exc:
                if isinstance(exc, CommandRunningError):
                    raise
                return Observation(f"The input was not sent: {exc}.", error=True)
        try:
            return await sandbox.wait_for_command(wait=wait, output_file=output_file)
        except CommandRunningError:
            what = "to interrupt" if key == INTERRUPT else "to wait for"
            return Observation(
                f"No command is running, so there is nothing {what}. Give a command to run.", error=True
            )


@functools.cache
def _spec(quiet: float, hard: float) -> ToolSpec:
    return tool_spec(BashTool, DESCRIPTION.format(quiet=quiet, hard=hard))


def _refusal(exc: CommandRunningError) -> str:
    if exc.command is None:
        return "No command is running. Give a command to run."
    first = exc.command.strip().splitlines()[0][:200] if exc.command.strip() else exc.command
    return (
        f"Not run: the previous command (`{first}`) is still running ({exc.elapsed:.0f} s so far). "
        'Call again with an empty command to wait for it, "C-c" to interrupt it, or is_input=true to '
        "type into its input; then run your command."
    )


def _observe(result: CommandResult, hard_limit: float) -> Observation:
    parts = []
    if result.previous is not None:
        earlier = result.previous
        ended = f"exit code {earlier.exit_code}" if earlier.exit_code is not None else "it was stopped"
        parts.append(f"[The previous command ended after its last call returned ({ended}). Its last output:]")
        if earlier.output.strip():
            parts.append(earlier.output.rstrip("\n"))
        parts.append("[Your command's output:]")
    if result.output:
        parts.append(result.output.rstrip("\n"))
    parts.extend(_notes(result, hard_limit))
    return Observation(
        "\n".join(parts),
        error=bool(result.exit_code) or result.timed_out or result.interrupted,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        truncated=result.truncated,
        full_output_path=str(result.full_output_path) if result.full_output_path else None,
    )


def _notes(result: CommandResult, hard_limit: float) -> list[str]:
    """Each fact once, in words."""
    notes = []
    if result.truncated:
        notes.append(
            f"[The output was cut in the middle; all of it is in {result.sandbox_output_path}: read it "
            "with grep, head, tail or sed -n.]"
            if result.sandbox_output_path
            else "[The output was cut in the middle; the whole of it was too long to keep. Redirect it "
            "to a file (> /tmp/out.txt) and read that with grep or sed -n.]"
        )
    if result.sandbox_restarted:
        notes.append(
            "[The sandbox reached its process limit (a fork bomb, or a program starting processes without "
            "end?): every process in it was killed, background jobs included, and the shell was "
            "restarted, so cwd and environment were reset. The files are kept.]"
        )
    if result.running:
        notes.append(
            f"[The command is still running ({result.elapsed:.0f} s so far). Call again with an empty "
            'command to wait for more output, "C-c" to interrupt it, or is_input=true to type into its '
            f"input. Other commands are refused until it ends; it is killed after {hard_limit:g} s in all.]"
        )
    elif result.timed_out:
        notes.append(
            f"[The command timed out after {hard_limit:g} s (the limit for a command) and was killed; "
            "background jobs started earlier with & still run. Run long programs in the background "
            "(`cmd > /tmp/log.txt 2>&1 &`).]"
        )
    elif result.interrupted:
        notes.append("[The command was interrupted (Ctrl-C).]")
    if result.shell_restarted and (result.timed_out or result.interrupted):
        notes.append(
            "[The command did not stop when its processes were killed: the shell was restarted, "
            "so cwd and environment were reset.]"
        )
    elif result.shell_restarted and not result.sandbox_restarted:
        notes.append("[The shell exited and was restarted: cwd and environment were reset.]")
    if result.exit_code is not None:
        notes.append(f"[exit code: {result.exit_code}]")
    return notes

"""The `bash` tool: one command in the session's persistent shell."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from core.tools.base import Observation, Params, Tool, ToolContext


class BashParams(Params):
    command: str = Field(
        description="The command to run. cwd and environment persist between calls. Chain with && or ;."
    )
    timeout: float | None = Field(
        None, gt=0, le=3600, description="Seconds before the command is killed (default: the session's)."
    )


class BashTool(Tool):
    name = "bash"
    description = (
        "Run a shell command in the sandbox (a persistent bash session; the workspace is at /workspace). "
        "Commands get no standard input: use non-interactive flags (-y, --no-pager). Long output is "
        "truncated in the middle; the full text is saved. A command that runs past its timeout is "
        "killed and the shell stays usable."
    )
    params: ClassVar[type[Params]] = BashParams

    def title(self, params: Params) -> str:
        assert isinstance(params, BashParams)
        first = params.command.strip().splitlines()[0] if params.command.strip() else ""
        return first[:120]

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, BashParams)
        if not params.command.strip():
            return Observation("The command is empty: give a command to run.", error=True)
        timeout = params.timeout or ctx.command_timeout
        result = await ctx.sandbox.run(
            params.command, timeout=timeout, output_file=ctx.outputs.file_for(ctx.call_id)
        )
        ctx.outputs.spend(result.full_output_path)
        notes = []
        stopped = result.timed_out or result.interrupted
        if result.timed_out:
            notes.append(
                f"[The command timed out after {timeout:g}s and was killed. "
                "The shell is still usable; use a longer timeout or run it in the background.]"
            )
        elif result.interrupted:
            notes.append("[The command was interrupted.]")
        if result.shell_restarted and stopped:
            notes.append(
                "[The command did not stop when its processes were killed: the shell was restarted, "
                "so cwd and environment were reset.]"
            )
        elif result.shell_restarted:
            notes.append("[The shell exited and was restarted: cwd and environment were reset.]")
        if result.exit_code is not None:
            notes.append(f"[exit code: {result.exit_code}]")
        output = result.output.rstrip("\n")
        text = "\n".join([output, *notes]) if output else "\n".join(notes)
        return Observation(
            text,
            error=bool(result.exit_code) or result.timed_out or result.interrupted,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            truncated=result.truncated,
            full_output_path=str(result.full_output_path) if result.full_output_path else None,
        )

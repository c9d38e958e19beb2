"""One long-lived shell that runs commands one after another, so cwd and environment persist.

The shell process itself is behind `ShellProcess` (a Docker exec socket, or a local subprocess for
the baseline); this module owns the protocol on top: framing, waiting, timeouts, interrupts and
restarts. A command may outlive the call that started it: the call returns early (`Wait`) and
the command runs on, its output collected by a follower task until the next call asks for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from core.config import DEFAULT_OUTPUT_LIMIT
from core.errors import CommandRunningError, SandboxCrowdedError, SandboxError
from core.output import OutputCollector, OutputFile
from core.protocols import MAX_COMMAND_BYTES, MAX_INPUT_BYTES, CommandResult, RunningCommand, Wait
from sandbox.marker_protocol import MarkerReader, ShellEndedError, new_nonce
from sandbox.shell_scripts import INLINE_COMMAND_BYTES, SHELL_DIR, StopMode, framed_command, setup_request

log = logging.getLogger(__name__)


class ShellProcess(Protocol):
    """A running shell: its stdin, its output (stdout and stderr merged), and a way to stop things."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes:
        """The next output bytes; b"" once the shell has ended. Must be safe to cancel."""
        ...

    async def stop(self, shell_pid: int, mode: StopMode, jobs_file: str) -> None:
        """Run sandbox.shell_scripts.STOP_SCRIPT (in a process of its own) with these arguments."""
        ...

    async def exit_code(self) -> int | None:
        """The shell's exit status, once its output has ended (None if unknown)."""
        ...

    async def close(self) -> None:
        """Release the process and its streams (killing it if it still runs)."""
        ...


SpawnShell = Callable[[], Awaitable[ShellProcess]]
# Input one command may be given in all: less than its pipe holds (64 KiB), so that writing input a
# command does not read never blocks the file channel.
INPUT_PER_COMMAND = 8 * MAX_INPUT_BYTES
# Writes bytes to a path in the sandbox, beside the shell (the file channel): long commands to a
# file, input to a running command's fifo.
PutFile = Callable[[str, bytes], Awaitable[None]]


@dataclass
class _LiveShell:
    process: ShellProcess
    reader: MarkerReader
    pid: int  # as the shell's own pid namespace sees it (from `$$`)
    stdin: str  # the fifo its commands read ("/dev/null": none)
    ended: bool = False  # its output ended: a new shell replaces it before the next command

    @property
    def jobs_file(self) -> str:
        return f"{SHELL_DIR}/jobs-{self.pid}"


@dataclass
class _Command:
    """A command in the shell, from its start to its end, across the calls that wait for it."""

    text: str
    nonce: str
    live: _LiveShell
    segment: OutputCollector  # the output since the last call returned
    started: float = field(default_factory=time.monotonic)
    last_output: float = field(default_factory=time.monotonic)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None
    timed_out: bool = False
    interrupted: bool = False
    restarted: bool = False
    crowded: bool = False  # the sandbox neared its process limit while it ran
    not_run: bool = False  # the sandbox was already at its limit: it never started
    reported: bool = False  # a call returned its end
    input_sent: int = 0
    follower: asyncio.Task[None] | None = None
    stopper: asyncio.Task[None] | None = None
    deadline: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> None:
        self.segment.feed(data)
        self.last_output = time.monotonic()


class PersistentShell:
    """Runs commands in one shell process, one at a time, replacing the shell when a command ends
    or wedges it. `kill_grace`: how long a stopped command may take to give its marker back."""

    def __init__(
        self,
        spawn: SpawnShell,
        *,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        kill_grace: float = 2.0,
        put_file: PutFile | None = None,
        feed_fifo: PutFile | None = None,
    ) -> None:
        self._spawn = spawn
        self._output_limit = output_limit
        self._kill_grace = kill_grace
        self._put_file = put_file
        self._feed_fifo = feed_fifo
        self._live: _LiveShell | None = None
        self._lock = asyncio.Lock()  # one call at a time starts or waits for a command
        self._command: _Command | None = None
        self._crowded = False  # a command ended with the sandbox near its process limit
        self._closed = False

    @property
    def pid(self) -> int | None:
        return None if self._live is None else self._live.pid

    async def start(self) -> None:
        """Spawn the shell and learn its pid and stdin (one round trip)."""
        if self._closed:
            raise SandboxError("the shell was closed (its sandbox is shutting down): start a new session")
        process = await self._spawn()
        reader = MarkerReader(process.receive)
        nonce = new_nonce()
        try:
            await process.send(setup_request(nonce))
            status = await reader.read_until(nonce, _discard)
            pid, _, stdin = status.partition(" ")
            live = _LiveShell(process, reader, int(pid), stdin or "/dev/null")
        except BaseException:
            await process.close()
            raise
        self._live = live

    # ---- calls ----------------------------------------------------------------------------------
    def running(self) -> RunningCommand | None:
        command = self._command
        if command is None or command.ended.is_set():
            return None
        return RunningCommand(command.text, time.monotonic() - command.started)

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        output_file: OutputFile | None = None,
        wait: Wait | None = None,
    ) -> CommandResult:
        if len(command.encode("utf-8", "surrogateescape")) > MAX_COMMAND_BYTES:
            raise ValueError(f"the command is longer than {MAX_COMMAND_BYTES} bytes")
        async with self._lock:
            if (running := self.running()) is not None:
                raise CommandRunningError(
                    "a command is still running", command=running.command, elapsed=running.elapsed
                )
            previous = self._unreported()
            live = await self._ready_shell()
            cmd = _Command(command, new_nonce(), live, OutputCollector(self._output_limit, output_file))
            self._command = cmd
            if timeout is not None:  # the clock starts before the command is sent
                cmd.deadline = asyncio.get_running_loop().call_later(timeout, self._hard_timeout, cmd)
            try:
                await self._send(cmd)
            except BaseException:
                cmd.ended.set()
                self._cancel_deadline(cmd)
                raise
            cmd.follower = asyncio.create_task(self._follow(cmd))
            result = await self._await(cmd, wait, time.monotonic())
            if cmd.not_run:
                raise SandboxCrowdedError("the sandbox is at its process limit: the command was not run")
            return result if previous is None else replace(result, previous=previous)

    async def wait(self, *, wait: Wait | None = None, output_file: OutputFile | None = None) -> CommandResult:
        """More of the command that is running (see core.protocols.Sandbox.wait_for_command)."""
        async with self._lock:
            cmd = self._command
            if cmd is None or cmd.reported:
                raise CommandRunningError("no command is running")
            cmd.segment.retarget(output_file)
            return await self._await(cmd, wait, time.monotonic())

    def take_crowded(self) -> bool:
        """Whether a command ended with the sandbox near its process limit (once)."""
        crowded, self._crowded = self._crowded, False
        return crowded

    async def send_input(self, data: bytes) -> None:
        cmd = self._command
        if cmd is None or cmd.ended.is_set():
            raise CommandRunningError("no command is running")
        if cmd.live.stdin == "/dev/null" or self._feed_fifo is None:
            raise SandboxError("this sandbox's shell cannot pass input to commands (mkfifo is missing)")
        if len(data) > MAX_INPUT_BYTES:
            raise ValueError(f"input is limited to {MAX_INPUT_BYTES} bytes at a time")
        if cmd.input_sent + len(data) > INPUT_PER_COMMAND:  # what it leaves unread fills the pipe
            raise SandboxError(
                f"the command was given {cmd.input_sent} bytes of input already, the most it takes"
            )
        cmd.input_sent += len(data)
        try:
            await self._feed_fifo(cmd.live.stdin, data)
        except FileNotFoundError as exc:
            raise SandboxError(f"the command's input pipe {cmd.live.stdin} is gone (removed?)") from exc

    async def interrupt(self) -> None:
        """Stop the running command (SIGINT to its foreground job, SIGKILL after `kill_grace`);
        return once it has ended."""
        cmd = self._command
        if cmd is None or cmd.ended.is_set():
            return
        cmd.interrupted = True
        await self._stop(cmd, "int")

    # ---- the command's life ---------------------------------------------------------------------
    async def _ready_shell(self) -> _LiveShell:
        live = self._live
        if live is not None and live.ended:
            await live.process.close()
            self._live = live = None
        if live is None:
            await self.start()
            assert self._live is not None
            live = self._live
        return live

    async def _send(self, cmd: _Command) -> None:
        data = cmd.text.encode("utf-8", "surrogateescape")
        if len(data) > INLINE_COMMAND_BYTES and self._put_file is not None:
            path = f"{SHELL_DIR}/cmd-{cmd.nonce}"  # a new name each time: nothing to lie in wait
            await self._put_file(path, data)
            await cmd.live.process.send(framed_command(cmd.text, cmd.nonce, from_file=path))
        else:
            await cmd.live.process.send(framed_command(cmd.text, cmd.nonce))

    async def _follow(self, cmd: _Command) -> None:
        """Read the command's output up to its marker (whoever waits, or nobody)."""
        live = cmd.live
        try:
            status = await live.reader.read_until(cmd.nonce, cmd.feed)
            code, _, crowded = status.partition(" ")
            if code == "crowded":
                cmd.not_run = cmd.crowded = True
            else:
                cmd.exit_code = int(code) if code.isdigit() else None
                cmd.crowded = crowded.startswith("crowded")
            self._crowded = self._crowded or cmd.crowded
        except ShellEndedError:
            live.ended = True
            cmd.exit_code = await live.process.exit_code()
            cmd.restarted = True
        except (ConnectionError, OSError) as exc:
            log.warning("lost the shell's output stream: %s", exc)
            live.ended = cmd.restarted = True
        finally:
            self._cancel_deadline(cmd)
            cmd.ended.set()

    async def _await(self, cmd: _Command, wait: Wait | None, since: float) -> CommandResult:
        """Until the command ends, or `wait` lets the call return first."""
        while not cmd.ended.is_set():
            if wait is None:
                await cmd.ended.wait()
                break
            now = time.monotonic()
            limits = []
            if wait.at_most is not None:
                limits.append(since + wait.at_most - now)
            if wait.quiet is not None:
                limits.append(max(since, cmd.last_output) + wait.quiet - now)
            left = min(limits) if limits else None
            if left is not None and left <= 0:
                return self._segment(cmd, running=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await cmd.ended.wait()
        if self._closed:
            raise SandboxError("the sandbox was closed while the command ran")
        cmd.reported = True
        return self._segment(cmd, running=False)

    def _segment(self, cmd: _Command, *, running: bool) -> CommandResult:
        """The output since the last call returned; a running command's next output starts anew."""
        segment = cmd.segment
        segment.close()
        if running:
            cmd.segment = OutputCollector(self._output_limit, segment.follow_on())
        stopped = cmd.timed_out or cmd.interrupted
        return CommandResult(
            output=segment.text(),
            exit_code=None if running or stopped or cmd.not_run else cmd.exit_code,
            timed_out=cmd.timed_out,
            interrupted=cmd.interrupted and not running,
            truncated=segment.truncated,
            full_output_path=segment.full_path if segment.truncated else None,
            shell_restarted=cmd.restarted and not running,
            running=running,
            elapsed=time.monotonic() - cmd.started,
        )

    def _unreported(self) -> CommandResult | None:
        """The end of the previous command when no call returned it (it ended between calls)."""
        cmd = self._command
        if cmd is None or cmd.reported or not cmd.ended.is_set():
            return None
        cmd.reported = True
        return self._segment(cmd, running=False)

    def _hard_timeout(self, cmd: _Command) -> None:
        cmd.deadline = None
        if not cmd.ended.is_set() and cmd.stopper is None:
            cmd.timed_out = True
            cmd.stopper = asyncio.create_task(self._stop(cmd, "kill"))

    async def _stop(self, cmd: _Command, mode: StopMode) -> None:
        """Stop the command's foreground job; if it does not end within the grace (or cannot be
        signalled at all), kill the shell: its output ends, and the next command gets a new one."""
        live = cmd.live
        try:
            await live.process.stop(live.pid, mode, live.jobs_file)
            async with asyncio.timeout(self._kill_grace):
                await cmd.ended.wait()
            return
        except TimeoutError:
            if mode == "int":
                await self._stop(cmd, "kill")
                return
            log.warning("a command survived the kill (shell pid %s): replacing the shell", live.pid)
        except SandboxError as exc:  # the sandbox cannot start the stop script (process limit?)
            log.warning("could not stop the command (%s): dropping its shell", exc)
        await self._drop_shell(cmd)

    async def _drop_shell(self, cmd: _Command) -> None:
        """Give up on the command's shell: kill it if possible, stop reading it, end the command."""
        live = cmd.live
        live.ended = cmd.restarted = True
        with contextlib.suppress(SandboxError):
            await live.process.stop(live.pid, "shell", live.jobs_file)
        if cmd.follower is not None and not cmd.follower.done():
            cmd.follower.cancel()
            await asyncio.gather(cmd.follower, return_exceptions=True)
        cmd.ended.set()
        await live.process.close()

    def _cancel_deadline(self, cmd: _Command) -> None:
        if cmd.deadline is not None:
            cmd.deadline.cancel()
            cmd.deadline = None

    async def reset(self) -> None:
        """The shell is gone (its sandbox was restarted): end the running command, if any, as
        killed, and start a new shell at the next command."""
        live, self._live = self._live, None
        cmd = self._command
        if cmd is not None and not cmd.ended.is_set():
            cmd.restarted = True
            cmd.exit_code = None
            self._cancel_deadline(cmd)
            if cmd.follower is not None:
                cmd.follower.cancel()
                await asyncio.gather(cmd.follower, return_exceptions=True)
            cmd.ended.set()
        if live is not None:
            await live.process.close()

    async def close(self) -> None:
        """End the shell. A call in progress ends with SandboxError instead of restarting it."""
        self._closed = True
        cmd = self._command
        if cmd is not None:
            self._cancel_deadline(cmd)
            for task in (cmd.follower, cmd.stopper):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            cmd.ended.set()
            cmd.segment.close()
        live, self._live = self._live, None
        if live is not None:
            await live.process.close()


def _discard(_: bytes) -> None:
    return None

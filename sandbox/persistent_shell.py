"""One long-lived shell that runs commands one after another, so cwd and environment persist.

The shell process itself is behind `ShellProcess` (a Docker exec socket, or a local subprocess for
the baseline); this module owns the protocol on top: framing, timeouts, interrupts and restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from core.config import DEFAULT_OUTPUT_LIMIT
from core.errors import SandboxError
from core.output import OutputCollector, OutputFile
from core.protocols import CommandResult
from sandbox.marker_protocol import MarkerReader, ShellEndedError, Sink, framed, new_nonce, shell_quote

log = logging.getLogger(__name__)

# Run once when a shell starts. A command runs inside a function, so that stopping it can abandon
# the rest of it: the stopper sends SIGUSR2 to the shell (and kills the shell's child processes),
# and the trap, run as soon as the current child is gone or between two builtins, returns from the
# function. Without it `sleep 30; rm -rf build` would go on to `rm` after `sleep` was killed, and a
# loop of builtins (`while :; do :; done`) could not be stopped at all. The `busy` flag keeps a
# late signal from doing anything once the command is over.
SHELL_SETUP = """__sidehand_run() { __sidehand_busy=1; command eval "$__sidehand_cmd"; }
trap '[ -z "${__sidehand_busy-}" ] || return 130' USR2"""

# Stops what a shell runs. $1: the shell's pid; $2: "command" (signal the shell to abandon its
# command, kill its descendants) or "shell" (kill the shell too). POSIX sh over /proc only, so it
# works in any image (no procps). Every process found is stopped first and the tree scanned again,
# so one forked meanwhile cannot escape by being re-parented to init; then all are killed at once.
KILL_TREE_SCRIPT = r"""
root=$1; mode=$2; victims=" "
[ "$mode" = command ] && kill -USR2 "$root" 2>/dev/null
while :; do
  table=""
  for d in /proc/[0-9]*; do
    read -r s 2>/dev/null <"$d/stat" || continue
    s=${s##*)}
    set -- $s
    table="$table ${d#/proc/}:$2"
  done
  tree=" $root "; grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    for e in $table; do
      case "$tree" in *" ${e#*:} "*)
        case "$tree" in *" ${e%%:*} "*) ;; *) tree="$tree${e%%:*} "; grew=1 ;; esac ;;
      esac
    done
  done
  new=""
  for p in $tree; do
    [ "$p" = "$root" ] && continue
    case "$victims" in *" $p "*) ;; *) new="$new $p"; victims="$victims$p " ;; esac
  done
  [ -n "$new" ] || break
  kill -STOP $new 2>/dev/null
done
[ "$mode" = shell ] && victims="$victims$root "
[ -n "${victims# }" ] && kill -KILL $victims 2>/dev/null
exit 0
"""


def framed_command(command: str, nonce: str) -> bytes:
    """A user command for the persistent shell (set up with SHELL_SETUP).

    `eval` of the text runs it in the current shell (so `cd` and `export` persist) and makes a
    syntax error an ordinary failure; `command eval` keeps POSIX shells (dash) from exiting on it.
    stdin is /dev/null: an interactive program gets EOF instead of waiting forever, and can never
    eat the next request."""
    script = (
        f"__sidehand_cmd={shell_quote(command)}; __sidehand_run </dev/null 2>&1; "
        "__sidehand_status=$? __sidehand_busy="
    )
    return framed(script, nonce, '"$__sidehand_status"')


class ShellProcess(Protocol):
    """A running shell: its stdin, its output (stdout and stderr merged), and a way to kill things."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes:
        """The next output bytes; b"" once the shell has ended. Must be safe to cancel."""
        ...

    async def stop_command(self, shell_pid: int) -> None:
        """Make the shell abandon its command: run KILL_TREE_SCRIPT with `command`."""
        ...

    async def kill_shell(self, shell_pid: int) -> None:
        """Kill the shell and everything under it: run KILL_TREE_SCRIPT with `shell`."""
        ...

    async def exit_code(self) -> int | None:
        """The shell's exit status, once its output has ended (None if unknown)."""
        ...

    async def close(self) -> None:
        """Release the process and its streams (killing it if it still runs)."""
        ...


SpawnShell = Callable[[], Awaitable[ShellProcess]]


@dataclass
class _LiveShell:
    process: ShellProcess
    reader: MarkerReader
    pid: int  # as the shell's own pid namespace sees it (from `$$`)


class PersistentShell:
    """Runs commands in one shell process, one at a time, restarting it when a command ends or
    wedges it. `kill_grace`: how long a killed command may take to give its marker back."""

    def __init__(
        self, spawn: SpawnShell, *, output_limit: int = DEFAULT_OUTPUT_LIMIT, kill_grace: float = 2.0
    ) -> None:
        self._spawn = spawn
        self._output_limit = output_limit
        self._kill_grace = kill_grace
        self._live: _LiveShell | None = None
        self._lock = asyncio.Lock()
        self._finished: asyncio.Event | None = None  # exists while a command runs; set when it ends
        self._interrupted = False
        self._abandoned_nonce: str | None = None  # a command whose caller was cancelled mid-way
        self._closed = False

    @property
    def pid(self) -> int | None:
        return None if self._live is None else self._live.pid

    async def start(self) -> None:
        """Spawn the shell and learn its pid (one round trip)."""
        if self._closed:
            raise SandboxError("the shell was closed (its sandbox is shutting down): start a new session")
        process = await self._spawn()
        reader = MarkerReader(process.receive)
        nonce = new_nonce()
        try:
            await process.send(framed(SHELL_SETUP, nonce, '"$$"'))
            status = await reader.read_until(nonce, _discard)
        except BaseException:
            await process.close()
            raise
        self._live = _LiveShell(process, reader, int(status))

    async def run(
        self, command: str, *, timeout: float | None = None, output_file: OutputFile | None = None
    ) -> CommandResult:
        async with self._lock:
            if self._live is None:
                await self.start()
            elif self._abandoned_nonce is not None:
                await self._recover_abandoned(self._abandoned_nonce)
            collector = OutputCollector(self._output_limit, output_file)
            self._finished, self._interrupted = asyncio.Event(), False
            try:
                return await self._run_framed(command, timeout, collector)
            finally:
                self._finished.set()
                self._finished = None
                collector.close()

    async def _run_framed(
        self, command: str, timeout: float | None, collector: OutputCollector
    ) -> CommandResult:
        live = self._live
        assert live is not None
        nonce = new_nonce()
        timed_out = restarted = False
        exit_code: int | None = None
        try:
            await live.process.send(framed_command(command, nonce))
            try:
                async with asyncio.timeout(timeout):
                    exit_code = int(await live.reader.read_until(nonce, collector.feed))
            except TimeoutError:
                timed_out = True
                restarted = not await self._stop_command(live, nonce, collector.feed)
        except ShellEndedError:
            exit_code = await live.process.exit_code()
            restarted = True
            await self._restart(kill_old=False)
        except asyncio.CancelledError:
            # The caller gave up; the command may still run. The next run() stops it and skips its
            # output, so this command's late output never shows up as the next command's.
            self._abandoned_nonce = nonce
            raise
        if self._interrupted or timed_out:
            exit_code = None
        return CommandResult(
            output=collector.text(),
            exit_code=exit_code,
            timed_out=timed_out,
            interrupted=self._interrupted,
            truncated=collector.truncated,
            full_output_path=collector.full_path if collector.truncated else None,
            shell_restarted=restarted,
        )

    async def _stop_command(self, live: _LiveShell, nonce: str, sink: Sink) -> bool:
        """Kill the command's processes and read on to its marker. False: the shell was restarted."""
        await live.process.stop_command(live.pid)
        try:
            async with asyncio.timeout(self._kill_grace):
                await live.reader.read_until(nonce, sink)
        except TimeoutError:
            log.warning("a command survived the kill (shell pid %s): restarting the shell", live.pid)
            await self._restart(kill_old=True)
            return False
        except ShellEndedError:
            await self._restart(kill_old=False)
            return False
        return True

    async def _recover_abandoned(self, nonce: str) -> None:
        self._abandoned_nonce = None
        assert self._live is not None
        if not await self._stop_command(self._live, nonce, _discard):
            log.info("the shell was restarted after a cancelled command")

    async def _restart(self, *, kill_old: bool) -> None:
        old, self._live = self._live, None
        if old is not None:
            if kill_old:
                await old.process.kill_shell(old.pid)
            await old.process.close()
        await self.start()

    async def interrupt(self) -> None:
        """Kill the running command (not the shell); return once its run() has returned."""
        finished, live = self._finished, self._live
        if finished is None or live is None:
            return
        self._interrupted = True
        await live.process.stop_command(live.pid)
        try:
            async with asyncio.timeout(self._kill_grace):
                await finished.wait()
        except TimeoutError:
            # The shell ignored the stop (its trap was replaced?): kill it; run() sees its end and
            # restarts it.
            await live.process.kill_shell(live.pid)
            await finished.wait()

    async def close(self) -> None:
        """End the shell. A run() in progress ends with SandboxError instead of restarting it."""
        self._closed = True
        live, self._live = self._live, None
        if live is not None:
            await live.process.close()


def _discard(_: bytes) -> None:
    return None

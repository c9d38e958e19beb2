"""The persistent-shell protocol over a local bash: the benchmark baseline, and a Docker-free check
of the protocol logic the sandbox shares."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import CommandRunningError, SandboxError
from core.protocols import MAX_INPUT_BYTES, Wait
from sandbox.host_shell import HostShell


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[HostShell]:
    host = HostShell(tmp_path, output_limit=1000)
    await host.start()
    try:
        yield host
    finally:
        await host.close()


async def test_state_persists_and_exit_codes_come_back(shell: HostShell, tmp_path: Path) -> None:
    await shell.run("mkdir sub && cd sub && export V=1")
    result = await shell.run('pwd; echo "$V"; (exit 7)')
    assert result.output == f"{tmp_path}/sub\n1\n"
    assert result.exit_code == 7


async def test_timeout_abandons_the_rest_of_the_command(shell: HostShell) -> None:
    started = time.monotonic()
    result = await shell.run("echo a; sleep 30; echo b", timeout=0.3)
    assert time.monotonic() - started < 3
    assert result.timed_out and not result.shell_restarted
    assert "a\n" in result.output and "b\n" not in result.output
    assert (await shell.run("echo alive")).output == "alive\n"


async def wait_for_file(path: Path) -> None:
    async with asyncio.timeout(10):
        for _ in itertools.count():
            if path.exists():
                return
            await asyncio.sleep(0.01)


async def test_interrupt_and_exit(shell: HostShell, tmp_path: Path) -> None:
    running = asyncio.create_task(shell.run("touch started; sleep 30"))
    await wait_for_file(tmp_path / "started")
    await shell.interrupt()
    async with asyncio.timeout(5):
        assert (await running).interrupted
    exited = await shell.run("exit 4")
    assert (exited.exit_code, exited.shell_restarted) == (4, True)
    assert (await shell.run("echo again")).output == "again\n"


async def test_a_cancelled_call_leaves_its_command_running_until_interrupted(
    shell: HostShell, tmp_path: Path
) -> None:
    running = asyncio.create_task(shell.run("echo early; touch started; sleep 30; echo late"))
    await wait_for_file(tmp_path / "started")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    with pytest.raises(CommandRunningError):  # the caller gave up waiting, not the command
        await shell.run("echo next")
    await shell.interrupt()
    result = await shell.run("echo next")
    assert result.output == "next\n"
    assert result.previous is not None  # what the abandoned command printed is not lost
    assert (result.previous.output, result.previous.interrupted) == ("early\n", True)


async def test_input_a_command_does_not_read_is_bounded(shell: HostShell) -> None:
    """Input waits in the command's pipe; past what the pipe holds, more is refused (never a
    write that blocks)."""
    assert (await shell.run("sleep 30", wait=Wait(quiet=0.2))).running
    for _ in range(8):
        await shell.send_input(b"x" * MAX_INPUT_BYTES)
    with pytest.raises(SandboxError, match="the most it takes"):
        await shell.send_input(b"y\n")
    with pytest.raises(ValueError, match="at a time"):
        await shell.send_input(b"z" * (MAX_INPUT_BYTES + 1))
    await shell.interrupt()
    assert (await shell.run("echo next")).output == "next\n"

"""Commands that outlive their call, background jobs, Ctrl-C, long commands and a sandbox at its
process limit, against a real Docker engine (issue 18)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.changes import md5
from core.errors import CommandRunningError, SandboxError
from core.output import OutputFile
from core.protocols import MAX_COMMAND_BYTES, Wait
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory
from tests.support.waits import wait_for_command_end

pytestmark = pytest.mark.docker

ALIVE = "for p in {pids}; do [ -d /proc/$p ] && echo alive || echo gone; done"


async def test_a_timeout_kills_the_foreground_job_and_spares_background_jobs(sandbox: DockerSandbox) -> None:
    """The issue's case: `python3 -m http.server &` died when an unrelated `sleep 20` timed out."""
    started = await sandbox.run(
        "python3 -m http.server 8000 >/tmp/server.log 2>&1 & echo $! >/tmp/server.pid; "
        "nohup sleep 300 >/dev/null 2>&1 & echo $! >/tmp/nohup.pid"
    )
    assert started.exit_code == 0
    result = await sandbox.run("sleep 20; echo after", timeout=1)
    assert result.timed_out and not result.shell_restarted and "after" not in result.output
    pids = "$(cat /tmp/server.pid) $(cat /tmp/nohup.pid)"
    assert (await sandbox.run(ALIVE.format(pids=pids))).output == "alive\nalive\n"
    # in the same command too: the job started before the foreground one lives on
    result = await sandbox.run("sleep 200 & echo $! >/tmp/same.pid; sleep 30", timeout=1)
    assert result.timed_out
    checks = await sandbox.run(
        ALIVE.format(pids="$(cat /tmp/same.pid)") + "; ps -e -o args= | grep -c '^sleep 30$'"
    )
    assert checks.output == "alive\n0\n"


async def test_a_pipeline_and_a_command_substitution_are_stopped_whole(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    for command in (
        "sleep 101 | cat | sleep 102",
        "x=$(sleep 103; echo y); echo $x",
        "(sleep 104 & sleep 105)",
    ):
        result = await sandbox.run(command, timeout=0.5)
        assert result.timed_out and not result.shell_restarted, command
    left = await sandbox.run("ps -e -o args= | grep -c '^sleep 10[1-5]$'; pwd")
    assert left.output == "0\n/workspace/pkg\n"


async def test_a_quiet_command_returns_early_and_runs_on(sandbox: DockerSandbox) -> None:
    result = await sandbox.run("echo one; sleep 1.5; echo two", timeout=30, wait=Wait(quiet=0.3))
    assert (result.output, result.running, result.exit_code, result.timed_out) == ("one", True, None, False)
    with pytest.raises(CommandRunningError) as refused:
        await sandbox.run("echo meanwhile")
    assert refused.value.command == "echo one; sleep 1.5; echo two"
    assert sandbox.running_command() is not None
    rest = await sandbox.wait_for_command(wait=Wait(quiet=10))
    assert (rest.output, rest.running, rest.exit_code) == ("\ntwo\n", False, 0)
    assert rest.elapsed >= 1.5
    assert sandbox.running_command() is None
    with pytest.raises(CommandRunningError):  # nothing left to wait for
        await sandbox.wait_for_command(wait=Wait(quiet=1))


async def test_at_most_bounds_a_chatty_command(sandbox: DockerSandbox) -> None:
    result = await sandbox.run(
        "while :; do echo tick; sleep 0.1; done", timeout=30, wait=Wait(at_most=0.6, quiet=5)
    )
    assert result.running and "tick" in result.output
    await sandbox.interrupt()
    end = await sandbox.wait_for_command(wait=Wait(quiet=5))
    assert end.interrupted and not end.running
    assert (await sandbox.run("echo free")).output == "free\n"


async def test_ctrl_c_reaches_the_program_as_sigint(sandbox: DockerSandbox) -> None:
    running = await sandbox.run(
        "python3 -c 'import time; print(\"ready\", flush=True); time.sleep(60)'; echo after",
        timeout=60,
        wait=Wait(quiet=0.5),
    )
    assert running.running and running.output.startswith("ready")
    await sandbox.interrupt()
    end = await sandbox.wait_for_command(wait=Wait(quiet=5))
    assert end.interrupted and end.exit_code is None and not end.shell_restarted
    assert "KeyboardInterrupt" in end.output  # the program saw Ctrl-C, not a kill
    assert "after" not in end.output  # the rest of the command line is abandoned


async def test_a_command_that_ends_between_calls_is_reported_with_the_next(sandbox: DockerSandbox) -> None:
    first = await sandbox.run("sleep 0.6; echo late; (exit 3)", wait=Wait(quiet=0.2))
    assert first.running
    await wait_for_command_end(sandbox)
    second = await sandbox.run("echo second")
    assert second.output == "second\n"
    assert second.previous is not None
    assert (second.previous.output, second.previous.exit_code) == ("late\n", 3)


async def test_set_e_lasts_for_one_command(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg && export KEPT=1")
    assert (await sandbox.run("set -e")).exit_code == 0
    failed = await sandbox.run("false")
    assert (failed.exit_code, failed.shell_restarted) == (1, False)
    assert (await sandbox.run('pwd; echo "$KEPT"')).output == "/workspace/pkg\n1\n"


async def test_a_cut_output_is_readable_inside_the_sandbox(sandbox: DockerSandbox, tmp_path: Path) -> None:
    result = await sandbox.run("seq 1 50000", output_file=OutputFile(tmp_path / "call-7.txt", 10**9))
    assert result.truncated and result.sandbox_output_path == "/tmp/sidehand/output/call-7.txt"
    assert str(tmp_path) not in result.output  # no host path for the model
    whole = await sandbox.run(f"wc -l < {result.sandbox_output_path}; tail -n 1 {result.sandbox_output_path}")
    assert whole.output == "50000\n50000\n"


async def test_a_long_command_goes_through_the_file_channel(sandbox: DockerSandbox) -> None:
    line = "x" * 99 + "\n"
    body = line * (1_000_000 // len(line))
    command = f"cat > big.txt <<'EOF'\n{body}EOF\nwc -c < big.txt"
    started = time.monotonic()
    result = await sandbox.run(command, timeout=20)
    assert result.output == f"{len(body)}\n" and result.exit_code == 0
    assert time.monotonic() - started < 10  # it took 7.8 s before (and 152 s for 4 MB)
    with pytest.raises(ValueError, match="longer than"):
        await sandbox.run("#" * (MAX_COMMAND_BYTES + 1))
    assert (await sandbox.run("echo still")).output == "still\n"


async def test_a_long_command_is_timed_from_its_start(sandbox: DockerSandbox) -> None:
    big = "true\n" * 100_000 + "sleep 30"
    started = time.monotonic()
    result = await sandbox.run(big, timeout=1)
    assert result.timed_out
    assert time.monotonic() - started < 6


@pytest.fixture
async def small_sandbox(docker_client: Any, workspace: Path) -> AsyncIterator[DockerSandbox]:
    factory = DockerSandboxFactory(
        SandboxSettings(pids_limit=64, kill_grace=0.5), docker_client=docker_client
    )
    box = await factory(workspace, "fork-bomb")
    try:
        yield box
    finally:
        await box.close()


async def test_a_fork_bomb_restarts_the_sandbox_and_keeps_its_files(small_sandbox: DockerSandbox) -> None:
    box = small_sandbox
    await box.run("echo before > kept.txt && cd pkg && export GONE=1")
    assert await box.collect_changes() == {"kept.txt": b"before\n"}
    bomb = await box.run(":(){ :|:& };:")
    assert bomb.exit_code == 0  # it went to the background
    # The next command starts while the bomb fills the process table (it may fail half-way);
    # within a second the sandbox is restarted, and the result says so.
    hit = await box.run("sleep 5; echo slept", timeout=30)
    assert hit.sandbox_restarted and box.restarts == 1 and "slept" not in hit.output
    after = await box.run('echo alive; pwd; echo "gone=${GONE-}"; cat /workspace/kept.txt', timeout=30)
    assert after.output == "alive\n/workspace\ngone=\nbefore\n"
    assert not after.sandbox_restarted  # said once
    # everything works again: the file channel, the watcher (a change is reported), processes
    await box.write_file("/workspace/new.txt", b"new\n")
    await box.run("echo more >> kept.txt")
    assert await box.collect_changes() == {"new.txt": b"new\n", "kept.txt": b"before\nmore\n"}
    count = await box.run("ps -e --no-headers | wc -l")
    assert int(count.output) < 20 and box.restarts == 1


async def test_a_fork_bomb_in_a_tmpfs_sandbox_never_reads_as_deleting_files(
    docker_client: Any, workspace: Path
) -> None:
    """A restart empties an in-memory /workspace: it is filled from the host again, and the
    session is told to put its change set back; nothing reads as deleted."""
    settings = SandboxSettings(pids_limit=64, kill_grace=0.5, tmpfs="64m")
    box = await DockerSandboxFactory(settings, docker_client=docker_client)(workspace, "tmpfs-bomb")
    try:
        await box.run("echo mine > agent.txt && echo changed >> README.md")
        assert set(await box.collect_changes()) == {"agent.txt", "README.md"}
        assert not box.take_refilled()
        await box.run(":(){ :|:& };:")
        hit = await box.run("sleep 5; echo slept", timeout=30)
        assert hit.sandbox_restarted and box.restarts == 1
        assert box.take_refilled() and not box.take_refilled()  # once
        after = await box.run("cat README.md pkg/mod.py; ls agent.txt 2>&1 | grep -c 'No such'", timeout=30)
        assert after.output == "# demo\n\nline three\ndef f():\n    return 1\n1\n"  # the host's files
        assert box.copied["README.md"] == md5(b"# demo\n\nline three\n")
        assert await box.collect_changes() == {}  # the host's files, as copied: no deletion, no revert
        await box.put_files({"agent.txt": b"mine\n"})  # what the session's restore does
        assert (await box.run("cat agent.txt")).output == "mine\n"
    finally:
        await box.close()


async def test_a_fork_bomb_in_the_foreground_is_stopped_by_ctrl_c(small_sandbox: DockerSandbox) -> None:
    box = small_sandbox
    running = await box.run(":(){ :|: ; };:", timeout=60, wait=Wait(at_most=1))
    assert running.running
    await box.interrupt()
    end = await box.wait_for_command(wait=Wait(quiet=5))
    assert not end.running
    assert (await box.run("echo ok", timeout=30)).output == "ok\n"


async def test_input_goes_only_into_the_commands_own_pipe(sandbox: DockerSandbox) -> None:
    await sandbox.run("rm -rf /tmp/sidehand")  # the model removed the shell's files: made again
    asked = await sandbox.run("read x; echo got $x", timeout=30, wait=Wait(quiet=0.3))
    assert asked.running
    await sandbox.send_input(b"one\n")
    assert (await sandbox.wait_for_command(wait=Wait(quiet=5))).output == "got one\n"
    # the pipe's path replaced by a link to a workspace file: input is refused, the file untouched
    hijack = "p=$(ls /tmp/sidehand/stdin-*); rm $p; ln -s /workspace/README.md $p; read x"
    assert (await sandbox.run(hijack, timeout=30, wait=Wait(quiet=0.5))).running
    with pytest.raises(SandboxError, match="input pipe"):
        await sandbox.send_input(b"rm -rf /\n")
    await sandbox.interrupt()
    assert (await sandbox.read_file("/workspace/README.md")) == b"# demo\n\nline three\n"

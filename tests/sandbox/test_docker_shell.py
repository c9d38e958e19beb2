"""The persistent shell of the Docker sandbox, against a real engine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.errors import SandboxError
from core.output import OutputFile
from core.protocols import Wait
from sandbox.docker_sandbox import DockerSandbox
from tests.sandbox.conftest import OUTPUT_LIMIT
from tests.support.waits import wait_for_path

pytestmark = pytest.mark.docker


async def test_cwd_and_environment_persist(sandbox: DockerSandbox) -> None:
    assert (await sandbox.run("pwd")).output == "/workspace\n"
    await sandbox.run("cd pkg && export GREETING='hello there'")
    result = await sandbox.run('pwd; echo "$GREETING"')
    assert result.output == "/workspace/pkg\nhello there\n"
    assert result.exit_code == 0


async def test_exit_codes_and_a_failing_command(sandbox: DockerSandbox) -> None:
    assert (await sandbox.run("true")).exit_code == 0
    assert (await sandbox.run("sh -c 'exit 42'")).exit_code == 42
    failed = await sandbox.run("ls /no/such/place")
    assert failed.exit_code == 2
    assert "No such file or directory" in failed.output  # stderr is in the output
    assert not failed.timed_out and not failed.shell_restarted


async def test_a_syntax_error_does_not_break_the_shell(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    for broken in ("if then fi", "echo 'unclosed", 'echo "unclosed', "(", "done"):
        result = await sandbox.run(broken)
        assert result.exit_code == 2, broken
        assert "syntax error" in result.output or "unexpected" in result.output
    after = await sandbox.run("pwd")
    assert (after.output, after.shell_restarted) == ("/workspace/pkg\n", False)


async def test_quotes_heredocs_and_output_without_a_final_newline(sandbox: DockerSandbox) -> None:
    quoted = await sandbox.run("""printf '%s|' 'it'"'"'s' "double \\"q\\"" '$HOME' "a  b"; echo""")
    assert quoted.output == 'it\'s|double "q"|$HOME|a  b|\n'
    heredoc = await sandbox.run("cat <<'EOF' > note.txt\nline 'one'\n$NOT_EXPANDED\nEOF\ncat note.txt")
    assert heredoc.output == "line 'one'\n$NOT_EXPANDED\n"
    assert (await sandbox.run("printf 'no newline'")).output == "no newline"


async def test_a_command_waiting_for_input_gets_it(sandbox: DockerSandbox) -> None:
    """Its stdin is a pipe: a prompt waits (the call returns with the prompt), input answers it,
    and no later request is ever read as input."""
    asked = await sandbox.run(
        'printf "name? "; read name; echo "hello $name"; read more; echo "then $more"',
        timeout=30,
        wait=Wait(quiet=0.5),
    )
    assert (asked.output, asked.running, asked.exit_code) == ("name? ", True, None)
    await sandbox.send_input(b"Ada\n")
    mid = await sandbox.wait_for_command(wait=Wait(quiet=0.5))
    # (a newline at the end may be the start of the end marker: it comes with what follows)
    assert (mid.output, mid.running) == ("hello Ada", True)
    await sandbox.send_input(b"tea\n")
    done = await sandbox.wait_for_command(wait=Wait(quiet=5))
    assert (done.output, done.running, done.exit_code) == ("\nthen tea\n", False, 0)
    assert (await sandbox.run("echo next; cat </dev/null")).output == "next\n"


async def test_a_command_that_times_out_is_killed_and_the_shell_survives(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg; export KEPT=yes")
    started = time.monotonic()
    result = await sandbox.run("echo before; sleep 30; echo after", timeout=1)
    assert time.monotonic() - started < 5
    assert result.timed_out and result.exit_code is None
    assert "before\n" in result.output
    assert "after\n" not in result.output
    assert not result.shell_restarted
    after = await sandbox.run('pwd; echo "$KEPT"; ps -e -o args= | grep -c "^sleep 30$" || true')
    assert after.output.splitlines() == ["/workspace/pkg", "yes", "0"]


async def test_a_loop_of_builtins_is_stopped_too(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    result = await sandbox.run("while :; do :; done; echo finished", timeout=0.5)
    assert result.timed_out and not result.shell_restarted
    assert "finished" not in result.output
    assert (await sandbox.run("pwd")).output == "/workspace/pkg\n"


async def test_a_command_that_wedges_the_shell_restarts_it(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    result = await sandbox.run("trap '' USR2; while :; do :; done", timeout=0.5)
    assert result.timed_out and result.shell_restarted
    assert (await sandbox.run("pwd")).output == "/workspace\n"


async def test_exit_restarts_the_shell(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    result = await sandbox.run("exit 3")
    assert (result.exit_code, result.shell_restarted) == (3, True)
    assert result.output == ""  # facts only: the bash tool says what happened, once
    after = await sandbox.run("pwd")
    assert (after.output, after.exit_code, after.shell_restarted) == ("/workspace\n", 0, False)


async def test_interrupt_stops_a_running_command_quickly(sandbox: DockerSandbox) -> None:
    await sandbox.run("cd pkg")
    running = asyncio.create_task(sandbox.run("echo started; touch /tmp/started; sleep 30"))
    await wait_for_path(sandbox, "/tmp/started")
    started = time.monotonic()
    await sandbox.interrupt()
    async with asyncio.timeout(5):
        result = await running
    assert time.monotonic() - started < 2
    assert result.interrupted and result.exit_code is None
    assert "started" in result.output
    assert (await sandbox.run("pwd")).output == "/workspace/pkg\n"


async def test_closing_during_a_command_ends_it(sandbox: DockerSandbox) -> None:
    running = asyncio.create_task(sandbox.run("touch /tmp/started; sleep 30"))
    await wait_for_path(sandbox, "/tmp/started")
    async with asyncio.timeout(10):
        await sandbox.close()
        with pytest.raises(SandboxError, match="closed"):
            await running


async def test_interrupt_with_nothing_running_is_harmless(sandbox: DockerSandbox) -> None:
    await sandbox.interrupt()
    assert (await sandbox.run("echo ok")).output == "ok\n"


async def test_long_output_keeps_head_and_tail_and_the_full_file(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    full = tmp_path / "out" / "full.log"
    result = await sandbox.run("seq 1 100000", output_file=OutputFile(full, 10**9))
    expected = "".join(f"{i}\n" for i in range(1, 100_001))
    assert result.truncated and result.full_output_path == full
    assert full.read_text() == expected
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("99999\n100000\n")
    assert "truncated" in result.output
    assert len(result.output) < OUTPUT_LIMIT + 200


async def test_short_output_is_whole_and_names_no_file(sandbox: DockerSandbox, tmp_path: Path) -> None:
    result = await sandbox.run("echo short", output_file=OutputFile(tmp_path / "full.log", 10**9))
    assert (result.output, result.truncated, result.full_output_path) == ("short\n", False, None)


async def test_binary_and_invalid_utf8_output_does_not_break_framing(sandbox: DockerSandbox) -> None:
    result = await sandbox.run("head -c 3000 /dev/urandom >/dev/null; printf '\\377\\376ok\\000x'")
    assert result.exit_code == 0
    assert result.output.endswith("ok\x00x")

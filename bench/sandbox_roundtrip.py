"""Sandbox round trips against a persistent bash on the host, measured in the same run (issue 2):

- a shell builtin (`echo hi` is a bash builtin) in the Docker sandbox's persistent shell vs the same
  marker protocol over a local bash (HostShell) (target <= 3x);
- a real program (`/bin/echo hi`) in the sandbox vs the host (target <= 1.2x);
- a new sandbox (image present, small workspace) to its first command result (target <= 0.5 s),
  with where the start-up time goes.

Run: python -m bench.sandbox_roundtrip [--rounds 300]"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.protocols import CommandResult
from sandbox.docker_sandbox import DockerSandbox, DockerSandboxFactory
from sandbox.host_shell import HostShell

Run = Callable[[str], Awaitable[CommandResult]]


async def round_trips(run: Run, command: str, rounds: int) -> list[float]:
    for _ in range(20):  # warm up
        await run(command)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = await run(command)
        times.append(time.perf_counter() - start)
        assert result.exit_code == 0, result
        assert result.output.strip() == "hi", result
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.9)] * 1e3


async def main_async(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        for i in range(20):
            (workspace / f"file{i}.py").write_text(f"x = {i}\n" * 20)
        factory = DockerSandboxFactory()
        await (await factory(workspace, "bench-warmup", Path(tmp))).close()  # engine connection, reaper

        cold = []
        for i in range(5):
            start = time.perf_counter()
            box = await factory(workspace, f"bench-start-{i}", Path(tmp))
            await box.run("echo hi")
            cold.append(time.perf_counter() - start)
            steps = box.startup_seconds if isinstance(box, DockerSandbox) else {}
            await box.close()
        sandbox = await factory(workspace, "bench", Path(tmp))
        host = HostShell(workspace)
        await host.start()
        try:
            print(f"{'':34} {'sandbox ms (p50/p90)':>22} {'host ms (p50/p90)':>20} {'ratio p50':>10} target")
            for label, command, target in (
                ("builtin `echo hi`", "echo hi", "<= 3x"),
                ("program `/bin/echo hi`", "/bin/echo hi", "<= 1.2x"),
            ):
                # interleave the two so both see the same machine load
                s_times: list[float] = []
                h_times: list[float] = []
                for _ in range(5):
                    s_times += await round_trips(sandbox.run, command, rounds // 5)
                    h_times += await round_trips(host.run, command, rounds // 5)
                s50, s90 = summary(s_times)
                h50, h90 = summary(h_times)
                print(
                    f"{label:34} {s50:>10.3f} / {s90:<9.3f} {h50:>9.3f} / {h90:<8.3f} {s50 / h50:>10.2f} {target}"
                )
        finally:
            await host.close()
            await sandbox.close()
        print(
            f"new sandbox -> first command result: median {statistics.median(cold):.3f} s "
            f"(min {min(cold):.3f} s) over {len(cold)}; target <= 0.5 s"
        )
        print("  last start-up by step (s): " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(main_async(parser.parse_args().rounds))


if __name__ == "__main__":
    main()

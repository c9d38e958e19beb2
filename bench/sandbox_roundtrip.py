"""Sandbox round trips against a local-bash baseline measured in the same run.

    python bench/sandbox_roundtrip.py [--iterations 300] [--starts 10] [--image IMAGE]

(a) a shell builtin (`:`) through the Docker sandbox's persistent shell vs the same protocol over a
    local bash (HostShell)                                              target: <= 3x
(b) `/bin/echo hi` (a process start) in both                          target: <= 1.2x
(c) a new sandbox (image present, small workspace) to its first command's result, with where the
    time goes                                                           target: <= 0.5 s

Not a test: it prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.config import DEFAULT_IMAGE
from core.protocols import CommandResult
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandboxFactory
from sandbox.host_shell import HostShell

Run = Callable[[str], Awaitable[CommandResult]]


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


async def timed_pairs(
    host: Run, sandbox: Run, command: str, iterations: int
) -> tuple[list[float], list[float]]:
    """Interleaved samples (host, sandbox, sandbox, host, ...), so a burst of load elsewhere on the
    machine lands on both sides instead of skewing the ratio."""
    for _ in range(min(20, iterations)):  # warm-up: page cache, lazy imports, first-use paths
        await host(command)
        await sandbox(command)
    samples: tuple[list[float], list[float]] = ([], [])
    for n in range(iterations):
        order = (0, 1) if n % 2 == 0 else (1, 0)
        for side in order:
            run = (host, sandbox)[side]
            start = time.perf_counter()
            result = await run(command)
            samples[side].append(time.perf_counter() - start)
            assert result.exit_code == 0, result
    return samples


def make_workspace(root: Path) -> Path:
    workspace = root / "ws"
    (workspace / "src").mkdir(parents=True)
    for n in range(20):
        (workspace / "src" / f"mod{n}.py").write_text(f"def f{n}():\n    return {n}\n" * 20)
    (workspace / "README.md").write_text("# bench\n")
    return workspace


async def round_trips(factory: DockerSandboxFactory, workspace: Path, root: Path, iterations: int) -> None:
    host = HostShell(workspace)
    await host.start()
    sandbox = await factory(workspace, "bench-roundtrip")
    try:
        print(f"round trips, {iterations} iterations each     median        p90   ratio(median)")
        for label, command, target in (
            ("(a) builtin `:`", ":", 3.0),
            ("(b) /bin/echo hi", "/bin/echo hi", 1.2),
        ):
            host_samples, box_samples = await timed_pairs(host.run, sandbox.run, command, iterations)
            host_median, host_p90 = summary(host_samples)
            box_median, box_p90 = summary(box_samples)
            ratio = box_median / host_median
            verdict = "meets" if ratio <= target else "MISSES"
            print(f"  {label:<20} host bash  {host_median * 1e3:8.3f} ms {host_p90 * 1e3:8.3f} ms")
            print(
                f"  {'':<20} sandbox    {box_median * 1e3:8.3f} ms {box_p90 * 1e3:8.3f} ms"
                f"   {ratio:5.2f}x  ({verdict} target <= {target}x)"
            )
        file_samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            await sandbox.read_file("README.md")
            file_samples.append(time.perf_counter() - start)
        median, p90 = summary(file_samples)
        print(f"  {'read_file (small)':<20} sandbox    {median * 1e3:8.3f} ms {p90 * 1e3:8.3f} ms")
    finally:
        await host.close()
        await sandbox.close()


async def start_ups(factory: DockerSandboxFactory, workspace: Path, root: Path, starts: int) -> None:
    print(f"\n(c) new sandbox to first command result, {starts} starts (target <= 0.5 s)")
    totals: list[float] = []
    steps: dict[str, list[float]] = {}
    closes: list[float] = []
    for n in range(starts):
        start = time.perf_counter()
        sandbox = await factory(workspace, f"bench-start-{n}")
        before_command = time.perf_counter()
        result = await sandbox.run("echo ready")
        done = time.perf_counter()
        assert result.output == "ready\n", result
        totals.append(done - start)
        for step, seconds in sandbox.startup_seconds.items():
            steps.setdefault(step, []).append(seconds)
        steps.setdefault("first command", []).append(done - before_command)
        await sandbox.close()
        closes.append(time.perf_counter() - done)
    median, p90 = summary(totals)
    verdict = "meets" if median <= 0.5 else "MISSES"
    print(f"  total                 median {median:6.3f} s   p90 {p90:6.3f} s   ({verdict} target)")
    print("  where it goes (medians; copy_workspace runs alongside start):")
    for step, samples in steps.items():
        print(f"    {step:<18} {statistics.median(samples) * 1e3:8.1f} ms")
    print(f"  (close, not counted: {statistics.median(closes) * 1e3:.1f} ms)")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", "--rounds", type=int, default=300)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument(
        "--image", default=None, help="sandbox image (default: $SIDEHAND_SANDBOX_IMAGE or the base)"
    )
    args = parser.parse_args()
    image = args.image or os.environ.get("SIDEHAND_SANDBOX_IMAGE") or DEFAULT_IMAGE
    factory = DockerSandboxFactory(SandboxSettings(image=image))
    with tempfile.TemporaryDirectory(prefix="sidehand-bench-") as tmp:
        root = Path(tmp)
        workspace = make_workspace(root)
        start = time.perf_counter()
        first = await factory(workspace, "bench-first")  # connects, reaps orphans
        print(
            f"first sandbox of the process (engine connect + orphan reap): {time.perf_counter() - start:.3f} s\n"
        )
        await first.close()
        await round_trips(factory, workspace, root, args.iterations)
        await start_ups(factory, workspace, root, args.starts)
    factory.close()


if __name__ == "__main__":
    asyncio.run(main())

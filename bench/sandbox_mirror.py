"""The live mirror, checkpoints and warm start, on the real Docker sandbox, against baselines
measured in the same run.

    python -m bench.sandbox_mirror [--rounds 30] [--files 10000] [--megabytes 100]

(a) a file the user saves on the host → the sandbox holds it (the compare-and-set write returned),
    median                                                      target: <= 10 ms
(b) the agent's write in the sandbox → in the change set on the host (SessionFiles.record after
    the command), median                                        target: <= 10 ms
(c) the initial mirror of a 10,000-file / 100 MB workspace (a new sandbox's copy) against
    `tar -c | tar -x` into a folder on the engine's storage      target: <= 1.5x
(d) a checkpoint after a tool call that changed 10 files, in workspaces of 100 and 10,000 files
    (record + Checkpoint event); beside it, what a shadow git repository and a hard-link tree in
    the container cost for the same step (the alternatives docs/sandbox.md compares)
                                                                target: <= 20 ms, flat
(e) restoring a checkpoint 10 changed files back               target: <= 200 ms
(f) a ready sandbox claimed → its first command's result, against a new sandbox
                                                                target: <= 50 ms
(g) a step (a command and its record) with the mirror on against off, 10,000-file workspace,
    while nothing changes on the host                           target: <= 1.2x

Not a test: it prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from bench.session_state import no_model
from core.config import Settings
from core.host_watch import HostFile
from core.mirror import HostWatches
from core.protocols import Sandbox
from core.session import Session
from core.sessions import SessionManager
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandboxFactory


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.2f} ms"


def make_workspace(root: Path, files: int, megabytes: int = 0) -> Path:
    """`files` Python files in folders of 100; with `megabytes`, that much data spread over them."""
    workspace = root / f"ws-{files}-{megabytes}"
    filler = megabytes * (1 << 20) // files
    for n in range(files):
        folder = workspace / f"pkg{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{n}.py").write_bytes(
            f"def f{n}():\n    return {n}\n".encode() * 10 + os.urandom(filler)
        )
    return workspace


class Timed:
    """Wraps a session's sandbox: when follow_host last took a path."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.taken: dict[str, float] = {}
        self.took = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def follow_host(self, files: Mapping[str, HostFile], expect: Mapping[str, str | None]) -> set[str]:
        taken = await self.inner.follow_host(files, expect)
        now = time.perf_counter()
        for path in taken:
            self.taken[path] = now
        self.took.set()
        return taken


async def new_session(manager: SessionManager, workspace: Path) -> tuple[Session, Any]:
    session = await manager.create(workspace, kind="sandbox")
    return session, await session.sandbox()


async def host_save(manager: SessionManager, workspace: Path, rounds: int) -> None:
    timed: list[Timed] = []
    factory = manager.sandbox_factory

    class TimedFactory:
        async def __call__(self, ws: Path, session_id: str) -> Sandbox:
            timed.append(Timed(await factory(ws, session_id)))
            return timed[-1]

        async def reap(self) -> int:
            return 0

        async def prewarm(self, ws: Path, watch: Any) -> None:
            pass

        async def aclose(self) -> None:
            pass

    manager.sandbox_factory = TimedFactory()  # type: ignore[assignment]
    session, _ = await new_session(manager, workspace)
    manager.sandbox_factory = factory
    box = timed[-1]
    target = workspace / "pkg0" / "mod0.py"
    latencies = []
    for n in range(rounds):
        box.took.clear()
        started = time.perf_counter()
        target.write_text(f"saved {n}\n")
        while box.taken.get("pkg0/mod0.py", 0) < started:
            await box.took.wait()
            box.took.clear()
        latencies.append(box.taken["pkg0/mod0.py"] - started)
        await asyncio.sleep(0.02)
    seen = await box.inner.read_file("pkg0/mod0.py")
    assert seen == f"saved {rounds - 1}\n".encode(), seen
    print(
        f"(a) host save -> in the sandbox      {ms(latencies)}   (p90 {sorted(latencies)[int(rounds * 0.9)] * 1000:.1f} ms; target <= 10 ms)"
    )
    await manager.close(session.id)


async def agent_write(manager: SessionManager, workspace: Path, rounds: int) -> None:
    session, box = await new_session(manager, workspace)
    latencies = []
    for n in range(rounds):
        await box.run(f"echo {n} > pkg0/agent.txt")
        started = time.perf_counter()
        event = await session.files.record()
        latencies.append(time.perf_counter() - started)
        assert event is not None
    print(f"(b) agent write -> in the change set {ms(latencies)}   (target <= 10 ms)")
    await manager.close(session.id)


def engine_storage() -> Path:
    """A folder on the storage the engine keeps container layers on."""
    info = subprocess.run(
        ["docker", "info", "-f", "{{.DockerRootDir}}"], capture_output=True, text=True, check=True
    )
    return Path(info.stdout.strip())


async def initial_copy(manager: SessionManager, workspace: Path, rounds: int) -> None:
    copies, tars = [], []
    for _ in range(rounds):
        session, box = await new_session(manager, workspace)
        copies.append(box.startup_seconds["copy_workspace"])
        await manager.close(session.id)
        tars.append(await tar_pipe(workspace))
    ratio = statistics.median(copies) / statistics.median(tars)
    print(f"(c) initial mirror {ms(copies)}   tar|tar {ms(tars)}   {ratio:.2f}x (target <= 1.5x)")


async def tar_pipe(workspace: Path) -> float:
    """`tar -c | tar -x` of the workspace into what a container's /workspace is: an overlay mount
    whose upper layer is on the engine's storage (a plain folder there when mounting is refused)."""
    top = Path(tempfile.mkdtemp(prefix="sidehand-bench-tar-", dir=engine_storage()))
    merged = top / "merged"
    for name in ("lower", "upper", "work", "merged"):
        (top / name).mkdir()
    options = f"lowerdir={top / 'lower'},upperdir={top / 'upper'},workdir={top / 'work'}"
    mounted = await asyncio.create_subprocess_exec(
        "mount", "-t", "overlay", "overlay", "-o", options, str(merged)
    )
    overlay = await mounted.wait() == 0
    if not overlay:
        print("    (could not mount an overlay: the baseline is a plain folder on the engine's storage)")
    try:
        started = time.perf_counter()
        tar = await asyncio.create_subprocess_shell(f"tar -C {workspace} -cf - . | tar -C {merged} -xf -")
        assert await tar.wait() == 0
        return time.perf_counter() - started
    finally:
        if overlay:
            await (await asyncio.create_subprocess_exec("umount", str(merged))).wait()
        shutil.rmtree(top)


async def checkpoints(manager: SessionManager, small: Path, large: Path, rounds: int) -> None:
    for workspace in (small, large):
        await checkpoint_cost(manager, workspace, rounds)


async def checkpoint_cost(manager: SessionManager, workspace: Path, rounds: int) -> None:
    session, box = await new_session(manager, workspace)
    costs, gits, links = [], [], []
    for n in range(rounds):
        await box.run(" ".join(f"echo {n} > pkg0/mod{k}.py;" for k in range(10)))
        started = time.perf_counter()
        await session.after_tool(f"bash: step {n}")
        costs.append(time.perf_counter() - started)
    # The alternatives, in the same container: a shadow git repository, a hard-link tree.
    git = "git --git-dir=/tmp/shadow --work-tree=/workspace -c user.email=b@b -c user.name=b"
    made = await box.run(f"git init -q --bare /tmp/shadow && {git} add -A && {git} commit -qm 0")
    assert made.exit_code == 0, made.output
    for n in range(min(rounds, 10)):
        await box.run(" ".join(f"echo g{n} > pkg0/mod{k}.py;" for k in range(10)))
        started = time.perf_counter()
        committed = await box.run(f"{git} add -A && {git} commit -qm {n}")
        gits.append(time.perf_counter() - started)
        assert committed.exit_code == 0, committed.output
        started = time.perf_counter()
        linked = await box.run(f"cp -al /workspace /tmp/links{n}")
        links.append(time.perf_counter() - started)
        assert linked.exit_code == 0, linked.output
    await manager.close(session.id)
    files = sum(1 for _ in workspace.rglob("*.py"))
    print(
        f"(d) checkpoint, {files:>6} files, 10 changed: log {ms(costs)}   shadow git {ms(gits)}   "
        f"hard-link tree {ms(links)}   (target <= 20 ms, flat)"
    )


async def restore(manager: SessionManager, workspace: Path, rounds: int) -> None:
    session, box = await new_session(manager, workspace)
    await session.after_tool("start")
    await box.run(" ".join(f"echo changed > pkg0/mod{k}.py;" for k in range(10)))
    await session.after_tool("ten files")
    durations = []
    for n in range(rounds):
        started = time.perf_counter()
        report = await session.restore_checkpoint("1" if n % 2 == 0 else "2")
        durations.append(time.perf_counter() - started)
        assert len(report.paths) == 10, report
    print(f"(e) restore, 10 files                {ms(durations)}   (target <= 200 ms)")
    await manager.close(session.id)


async def warm_claim(settings: Settings, workspace: Path, rounds: int) -> None:
    factory = DockerSandboxFactory(SandboxSettings.from_settings(settings, pool=1))
    watches = HostWatches(settings)
    watch = await watches.acquire(workspace)
    warm, cold = [], []
    try:
        await factory.prewarm(workspace, watch)
        for n in range(rounds):
            while factory.pool.ready < 1:  # noqa: ASYNC110  (the pool has no event to wait on)
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            box = await factory(workspace, f"warm-{n}")
            await box.run("true")
            warm.append(time.perf_counter() - started)
            await box.close()
            started = time.perf_counter()
            box = await factory._new(workspace, f"cold-{n}")
            await box.run("true")
            cold.append(time.perf_counter() - started)
            await box.close()
    finally:
        await factory.aclose()
        await watches.aclose()
    print(f"(f) ready sandbox -> first result    {ms(warm)}   new sandbox {ms(cold)}   (target <= 50 ms)")


async def step_cost(root: Path, workspace: Path, rounds: int) -> None:
    medians: dict[bool, list[float]] = {}
    for mirror in (False, True, False, True):
        settings = Settings(sessions_dir=root / "sessions", sandbox_idle_timeout=0, sandbox_mirror=mirror)
        manager = SessionManager(
            settings, DockerSandboxFactory(SandboxSettings.from_settings(settings)), no_model
        )
        try:
            session, box = await new_session(manager, workspace)
            steps = []
            for n in range(rounds):
                started = time.perf_counter()
                await box.run(f"echo {n} > step.txt")
                await session.after_tool("step")
                steps.append(time.perf_counter() - started)
            medians.setdefault(mirror, []).append(statistics.median(steps))
        finally:
            await manager.aclose()
    on, off = min(medians[True]), min(medians[False])
    print(
        f"(g) a step, mirror on {on * 1000:.2f} ms   off {off * 1000:.2f} ms   {on / off:.2f}x (target <= 1.2x)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--only", default="abcdefg", help="which measures, by letter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sidehand-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(sessions_dir=root / "sessions", sandbox_idle_timeout=0)
        small, large = make_workspace(root, 100), make_workspace(root, args.files)
        manager = SessionManager(
            settings, DockerSandboxFactory(SandboxSettings.from_settings(settings)), no_model
        )
        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "a": lambda: host_save(manager, large, args.rounds),
            "b": lambda: agent_write(manager, large, args.rounds),
            "c": lambda: initial_copy(manager, make_workspace(root, args.files, args.megabytes), 5),
            "d": lambda: checkpoints(manager, small, large, args.rounds),
            "e": lambda: restore(manager, large, args.rounds),
            "f": lambda: warm_claim(settings, large, min(args.rounds, 10)),
            "g": lambda: step_cost(root, large, args.rounds),
        }
        try:
            for letter in args.only:
                await steps[letter]()
        finally:
            await manager.aclose()


if __name__ == "__main__":
    asyncio.run(main())

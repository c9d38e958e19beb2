"""What keeping a session's sandbox work in its log costs, on the real Docker sandbox, against
baselines measured in the same run.

    python -m bench.session_state [--steps 30] [--workspace-files 100 10000]

(a) recording a step's changes (SessionFiles.record: the watcher's sync, the changed files read,
    their blobs kept, one event) in a session that has edited 1, 100 and 1,000 files, in a small
    and a large workspace; for a step that changed nothing and one that changed a file; against a
    round trip of the sandbox's own shell (`:`)                target: <= 5 ms at 100 edited files,
                                                               not growing with the workspace
(b) a loaded session's sandbox (a copy of the host + its 100 changed files put back) against a
    fresh sandbox for a new session                             target: <= 1.5x
(c) applying 1,500 files (journaled, checked, never through a symlink) against a plain copy of
    the same files with shutil                                  target: <= 2x

Not a test: it prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from core.config import Settings
from core.messages import ChatMessage, LLMReply, ToolSpec
from core.protocols import LLM, TextSink
from core.sessions import SessionManager
from sandbox.container import SandboxSettings
from sandbox.docker_sandbox import DockerSandboxFactory


class NoModel:
    """These measures call no model."""

    model = "none"

    async def complete(
        self, messages: list[ChatMessage], tools: list[ToolSpec], *, on_text: TextSink | None = None
    ) -> LLMReply:
        raise AssertionError("no model in this benchmark")

    async def supports_tools(self) -> bool | None:
        return None

    async def aclose(self) -> None:
        pass


def no_model(settings: Settings) -> LLM:
    return NoModel()  # type: ignore[return-value]  # complete() takes lists, not Sequences


def make_workspace(root: Path, files: int) -> Path:
    workspace = root / f"ws{files}"
    for n in range(files):
        folder = workspace / f"pkg{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{n}.py").write_text(f"def f{n}():\n    return {n}\n" * 10)
    return workspace


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:6.2f} ms"


async def record_cost(manager: SessionManager, workspace: Path, edited: int, steps: int) -> None:
    session = await manager.create(workspace, kind="sandbox")
    sandbox = await session.sandbox()
    await sandbox.run(f"mkdir -p edits && for i in $(seq 1 {edited}); do echo $i > edits/f$i.txt; done")
    await session.files.record()  # the session's edits so far (not measured)
    quiet, one, shell = [], [], []
    for step in range(steps):
        start = time.perf_counter()
        await sandbox.run(":")
        shell.append(time.perf_counter() - start)
        start = time.perf_counter()
        await session.files.record()
        quiet.append(time.perf_counter() - start)
        await sandbox.run(f"echo step {step} > edits/f1.txt")
        start = time.perf_counter()
        await session.files.record()
        one.append(time.perf_counter() - start)
    files = len(list(workspace.rglob("*.py")))
    print(
        f"  workspace {files:6d} files, {edited:5d} edited:  record, nothing changed {ms(quiet)}   "
        f"one file changed {ms(one)}   (shell round trip {ms(shell)}; "
        f"{statistics.median(one) / statistics.median(shell):.1f}x)"
    )
    await manager.close(session.id)


async def restore_cost(manager: SessionManager, workspace: Path, rounds: int) -> None:
    session = await manager.create(workspace, kind="sandbox")
    sandbox = await session.sandbox()
    await sandbox.run("mkdir -p edits && for i in $(seq 1 100); do echo changed $i > edits/f$i.txt; done")
    await session.files.record()
    await manager.close(session.id)
    fresh, loaded = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        new = await manager.create(workspace, kind="sandbox")
        await new.sandbox()
        fresh.append(time.perf_counter() - start)
        await manager.close(new.id)
        start = time.perf_counter()
        again = await manager.load(session.id)
        box = await again.sandbox()
        loaded.append(time.perf_counter() - start)
        assert await box.read_file("edits/f100.txt") == b"changed 100\n"
        await manager.close(again.id)
    print(
        f"  fresh sandbox {ms(fresh)}   loaded session's sandbox (100 files put back) {ms(loaded)}   "
        f"{statistics.median(loaded) / statistics.median(fresh):.2f}x (target <= 1.5x)"
    )


async def apply_cost(manager: SessionManager, root: Path, rounds: int) -> None:
    applied, copied = [], []
    for n in range(rounds):
        workspace = root / f"apply{n}"
        workspace.mkdir()
        session = await manager.create(workspace, kind="sandbox")
        sandbox = await session.sandbox()
        await sandbox.run("for i in $(seq 1 1500); do echo content $i > f$i.txt; done")
        await session.files.record()
        changes = await session.changes()
        start = time.perf_counter()
        report = await session.files.apply(changes)
        applied.append(time.perf_counter() - start)
        assert len(report.written) == 1500
        target = root / f"copy{n}"
        target.mkdir()
        start = time.perf_counter()
        for path in workspace.iterdir():
            shutil.copyfile(path, target / path.name)
        copied.append(time.perf_counter() - start)
        await manager.close(session.id)
    print(
        f"  apply 1,500 files {ms(applied)}   plain copy {ms(copied)}   "
        f"{statistics.median(applied) / statistics.median(copied):.2f}x (target <= 2x)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workspace-files", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sidehand-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(sessions_dir=root / "sessions", sandbox_idle_timeout=0)
        factory = DockerSandboxFactory(SandboxSettings.from_settings(settings))
        manager = SessionManager(settings, factory, no_model)
        try:
            print("(a) recording a step's changes")
            for files in args.workspace_files:
                workspace = make_workspace(root, files)
                for edited in (1, 100, 1000):
                    await record_cost(manager, workspace, edited, args.steps)
            print("(b) restoring a loaded session's sandbox")
            await restore_cost(manager, make_workspace(root, 1000), args.rounds)
            print("(c) applying")
            await apply_cost(manager, root, args.rounds)
        finally:
            await manager.aclose()
            factory.close()


if __name__ == "__main__":
    asyncio.run(main())

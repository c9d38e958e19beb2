"""Event log benchmark: append latency and replay time, each against a baseline measured in the same
run (a raw os.write of the same bytes; json.loads of the same lines). Run: python bench/eventlog.py"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from core.eventlog import EventLog, read_events
from core.events import AgentMessage, ToolCallEvent, ToolResultEvent, UserMessage


def sample_events(n: int) -> list[object]:
    out: list[object] = [UserMessage(text="Create hello.py that prints Hello from Sidehand and run it")]
    while len(out) < n:
        i = len(out)
        out.append(
            ToolCallEvent(
                call_id=f"c{i}", tool="bash", arguments='{"command": "echo step"}', title="echo step"
            )
        )
        out.append(ToolResultEvent(call_id=f"c{i}", tool="bash", output="step\n[exit code: 0]", exit_code=0))
        out.append(AgentMessage(text="Done with this step."))
    return out[:n]


def bench_append(root: Path, n: int = 10_000) -> tuple[float, float]:
    events = sample_events(n)
    log = EventLog.create(root / "append.jsonl")
    times = []
    for event in events:
        t = time.perf_counter()
        log.append(event)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t)
    log.close()
    lines = (root / "append.jsonl").read_bytes().splitlines(keepends=True)
    fd = os.open(root / "raw.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    raw = []
    for line in lines:
        t = time.perf_counter()
        os.write(fd, line)
        raw.append(time.perf_counter() - t)
    os.close(fd)
    return statistics.median(times), statistics.median(raw)


def bench_replay(root: Path, n: int = 1000, rounds: int = 30) -> tuple[float, float]:
    path = root / f"replay{n}.jsonl"
    log = EventLog.create(path)
    for event in sample_events(n):
        log.append(event)  # type: ignore[arg-type]
    log.close()
    ours, base = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        events = read_events(path)
        ours.append(time.perf_counter() - t)
        assert len(events) == n
        t = time.perf_counter()
        [json.loads(line) for line in path.read_bytes().splitlines()]
        base.append(time.perf_counter() - t)
    return statistics.median(ours), statistics.median(base)


def bench_sync(root: Path, n: int = 200) -> float:
    log = EventLog.create(root / "sync.jsonl")
    times = []
    for event in sample_events(n):
        log.append(event)  # type: ignore[arg-type]
        t = time.perf_counter()
        log.sync()
        times.append(time.perf_counter() - t)
    log.close()
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        append, raw = bench_append(root)
        print(
            f"append (10,000 events): median {append * 1e3:.4f} ms  (raw os.write {raw * 1e3:.4f} ms, ratio {append / raw:.1f}x)  target <= 0.1 ms"
        )
        replay, parse = bench_replay(root)
        print(
            f"replay (1,000 events):  median {replay * 1e3:.2f} ms  (json.loads per line {parse * 1e3:.2f} ms, ratio {replay / parse:.2f}x)  target <= 10 ms"
        )
        replay10k, parse10k = bench_replay(root, 10_000, rounds=5)
        print(
            f"replay (10,000 events): median {replay10k * 1e3:.1f} ms  (json.loads per line {parse10k * 1e3:.1f} ms)"
        )
        print(f"fsync at a step boundary: median {bench_sync(root) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()

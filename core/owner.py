"""Who owns something a process made (a session it has open, a sandbox container): this process, on
this machine, since this boot. A later process tells a live owner from a dead one, and from an
unrelated process that reused the pid (the start time differs)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    started: str  # the process's start time in clock ticks since boot ("" where unknown)

    @classmethod
    def current(cls, pid: int | None = None) -> Owner:
        pid = os.getpid() if pid is None else pid
        return cls(socket.gethostname(), boot_id(), pid, process_start_time(pid))

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Owner | None:
        """The owner `as_dict` described (boot and start time may be missing: not checked then);
        None without a host and a pid."""
        try:
            pid = int(str(data["pid"]))
            host = str(data["host"])
        except (KeyError, ValueError):
            return None
        return cls(host, str(data.get("boot", "")), pid, str(data.get("started", "")))

    def alive(self) -> bool:
        """Whether this owner still runs. Only answerable on its own host: elsewhere, say yes (a
        process on another machine sharing the store cannot be checked from here)."""
        me = Owner.current()
        if self.host != me.host:
            return True
        if self.boot and self.boot != me.boot:
            return False  # from before this machine last booted
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another user
        return not self.started or self.started == process_start_time(self.pid)


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: tells a live owner from a later process that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return ""
    return stat.rsplit(b")", 1)[-1].split()[19].decode()

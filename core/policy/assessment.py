"""What the policy says about one command or action: its risk, why, and whether it only reads; and
where a path a command writes lies (inside the sandbox's /workspace, in a scratch folder, or
elsewhere)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

Risk = Literal["low", "medium", "high"]
RISK_ORDER: dict[Risk, int] = {"low": 0, "medium": 1, "high": 2}

WORKSPACE = "/workspace"  # the sandbox's copy of the user's workspace (core.protocols.WORKDIR)
SCRATCH = ("/tmp", "/var/tmp")  # written freely: nothing there outlives the sandbox
HARMLESS_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})


@dataclass(frozen=True)
class Assessment:
    risk: Risk
    reason: str
    read_only: bool = False

    def worse(self, other: Assessment) -> Assessment:
        """The riskier of the two (ties keep self); read-only only if both are."""
        if RISK_ORDER[other.risk] > RISK_ORDER[self.risk]:
            return Assessment(other.risk, other.reason, self.read_only and other.read_only)
        return Assessment(self.risk, self.reason, self.read_only and other.read_only)


READS = Assessment("low", "reads only", read_only=True)


def medium(reason: str) -> Assessment:
    return Assessment("medium", reason)


def high(reason: str) -> Assessment:
    return Assessment("high", reason)


def worst(assessments: list[Assessment], default: Assessment = READS) -> Assessment:
    result = default
    for assessment in assessments:
        result = result.worse(assessment)
    return result


def normalize(path: str, cwd: str = WORKSPACE) -> str:
    """An absolute, `..`-free form of a sandbox path (relative paths are taken from `cwd`)."""
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd, path))


def within(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or inside it, comparing whole path components."""
    path, folder = normalize(path), normalize(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def write_target(path: str | None) -> Assessment:
    """How risky writing to `path` is: inside /workspace or a scratch folder is the sandbox's own
    business; anywhere else (the home folder, /etc, a relative path climbing out) is not."""
    if path is None:
        return medium("writes to a file named at run time")
    if path in HARMLESS_TARGETS or path.startswith("/dev/fd/"):
        return READS
    if path.startswith(("~", "$")):
        return high(f"writes outside /workspace ({path})")
    if path.startswith("/"):
        if within(path, WORKSPACE) or any(within(path, s) for s in SCRATCH):
            return medium(f"writes {path}")
        return high(f"writes outside /workspace ({path})")
    if posixpath.normpath(path).split("/")[0] == "..":
        return high(f"writes outside the working folder ({path})")
    return medium(f"writes {path}")

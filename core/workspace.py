"""The workspace's state as the log tells it: for every path the agent's side touched, its content
in the sandbox and its base (what the host had, which a change is measured against). It is a fold
of `WorkspaceDelta` and `ApplyFinished` events, so a loaded, forked or restored session knows
exactly the files the log describes, and the change set survives the sandbox.

Contents live in the session store's blobs (content-addressed by sha256); events carry refs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.changes import ChangeSet, FileChange, make_change, md5
from core.errors import UnsafePathError
from core.events import ApplyFinished, ApplyStarted, FileRef, WorkspaceDelta
from core.paths import escape_path, unescape_path
from core.store import SessionStore

WorkspaceEvent = WorkspaceDelta | ApplyStarted | ApplyFinished


@dataclass
class WorkspaceState:
    sandbox: dict[str, FileRef | None] = field(default_factory=dict)  # path -> content (None: gone)
    base: dict[str, FileRef | None] = field(default_factory=dict)  # path -> base (None: absent)
    open_apply: ApplyStarted | None = None  # an apply with no ApplyFinished yet
    # The workspace events folded so far, for the state at an earlier point (a checkpoint).
    history: list[WorkspaceEvent] = field(default_factory=list, repr=False)

    def remember(self, event: object) -> None:
        if isinstance(event, WorkspaceDelta | ApplyStarted | ApplyFinished):
            self.history.append(event)

    def at(self, seq: int) -> WorkspaceState:
        """The state as it was once the event `seq` was logged."""
        then = WorkspaceState()
        for event in self.history:
            if event.seq > seq:
                break
            if isinstance(event, WorkspaceDelta):
                then.apply_delta(event)
            elif isinstance(event, ApplyStarted):
                then.apply_started(event)
            else:
                then.apply_finished(event)
        return then

    def agent_changed(self, path: str) -> bool:
        """Whether the agent's side holds its own version of `path` (not the host's)."""
        return path in self.sandbox and _md5(self.sandbox[path]) != _md5(self.base.get(path))

    def apply_delta(self, event: WorkspaceDelta) -> None:
        for key, ref in event.sandbox.items():
            self.sandbox[unescape_path(key)] = ref
        for key, ref in event.base.items():
            self.base[unescape_path(key)] = ref

    def apply_started(self, event: ApplyStarted) -> None:
        self.open_apply = event

    def apply_finished(self, event: ApplyFinished) -> None:
        started = self.open_apply
        self.open_apply = None
        if started is None or started.apply_id != event.apply_id:
            return
        for key in event.written:
            self.base[unescape_path(key)] = started.files[key].write  # the host has it now

    def changed_paths(self) -> list[str]:
        """Paths whose sandbox content differs from their base, sorted."""
        return sorted(p for p, ref in self.sandbox.items() if _md5(ref) != _md5(self.base.get(p)))

    def sandbox_files(self) -> dict[str, FileRef | None]:
        """What to put into a new sandbox copied from the host so it holds what the log describes:
        the agent's own versions (a file it left as the host had it follows the host's copy)."""
        return {p: ref for p, ref in self.sandbox.items() if self.agent_changed(p)}


def _md5(ref: FileRef | None) -> str | None:
    return None if ref is None else ref.md5


def delta(
    reason: str, sandbox: Mapping[str, FileRef | None] = {}, base: Mapping[str, FileRef | None] = {}
) -> WorkspaceDelta:
    """A WorkspaceDelta event from unescaped paths."""
    return WorkspaceDelta.model_validate(
        {
            "reason": reason,
            "sandbox": {escape_path(p): r for p, r in sandbox.items()},
            "base": {escape_path(p): r for p, r in base.items()},
        }
    )


def change_set(
    state: WorkspaceState, store: SessionStore, read_host: Callable[[str], bytes | None]
) -> ChangeSet:
    """The changes the sandbox holds relative to their bases, with diffs against the base content
    (or the host's current file where the base content was not kept)."""
    files: list[FileChange] = []
    for path in state.changed_paths():
        new_ref, base_ref = state.sandbox[path], state.base.get(path)
        new = store.read_blob(new_ref.sha256) if new_ref is not None and new_ref.sha256 else None
        if new_ref is not None and new is None:
            continue  # the content was lost (a crash before it was stored): nothing to offer
        try:
            on_host = read_host(path)
            host_md5 = None if on_host is None else md5(on_host)
        except UnsafePathError:
            on_host, host_md5 = None, "not a regular file"  # applying will refuse it
        kept = store.read_blob(base_ref.sha256) if base_ref is not None and base_ref.sha256 else None
        old = None if base_ref is None else kept if kept is not None else on_host
        change = make_change(path, old, new)
        conflict = host_md5 != _md5(base_ref)
        host_diff = (
            make_change(path, old, on_host).diff
            if conflict and (kept is not None or base_ref is None)
            else None
        )
        files.append(
            change.model_copy(
                update={"base_md5": _md5(base_ref), "conflict": conflict, "host_diff": host_diff}
            )
        )
    return ChangeSet(files=tuple(files))

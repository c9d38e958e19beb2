"""The `editor` tool, with the semantics models are trained on (str_replace_based_edit_tool,
OpenHands' file_editor): view / create / str_replace / insert / undo_edit, `cat -n` numbering, the
unique-match rule. Lines are counted as `splitlines()` counts them, CRLF files keep their line
endings, a near-miss `old_str` is forgiven when the match stays unique, and only files under
/workspace are changed (what is elsewhere never reaches the user)."""

from __future__ import annotations

import posixpath
from typing import ClassVar, Literal

from pydantic import Field

from core.changes import make_change
from core.errors import FileTooLargeError
from core.protocols import WORKDIR
from core.tools.base import Observation, Params, Tool, ToolContext
from core.tools.text_edits import (
    Text,
    closest_region,
    find_unique,
    insert_lines,
    numbered,
    occurrence_lines,
    split_lines,
)

SNIPPET_CONTEXT = 4
MAX_VIEW_CHARS = 40_000
MAX_LISTING_CHARS = 16_000
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ECHO_CHARS = 1_000  # of an old_str quoted back in an error
SHOW_WHOLE_CHARS = 4_000  # a file no longer than this is shown when old_str matches nothing in it


class EditorParams(Params):
    command: Literal["view", "create", "str_replace", "insert", "undo_edit"] = Field(
        description="view a file or folder, create a file, str_replace text, insert text, undo_edit."
    )
    path: str = Field(
        description=f"Path of the file or folder: absolute, starting with {WORKDIR}/ (the project), or "
        f"relative to {WORKDIR}."
    )
    file_text: str | None = Field(None, description="create: the content of the new file.")
    old_str: str | None = Field(None, description="str_replace: the exact text to replace; must be unique.")
    new_str: str | None = Field(None, description="str_replace: the replacement; insert: the text to insert.")
    insert_line: int | None = Field(None, description="insert: insert after this line (0 = at the start).")
    view_range: list[int] | None = Field(
        None, description="view: [start, end] lines, 1-based, end -1 for the end of the file."
    )


class EditorError(Exception):
    pass


class EditorTool(Tool):
    name = "editor"
    description = (
        f"View, create and edit files in the sandbox. The project is in {WORKDIR}; only files there are "
        "changed for the user.\n"
        "- view: a file shows `cat -n` numbered lines (view_range to pick lines); a folder lists "
        "files 2 levels deep.\n"
        "- create: make a new file with file_text (fails if it exists).\n"
        "- str_replace: replace old_str, which must match exactly once (whitespace included), with new_str.\n"
        "- insert: insert new_str after line insert_line.\n"
        "- undo_edit: revert the last edit of the file.\n"
        "Binary files and files over 10 MB: use bash."
    )
    params: ClassVar[type[Params]] = EditorParams

    def title(self, params: Params) -> str:
        assert isinstance(params, EditorParams)
        return f"{params.command} {params.path}"

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, EditorParams)
        try:
            path = _resolve(params.path)
            if params.command != "view" and not _in_workspace(path):
                raise EditorError(
                    f"{path} is outside {WORKDIR}: the editor changes only the project's files (the ones "
                    f"the user reviews). Give a path under {WORKDIR}/; bash can write elsewhere, but such "
                    "files are not kept."
                )
            handler = getattr(self, f"_{params.command}")
            result: Observation = await handler(params, path, ctx)
            return result
        except EditorError as exc:
            return Observation(str(exc), error=True, path=params.path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            return Observation(f"{exc.strerror or exc}: {params.path}", error=True, path=params.path)

    async def _view(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        kind = await ctx.sandbox.path_kind(path)
        if kind is None:
            raise EditorError(f"The path {path} does not exist. Please provide a valid path.")
        if kind == "dir":
            if p.view_range:
                raise EditorError(
                    "The `view_range` parameter is not allowed when `path` points to a directory."
                )
            return await _list_folder(ctx, path)
        text = Text.decode(await _read_text(ctx, path)).body
        lines = split_lines(text)
        start, note = 1, ""
        if p.view_range:
            if len(p.view_range) != 2:
                raise EditorError("Invalid `view_range`. It should be a list of two integers.")
            first, last = p.view_range
            if not 1 <= first <= max(len(lines), 1):
                raise EditorError(
                    f"Invalid `view_range`: {p.view_range}. Its first element `{first}` should be within "
                    f"the range of lines of the file: [1, {len(lines)}]"
                )
            if last > len(lines):
                note = f"NOTE: We only show up to {len(lines)} since there're only {len(lines)} lines in this file.\n"
                last = -1
            if last != -1 and last < first:
                raise EditorError(
                    f"Invalid `view_range`: {p.view_range}. Its second element `{last}` should be -1 or "
                    f"between {first} and {len(lines)}"
                )
            lines = lines[first - 1 : None if last == -1 else last]
            start = first
        shown = numbered(lines, start)
        cut = ""
        if len(shown) > MAX_VIEW_CHARS:
            shown = shown[:MAX_VIEW_CHARS]
            cut = "\n[File truncated: use view_range to see the rest, or grep -n to find lines.]"
        return Observation(
            f"{note}Here's the result of running `cat -n` on {path}:\n{shown}\n{cut}", path=path
        )

    async def _create(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        if p.file_text is None:
            raise EditorError("Parameter `file_text` is required for command: create")
        kind = await ctx.sandbox.path_kind(path)
        if kind is not None:
            raise EditorError(
                f"File already exists at: {path}. Cannot overwrite files using command `create`."
            )
        new = p.file_text.encode()
        await ctx.sandbox.write_file(path, new)
        ctx.edit_history.setdefault(path, []).append(None)  # undoing a create removes the file
        return Observation(
            f"File created successfully at: {path}", path=path, diff=make_change(_rel(path), None, new).diff
        )

    async def _str_replace(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        if p.old_str is None:
            raise EditorError("Parameter `old_str` is required for command: str_replace")
        raw = await _read_text(ctx, path)
        text = Text.decode(raw)
        old_str = p.old_str.replace("\r\n", "\n") if text.crlf else p.old_str
        new_str = (p.new_str or "").replace("\r\n", "\n") if text.crlf else p.new_str or ""
        if old_str == new_str:
            raise EditorError("No replacement was performed: `old_str` and `new_str` are the same.")
        match, exact = find_unique(text.body, old_str, new_str)
        if match is None:
            raise EditorError(_no_match(path, text.body, old_str, exact))
        body = text.body[: match.start] + match.new_str + text.body[match.end :]
        at_line = text.body.count("\n", 0, match.start)
        forgiven = (
            f"\nNote: old_str did not match exactly; it matched once when ignoring {match.how}, and that "
            "text was replaced."
            if match.how
            else ""
        )
        return await self._write_edit(
            ctx, path, raw, text, body, at_line, match.new_str.count("\n"), forgiven
        )

    async def _insert(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        if p.insert_line is None:
            raise EditorError("Parameter `insert_line` is required for command: insert")
        if p.new_str is None:
            raise EditorError("Parameter `new_str` is required for command: insert")
        raw = await _read_text(ctx, path)
        text = Text.decode(raw)
        count = len(split_lines(text.body))
        if not 0 <= p.insert_line <= count:
            raise EditorError(
                f"Invalid `insert_line` parameter: {p.insert_line}. It should be within the range of "
                f"lines of the file: [0, {count}]"
            )
        new_str = p.new_str.replace("\r\n", "\n") if text.crlf else p.new_str
        body = insert_lines(text.body, p.insert_line, new_str)
        added = len(split_lines(new_str)) or 1
        return await self._write_edit(ctx, path, raw, text, body, p.insert_line, added - 1)

    async def _undo_edit(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        history = ctx.edit_history.get(path)
        if not history:
            raise EditorError(f"No edit history found for {path}.")
        current = await ctx.sandbox.read_file(path)
        previous = history.pop()
        if previous is None:
            await ctx.sandbox.delete_file(path)
            return Observation(
                f"Last edit to {path} undone successfully: the file it created was removed.",
                path=path,
                diff=make_change(_rel(path), current, None).diff,
            )
        await ctx.sandbox.write_file(path, previous)
        shown = numbered(split_lines(Text.decode(previous.decode("utf-8", "replace")).body))
        return Observation(
            f"Last edit to {path} undone successfully. Here's the result of running `cat -n` on {path}:\n"
            f"{shown}\n",
            path=path,
            diff=make_change(_rel(path), current, previous).diff,
        )

    async def _write_edit(
        self,
        ctx: ToolContext,
        path: str,
        raw: str,
        text: Text,
        body: str,
        at_line: int,
        added_lines: int,
        note: str = "",
    ) -> Observation:
        new = text.encode(body)
        old = raw.encode()
        await ctx.sandbox.write_file(path, new)
        ctx.edit_history.setdefault(path, []).append(old)
        lines = split_lines(body)
        first = max(0, at_line - SNIPPET_CONTEXT)
        last = min(len(lines), at_line + added_lines + SNIPPET_CONTEXT + 1)
        snippet = numbered(lines[first:last], first + 1)
        return Observation(
            f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet of {path}:\n"
            f"{snippet}\nReview the changes and make sure they are as expected. Edit the file again if "
            f"necessary.{note}",
            path=path,
            diff=make_change(_rel(path), old, new).diff,
        )


def _resolve(path: str) -> str:
    """An absolute, normalised path; a relative one is taken from WORKDIR (as the shell starts)."""
    if "\0" in path:
        raise EditorError("The path contains a NUL character: give the file's path.")
    if not path.strip():
        raise EditorError(f"The path is empty: give a file's path, e.g. under {WORKDIR}/.")
    return posixpath.normpath(posixpath.join(WORKDIR, path))


def _in_workspace(path: str) -> bool:
    return path == WORKDIR or path.startswith(WORKDIR + "/")


def _rel(path: str) -> str:
    return path[len(WORKDIR) + 1 :] if path.startswith(WORKDIR + "/") else path.lstrip("/")


async def _read_text(ctx: ToolContext, path: str) -> str:
    kind = await ctx.sandbox.path_kind(path)
    if kind is None:
        raise EditorError(f"The path {path} does not exist. Please provide a valid path.")
    if kind == "dir":
        raise EditorError(f"The path {path} is a directory; this command works on files only.")
    try:
        data = await ctx.sandbox.read_file(path, max_bytes=MAX_FILE_BYTES)
    except FileTooLargeError as exc:
        raise EditorError(
            f"The file {path} is {exc.size:,} bytes, more than the editor handles ({MAX_FILE_BYTES:,}): "
            "use bash to read parts of it (grep -n, sed -n '10,40p', head, tail) and to change it "
            "(sed -i, or a script)."
        ) from exc
    if b"\0" in data:
        raise EditorError(
            f"The file {path} holds NUL bytes (a binary file?): the editor works on text. Use bash "
            "to inspect it (file, xxd, strings) or change it."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditorError(f"The file {path} is not UTF-8 text; use bash to inspect or change it.") from exc


async def _list_folder(ctx: ToolContext, path: str) -> Observation:
    entries = await ctx.sandbox.list_dir(path, max_depth=2, hidden=True)
    hidden = [e for e in entries if "/" not in e.rstrip("/") and e.startswith(".")]
    shown = [e for e in entries if not any(part.startswith(".") for part in e.rstrip("/").split("/"))]
    listing = "\n".join([path, *(f"{path.rstrip('/')}/{e}" for e in shown)])
    text = f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{listing}\n"
    if hidden:
        text += (
            f"\n{len(hidden)} hidden files/directories in this directory are excluded. You can use "
            f"'ls -la {path}' to see them.\n"
        )
    if len(text) > MAX_LISTING_CHARS:
        kept = text[:MAX_LISTING_CHARS].rsplit("\n", 1)[0]
        text = (
            f"{kept}\n[The listing was cut at {MAX_LISTING_CHARS:,} characters: view a subfolder, or use "
            f"`find {path} -maxdepth 2 -name PATTERN` in bash.]\n"
        )
    return Observation(text, path=path)


def _no_match(path: str, text: str, old_str: str, exact: int) -> str:
    echo = old_str if len(old_str) <= MAX_ECHO_CHARS else old_str[:MAX_ECHO_CHARS] + "…"
    if exact > 1:
        return (
            f"No replacement was performed. Multiple occurrences of old_str `{echo}` in lines "
            f"{occurrence_lines(text, old_str)}. Please ensure it is unique."
        )
    message = f"No replacement was performed, old_str `{echo}` did not appear verbatim in {path}."
    closest = closest_region(text, old_str)
    if closest is not None:
        first, lines = closest
        message += (
            f" The most similar text is at lines {first}-{first + len(lines) - 1}:\n"
            f"{numbered(lines, first)}\nCopy old_str from the file exactly (view it first if needed)."
        )
    elif len(text) <= SHOW_WHOLE_CHARS:  # small: show it (the model would have to view it next)
        message += f" Here is the whole file:\n{numbered(split_lines(text))}\nCopy old_str from it exactly."
    else:
        message += f" View {path} first and copy old_str from it exactly."
    return message

"""The `editor` tool, with the semantics models are trained on (str_replace_based_edit_tool):
view / create / str_replace / insert / undo_edit, `cat -n` numbering, the unique-match rule."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field

from core.changes import make_change
from core.protocols import WORKDIR
from core.tools.base import Observation, Params, Tool, ToolContext

SNIPPET_CONTEXT = 4
MAX_VIEW_CHARS = 40_000


class EditorParams(Params):
    command: Literal["view", "create", "str_replace", "insert", "undo_edit"] = Field(
        description="view a file or folder, create a file, str_replace text, insert text, undo_edit."
    )
    path: str = Field(description=f"Absolute path, e.g. {WORKDIR}/src/app.py.")
    file_text: str | None = Field(None, description="create: the content of the new file.")
    old_str: str | None = Field(None, description="str_replace: the exact text to replace; must be unique.")
    new_str: str | None = Field(None, description="str_replace: the replacement; insert: the text to insert.")
    insert_line: int | None = Field(None, description="insert: insert after this line (0 = at the start).")
    view_range: list[int] | None = Field(
        None, description="view: [start, end] lines, 1-based, end -1 for the end of the file."
    )


class EditorError(Exception):
    pass


def numbered(text: str, start: int = 1) -> str:
    """`cat -n` style: right-aligned line numbers, a tab, the line."""
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(text.split("\n"), start))


class EditorTool(Tool):
    name = "editor"
    description = (
        "View, create and edit files in the sandbox workspace.\n"
        "- view: a file shows `cat -n` numbered lines (view_range to pick lines); a folder lists "
        "files 2 levels deep.\n"
        "- create: make a new file with file_text (fails if it exists).\n"
        "- str_replace: replace old_str, which must match exactly once (whitespace included), with new_str.\n"
        "- insert: insert new_str after line insert_line.\n"
        "- undo_edit: revert the last edit of the file."
    )
    params: ClassVar[type[Params]] = EditorParams

    def title(self, params: Params) -> str:
        assert isinstance(params, EditorParams)
        return f"{params.command} {params.path}"

    async def execute(self, params: Params, ctx: ToolContext) -> Observation:
        assert isinstance(params, EditorParams)
        try:
            path = _check_path(params.path)
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
            entries = await ctx.sandbox.list_dir(path, max_depth=2)
            listing = "\n".join([path, *(f"{path.rstrip('/')}/{e}" for e in entries)])
            return Observation(
                f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n"
                f"{listing}\n"
            )
        text = await _read_text(ctx, path)
        start = 1
        if p.view_range:
            lines = text.split("\n")
            if len(p.view_range) != 2:
                raise EditorError("Invalid `view_range`. It should be a list of two integers.")
            first, last = p.view_range
            if not 1 <= first <= len(lines):
                raise EditorError(
                    f"Invalid `view_range`: {p.view_range}. Its first element `{first}` should be within "
                    f"the range of lines of the file: [1, {len(lines)}]"
                )
            if last != -1 and not first <= last <= len(lines):
                raise EditorError(
                    f"Invalid `view_range`: {p.view_range}. Its second element `{last}` should be -1 or "
                    f"between {first} and {len(lines)}"
                )
            text = "\n".join(lines[first - 1 : None if last == -1 else last])
            start = first
        shown = numbered(text, start)
        note = ""
        if len(shown) > MAX_VIEW_CHARS:
            shown = shown[:MAX_VIEW_CHARS]
            note = "\n[File truncated: use view_range to see the rest, or grep -n to find lines.]"
        return Observation(f"Here's the result of running `cat -n` on {path}:\n{shown}\n{note}", path=path)

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
        new_str = p.new_str or ""
        text = await _read_text(ctx, path)
        count = text.count(p.old_str) if p.old_str else 0
        if count == 0:
            raise EditorError(
                f"No replacement was performed, old_str `{p.old_str}` did not appear verbatim in {path}."
            )
        if count > 1:
            lines = _occurrence_lines(text, p.old_str)
            raise EditorError(
                f"No replacement was performed. Multiple occurrences of old_str `{p.old_str}` in lines "
                f"{lines}. Please ensure it is unique."
            )
        if p.old_str == new_str:
            raise EditorError("No replacement was performed: `old_str` and `new_str` are the same.")
        at_line = text.split(p.old_str)[0].count("\n")
        new_text = text.replace(p.old_str, new_str)
        return await self._write_edit(ctx, path, text, new_text, at_line, new_str.count("\n"))

    async def _insert(self, p: EditorParams, path: str, ctx: ToolContext) -> Observation:
        if p.insert_line is None:
            raise EditorError("Parameter `insert_line` is required for command: insert")
        if p.new_str is None:
            raise EditorError("Parameter `new_str` is required for command: insert")
        text = await _read_text(ctx, path)
        lines = text.split("\n")
        if not 0 <= p.insert_line <= len(lines):
            raise EditorError(
                f"Invalid `insert_line` parameter: {p.insert_line}. It should be within the range of "
                f"lines of the file: [0, {len(lines)}]"
            )
        new_lines = p.new_str.split("\n")
        new_text = "\n".join(lines[: p.insert_line] + new_lines + lines[p.insert_line :])
        return await self._write_edit(ctx, path, text, new_text, p.insert_line, len(new_lines) - 1)

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
        return Observation(
            f"Last edit to {path} undone successfully. Here's the result of running `cat -n` on {path}:\n"
            f"{numbered(previous.decode('utf-8', 'replace'))}\n",
            path=path,
            diff=make_change(_rel(path), current, previous).diff,
        )

    async def _write_edit(
        self, ctx: ToolContext, path: str, old: str, new: str, at_line: int, added_lines: int
    ) -> Observation:
        await ctx.sandbox.write_file(path, new.encode())
        ctx.edit_history.setdefault(path, []).append(old.encode())
        lines = new.split("\n")
        first = max(0, at_line - SNIPPET_CONTEXT)
        last = min(len(lines), at_line + added_lines + SNIPPET_CONTEXT + 1)
        snippet = numbered("\n".join(lines[first:last]), first + 1)
        return Observation(
            f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet of {path}:\n"
            f"{snippet}\nReview the changes and make sure they are as expected. Edit the file again if necessary.",
            path=path,
            diff=make_change(_rel(path), old.encode(), new.encode()).diff,
        )


def _check_path(path: str) -> str:
    if not path.startswith("/"):
        suggestion = f"{WORKDIR}/{path.lstrip('./')}"
        raise EditorError(
            f"The path {path} is not an absolute path, it should start with `/`. Maybe you meant {suggestion}?"
        )
    return str(PurePosixPath(path))


def _rel(path: str) -> str:
    pure = PurePosixPath(path)
    return str(pure.relative_to(WORKDIR)) if pure.is_relative_to(WORKDIR) else path.lstrip("/")


async def _read_text(ctx: ToolContext, path: str) -> str:
    kind = await ctx.sandbox.path_kind(path)
    if kind is None:
        raise EditorError(f"The path {path} does not exist. Please provide a valid path.")
    if kind == "dir":
        raise EditorError(f"The path {path} is a directory; this command works on files only.")
    data = await ctx.sandbox.read_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditorError(f"The file {path} is not UTF-8 text; use bash to inspect or change it.") from exc


def _occurrence_lines(text: str, needle: str) -> list[int]:
    lines, start = [], 0
    while (index := text.find(needle, start)) != -1:
        lines.append(text.count("\n", 0, index) + 1)
        start = index + 1
    return lines

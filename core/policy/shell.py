"""A bash command line, parsed into the simple commands it runs (tree-sitter's bash grammar).

The policy never reads a command line as text: `&&`, `||`, `;`, pipes, subshells, `$(…)`,
backticks, process substitutions, function bodies, loops and redirections are found by a real
parser, so `npm test && rm -rf ~` is two commands and `echo $(rm x)` runs `rm`. A word whose value
is only known at run time (`$x`, `$(…)`) has no value here (None): whatever depends on it is
treated as unknown. A line the parser cannot read whole is reported as such (`parsed=False`)."""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

MAX_LINE = 100_000  # characters parsed at most; a longer line is reported as unparsed
# Redirection operators that write (or truncate) their target; `>&`/`<&` write only when the
# target is a file name (`>& out`), not a descriptor (`2>&1`, `>&-`).
WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
DUP_REDIRECTS = frozenset({">&", "<&", ">&-", "<&-"})
DYNAMIC = frozenset(
    {
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "translated_string",
    }
)


@dataclass(frozen=True)
class Redirect:
    """An output redirection: its operator and target (None: computed at run time)."""

    operator: str
    target: str | None


@dataclass(frozen=True)
class SimpleCommand:
    """One command the shell runs: its words (None where a word's value is computed at run time),
    the variables assigned for it, and the files its output is redirected to."""

    words: tuple[str | None, ...]
    assignments: tuple[str, ...] = ()  # NAME of each NAME=value before the command
    writes: tuple[Redirect, ...] = ()
    text: str = ""

    @property
    def name(self) -> str | None:
        return self.words[0] if self.words else None


@dataclass(frozen=True)
class CommandLine:
    """What a command line runs. `parsed` is False when the parser could not read it whole (then
    `commands` holds what it could read, and nothing about the line can be trusted)."""

    text: str
    commands: tuple[SimpleCommand, ...] = ()
    parsed: bool = True
    functions: tuple[str, ...] = ()  # names of the shell functions it defines
    fork_bomb: bool = False  # a function that runs itself in a pipe or in the background
    assigns: tuple[str, ...] = ()  # shell variables it sets on their own (`x=1`, `export X=1`)


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def parse(text: str) -> CommandLine:
    """The simple commands of a command line (blocking, microseconds for a typical line)."""
    if len(text) > MAX_LINE:
        return CommandLine(text, parsed=False)
    # surrogatepass: a model can send any code point, a lone surrogate included (JSON allows it).
    root = _parser().parse(text.encode("utf-8", "surrogatepass")).root_node
    walker = _Walker()
    walker.walk(root)
    return CommandLine(
        text,
        commands=tuple(walker.commands),
        parsed=not root.has_error,
        functions=tuple(walker.functions),
        fork_bomb=walker.fork_bomb,
        assigns=tuple(walker.assigns),
    )


@dataclass
class _Walker:
    commands: list[SimpleCommand] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    assigns: list[str] = field(default_factory=list)
    fork_bomb: bool = False

    def walk(self, root: Node) -> None:
        # An explicit stack: a deeply nested line must not exhaust Python's recursion limit.
        stack: list[tuple[Node, tuple[Redirect, ...]]] = [(root, ())]
        while stack:
            node, redirects = stack.pop()
            children = list(node.children)
            match node.type:
                case "command":
                    self.commands.append(_simple_command(node, redirects))
                case "declaration_command" | "unset_command":
                    self.commands.append(_builtin(node, redirects))
                case "variable_assignment" if node.parent is not None and node.parent.type != "command":
                    if node.parent.type != "declaration_command":
                        self.assigns.append(_text(node.child_by_field_name("name")))
                case "redirected_statement":
                    redirects = (*redirects, *_writes(node))
                case "function_definition":
                    name = _text(node.child_by_field_name("name"))
                    self.functions.append(name)
                    self.fork_bomb = self.fork_bomb or _calls_itself_concurrently(node, name)
            stack.extend((child, redirects) for child in reversed(children))


def _simple_command(node: Node, redirects: tuple[Redirect, ...]) -> SimpleCommand:
    words: list[str | None] = []
    assignments: list[str] = []
    for child in node.children:
        if child.type == "variable_assignment":
            assignments.append(_text(child.child_by_field_name("name")))
        elif child.type == "command_name":
            words.append(word_value(child.children[0]) if child.children else None)
        elif child.type == "file_redirect":
            redirects = (*redirects, *_redirect(child))
        elif child.is_named and child.type not in ("heredoc_redirect", "herestring_redirect", "comment"):
            words.append(word_value(child))
    return SimpleCommand(tuple(words), tuple(assignments), redirects, _text(node))


def _builtin(node: Node, redirects: tuple[Redirect, ...]) -> SimpleCommand:
    """`export`/`declare`/`local`/`readonly`/`unset`: the keyword, then each argument's text."""
    words: list[str | None] = [_text(node.children[0])] if node.children else []
    words += [word_value(c) if c.type != "variable_assignment" else _text(c) for c in node.children[1:]]
    return SimpleCommand(tuple(words), (), redirects, _text(node))


def _writes(statement: Node) -> Iterator[Redirect]:
    for child in statement.children:
        if child.type == "file_redirect":
            yield from _redirect(child)


def _redirect(node: Node) -> Iterator[Redirect]:
    operator = next((c.type for c in node.children if not c.is_named), "")
    target = node.child_by_field_name("destination")
    value = word_value(target) if target is not None else None
    if operator in WRITE_REDIRECTS:
        yield Redirect(operator, value)
    elif operator in DUP_REDIRECTS and target is not None and target.type not in ("number", "word"):
        yield Redirect(operator, value)  # `>& $f`: a computed target may be a file
    elif (
        operator in DUP_REDIRECTS
        and target is not None
        and value is not None
        and not value.isdigit()
        and value != "-"
    ):
        yield Redirect(operator, value)  # `>& out`: bash writes stdout and stderr to `out`


def _calls_itself_concurrently(function: Node, name: str) -> bool:
    """`:(){ :|:& };:` and its spellings: the body pipes or backgrounds a call to itself."""
    stack = [function.child_by_field_name("body")]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        concurrent = node.type == "pipeline" or any(c.type == "&" for c in node.children)
        if concurrent and any(
            c.type == "command" and _command_name(c) == name for c in _descendants(node, "command")
        ):
            return True
        stack.extend(node.children)
    return False


def _descendants(node: Node, kind: str) -> Iterator[Node]:
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.type == kind:
            yield child
        stack.extend(child.children)


def _command_name(command: Node) -> str | None:
    name = command.child_by_field_name("name")
    return word_value(name.children[0]) if name is not None and name.children else None


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "surrogateescape")


def word_value(node: Node) -> str | None:
    """The value the shell gives a word after quote removal; None when it depends on run time
    (a parameter, command or arithmetic expansion). Globs and `~` are kept as written."""
    kind = node.type
    if kind in DYNAMIC:
        return None
    if kind == "word":
        return _unescape(_text(node))
    if kind in ("number", "variable_name", "string_content", "heredoc_content"):
        return _text(node)
    if kind == "raw_string":
        return _text(node)[1:-1]
    if kind == "ansi_c_string":
        try:
            return codecs.decode(_text(node)[2:-1], "unicode_escape")
        except (UnicodeDecodeError, ValueError):
            return None
    if kind == "string":
        parts = []
        for child in node.children:
            if child.type in DYNAMIC:
                return None
            if child.type == "string_content":
                parts.append(_unescape_double(_text(child)))
        return "".join(parts)
    if kind == "concatenation":
        values = [_home(child) or word_value(child) for child in node.children]
        return None if any(v is None for v in values) else "".join(v or "" for v in values)
    return None  # anything else (arrays, brace expressions, ...) is not a plain word


def _home(node: Node) -> str | None:
    """`~` for `$HOME` / `${HOME}` (where it points is known well enough: outside /workspace)."""
    return (
        "~"
        if node.type in ("simple_expansion", "expansion") and _text(node) in ("$HOME", "${HOME}")
        else None
    )


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt != "\n":  # a backslash-newline is a line continuation
                out.append(nxt)
        else:
            out.append(ch)
    return "".join(out)


def _unescape_double(text: str) -> str:
    """Inside double quotes a backslash escapes only $ ` " \\ and newline."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)

"""File names as the file system has them: any bytes but `/` and NUL, not always UTF-8.

Inside Sidehand a workspace path is a `str` decoded with `surrogateescape`, so every byte survives
(`os` functions take it back to the same bytes). Where a path leaves for JSON or a person (events,
the fronts' messages, the terminal), it is escaped with `escape_path`: undecodable bytes as `\\xNN`,
control characters (a newline too) as C escapes, and the backslash itself doubled, so the text is
safe to show and `unescape_path` gives back the exact name. In a patch it is quoted as git does
(`git_quote`)."""

from __future__ import annotations

_C_ESCAPES = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r"}
_C_UNESCAPES = {v: k for k, v in _C_ESCAPES.items()}


def escape_path(path: str) -> str:
    """A printable, JSON-safe form of `path` that `unescape_path` reverses."""
    if path.isprintable() and "\\" not in path:
        return path
    out = []
    for char in path:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[char])
        elif not char.isprintable() and char != " ":
            # \x only below 0x80: \x80 and above stand for raw bytes (see unescape_path)
            out.append(
                f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def unescape_path(text: str) -> str:
    """The path `escape_path` made `text` from. Raises ValueError for a malformed escape."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        kind = text[i + 1 : i + 2]
        if kind == "\\":
            out.append("\\")
            i += 2
        elif kind in _C_UNESCAPES:
            out.append(_C_UNESCAPES[kind])
            i += 2
        elif kind in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[kind]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"bad escape in path {text!r}")
            code = int(digits, 16)
            # \xNN at or above 0x80 is a raw byte (surrogateescape); below, a control character.
            out.append(chr(0xDC00 + code) if kind == "x" and code >= 0x80 else chr(code))
            i += 2 + width
        else:
            raise ValueError(f"bad escape in path {text!r}")
    return "".join(out)


def git_quote(path: str) -> str:
    """`path` as git writes it in a patch header: as is when plain, else in double quotes with C
    escapes and octal bytes (so a name holding a newline cannot forge a header line)."""
    raw = path.encode("utf-8", "surrogateescape")
    if all(0x20 <= b < 0x7F and b not in b'"\\' for b in raw):
        return path
    out = []
    for b in raw:
        char = chr(b)
        if char in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[char])
        elif char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= b < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'

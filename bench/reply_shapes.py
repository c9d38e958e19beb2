"""Count the shapes of the recorded model replies in tests/fixtures/model_replies/ (the table in its
README.md): how each reply writes its tool calls, if any. A survey for the docs, not the agent's
parser: it finds the JSON objects that name a tool in fenced blocks, <tool_call> tags or the bare
text, and tags a reply with every shape it shows.

    .venv/bin/python -m bench.reply_shapes [--dir tests/fixtures/model_replies] [--files]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.llama_server import ROOT
from core.tools import default_tools

TOOLS = set(default_tools())
EDITOR_COMMANDS = {"view", "create", "str_replace", "insert", "undo_edit"}
FENCE = re.compile(r"```(\w*)\s*\n(.*?)```", re.S)
TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
NATIVE = "native tool_calls (parsed by llama-server)"
OTHER_FORMS = {
    "<function=…> form": re.compile(r"<function=[\w.-]+>"),
    "OpenHands-style XML (<invoke>, <parameter=…>, <function_calls>)": re.compile(
        r"<invoke\b|<parameter=|<function_calls>"
    ),
}


def json_objects(text: str) -> list[tuple[int, int, Any]]:
    """(start, end, value) of each JSON object that starts at a `{` in `text`, outermost only."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while (start := text.find("{", at)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append((start, end, value))
        at = end
    return found


def call_name(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("name") or value.get("tool") or (value.get("function") or {}).get("name")
        return name if isinstance(name, str) else None
    return None


def call_arguments(message: dict[str, Any], content: str) -> list[Any]:
    """The arguments of every call the reply holds, native or written in its text."""
    found = [json.loads(c["function"]["arguments"] or "{}") for c in message.get("tool_calls") or ()]
    for _, _, value in json_objects(content):
        if call_name(value):
            found.append(value.get("arguments") or value.get("parameters") or {})
    return found


def shapes(message: dict[str, Any], finish_reason: str, context: str = "") -> set[str]:
    """The reply's shapes; `context` is the request's last message (a path it names is no mistake)."""
    content = message.get("content") or ""
    tags: set[str] = set()
    names = [c["function"]["name"] for c in message.get("tool_calls") or ()]
    if names:
        tags.add(NATIVE)
    spans: list[tuple[int, int]] = []
    for fence in FENCE.finditer(content):
        fenced = [v for _, _, v in json_objects(fence.group(2)) if call_name(v)]
        if fenced:
            tags.add(
                f"```{fence.group(1)} fenced block" if fence.group(1) else "``` fenced block (no language)"
            )
            names += [call_name(v) or "" for v in fenced]
            spans.append(fence.span())
    for tagged in TAGGED.finditer(content):
        tags.add("<tool_call> tags")
        names += [call_name(v) or "" for _, _, v in json_objects(tagged.group(1)) if call_name(v)]
        spans.append(tagged.span())
    outside = content
    for start, end in reversed(spans):
        outside = outside[:start] + outside[end:]
    bare = [(s, e, v) for s, e, v in json_objects(outside) if call_name(v)]
    if bare:
        tags.add("bare JSON object")
        names += [call_name(v) or "" for _, _, v in bare]
        for start, end, _ in reversed(bare):
            outside = outside[:start] + outside[end:]
    for label, pattern in OTHER_FORMS.items():
        if pattern.search(content):
            tags.add(label)
    if "<tool_response>" in content:
        tags.add("echoes a <tool_response> block")
    if not content.strip() and not names:
        tags.add("empty reply")
    elif not names and any(isinstance(v, dict) for _, _, v in json_objects(content)):
        tags.add("JSON object with no tool name (the arguments alone)")
    elif not names and not (tags & set(OTHER_FORMS)):
        code = FENCE.search(content)
        tags.add("no tool call: prose with code blocks" if code else "no tool call: prose only")
    if len(names) > 1:
        tags.add("several calls in one reply")
    if names and outside.strip():
        tags.add("text around the call(s)")
    if any(n in EDITOR_COMMANDS for n in names):
        tags.add("editor sub-command as the tool name")
    if any(n not in TOOLS and n not in EDITOR_COMMANDS for n in names):
        tags.add("other unknown tool name")
    # The editor's description gives /workspace/src/app.py as its example path; no scenario has a
    # src/ folder (unless the last message itself names one).
    paths = [str(a.get("path", "")) for a in call_arguments(message, content) if isinstance(a, dict)]
    if any("/src/" in p for p in paths) and "/src/" not in context:
        tags.add("a path under src/ (the editor's example path; the project has no src/)")
    if finish_reason == "length":
        tags.add("cut off at max_tokens")
    return tags


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=ROOT / "tests" / "fixtures" / "model_replies")
    parser.add_argument("--files", action="store_true", help="also list each file's shapes")
    args = parser.parse_args()
    counts: dict[str, Counter[str]] = {}
    for path in sorted(args.dir.glob("*.json")):
        record = json.loads(path.read_text())
        last = json.dumps(record["meta"].get("last_message"))
        found = shapes(record["message"], record["finish_reason"], last)
        mode = record["meta"]["template"]
        for tag in found:
            counts.setdefault(tag, Counter())[mode] += 1
        counts.setdefault("(replies)", Counter())[mode] += 1
    # Shapes other models write, listed even when this one never did.
    for tag in (NATIVE, "<tool_call> tags", *OTHER_FORMS):
        counts.setdefault(tag, Counter())
        if args.files:
            print(f"{path.name}: {'; '.join(sorted(found))}")
    modes = sorted({m for c in counts.values() for m in c})
    print(f"| shape | {' | '.join(modes)} | all |")
    print(f"|---|{'---|' * (len(modes) + 1)}")
    for tag, by_mode in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        label = f"`{tag}`" if "<" in tag else tag  # not read as an HTML tag in Markdown
        print(f"| {label} | {' | '.join(str(by_mode[m]) for m in modes)} | {sum(by_mode.values())} |")


if __name__ == "__main__":
    main()

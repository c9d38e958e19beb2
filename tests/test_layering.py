"""The layering rules of ARCHITECTURE.md, checked on the source: core imports no front and no
sandbox implementation; litellm is imported in exactly one module, and only inside functions."""

import ast
import gc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "sandbox", "agent_lsp", "agent_mcp", "sidehand")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_top_level) for every import in the file."""
    # No garbage collection inside the parse: Python 3.11.7 breaks its parser for good when a
    # finalizer's warning (an unclosed socket of an earlier test) formats a traceback mid-parse
    # ("AST constructor recursion depth mismatch" at every later parse).
    gc.disable()
    try:
        tree = ast.parse(path.read_text(), str(path))
    finally:
        gc.enable()
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_core_imports_no_front_and_no_sandbox() -> None:
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in sources("core")
        for m, _ in imports(p)
        if m.split(".")[0] in {"sandbox", "agent_lsp", "agent_mcp", "sidehand", "docker", "pygls", "mcp"}
    ]
    assert bad == []


def test_litellm_only_in_the_llm_module_and_lazily() -> None:
    users: dict[str, list[bool]] = {}
    for package in PACKAGES:
        for p in sources(package):
            for m, at_top in imports(p):
                if m.split(".")[0] == "litellm":
                    users.setdefault(str(p.relative_to(ROOT)), []).append(at_top)
    assert set(users) <= {"core/llm.py"}, users
    assert users, "core/llm.py should import litellm"
    assert not any(any(v) for v in users.values()), "litellm must be imported inside functions"


def test_fronts_do_not_import_each_other() -> None:
    for front, other in (("agent_lsp", "agent_mcp"), ("agent_mcp", "agent_lsp")):
        assert not [m for p in sources(front) for m, _ in imports(p) if m.split(".")[0] == other]

"""The layering rules of ARCHITECTURE.md, checked on the source: core imports no front and no
sandbox implementation; litellm is imported in exactly one module, and only inside functions."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "sandbox", "agent_lsp", "agent_mcp", "sidehand")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_top_level) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
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
    assert set(users) <= {"core/llm/loader.py"}, users
    assert users, "core/llm/loader.py should import litellm"
    assert not any(any(v) for v in users.values()), "litellm must be imported inside functions"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (anywhere in the file, `from pkg
    import module` included), leaving out the package's own __init__."""
    modules = {module_name(p) for p in sources(package)}
    graph: dict[str, set[str]] = {}
    for path in sources(package):
        name = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != package and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize("package", [*PACKAGES, "tests", "bench"])
def test_no_import_cycle_within_a_package(package: str) -> None:
    assert find_cycle(import_graph(package)) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_fronts_do_not_import_each_other() -> None:
    for front, other in (("agent_lsp", "agent_mcp"), ("agent_mcp", "agent_lsp")):
        assert not [m for p in sources(front) for m, _ in imports(p) if m.split(".")[0] == other]


def test_shipped_code_never_selects_the_fakes() -> None:
    """The fronts get their session manager's factory passed in: nothing shipped imports the
    fakes (core.testing) or looks at the environment to decide it is being tested."""
    shipped = [p for package in PACKAGES for p in sources(package) if "testing" not in p.parts]
    users = [str(p.relative_to(ROOT)) for p in shipped for m, _ in imports(p) if m.startswith("core.testing")]
    assert users == []
    switches = [str(p.relative_to(ROOT)) for p in shipped if "SIDEHAND_TEST" in p.read_text()]
    assert switches == []


def test_only_core_apply_writes_the_users_files() -> None:
    """Accepting changes (journaled, never through a symlink) is core/apply.py's, for every front:
    nothing else writes through HostWorkspace."""
    shipped = [p for package in PACKAGES for p in sources(package)]
    writers = [
        str(p.relative_to(ROOT))
        for p in shipped
        if any(call in p.read_text() for call in ("host.write(", "host.delete(", ".write(path, data)"))
    ]
    assert writers == ["core/apply.py"]

"""The package's architecture, read from the source tree (issue 14): layers import only downwards,
no import circles, small modules and functions, and a README layout section that matches the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ardm"
# lowest first; a module may import from its own layer or any layer below it
LAYERS = ["ardm.errors", "ardm.version", "ardm.core", "ardm.data", "ardm.generation", "ardm.evaluation",
          "ardm.training", "ardm.tasks", "ardm.cli"]
LEVEL = {"ardm.errors": 0, "ardm.version": 0, "ardm.core": 1, "ardm.data": 2, "ardm.generation": 3,
         "ardm.evaluation": 4, "ardm.training": 5, "ardm.tasks": 6, "ardm.cli": 7}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The ardm modules a file imports at run time (function-level imports included; imports under
    `if TYPE_CHECKING:` excluded). `from pkg import name` counts pkg.name when that is a module."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ardm"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ardm"):
            assert node.level == 0, f"{path}: relative import (use absolute ardm.* imports)"
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def level(module: str) -> int | None:
    for prefix, lvl in LEVEL.items():
        if module == prefix or module.startswith(prefix + "."):
            return lvl
    return None  # the package root: a facade that may import anything (lazily)


def ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: the targets, and their packages' __init__ (importing
    a.b.c runs a/b/__init__.py first), except packages the importer already sits inside."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        targets = imports_of(path, set(mods))
        implied = {a for t in targets for a in ancestors(t) if a in mods} - ancestors(name) - {name}
        graph[name] = (targets | implied) - {name}
    return graph


def test_every_module_belongs_to_a_layer():
    loose = [m for m in modules() if m != "ardm" and level(m) is None]
    assert not loose, f"modules outside every layer (add them to a layer package): {loose}"


def test_layers_import_only_downwards():
    bad = [f"{src} (layer {level(src)}) imports {dst} (layer {level(dst)})"
           for src, targets in import_graph().items() if src != "ardm"
           for dst in targets if level(dst) is not None and level(dst) > level(src)]
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_module_imports_the_package_root():
    bad = [src for src, targets in import_graph().items() if "ardm" in targets and src != "ardm"]
    assert not bad, f"modules importing the package root (import ardm.version etc. instead): {bad}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt in graph and state.get(nxt) is None and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (cycle := dfs(node)):
            return cycle
    return None


def test_find_cycle_detects_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def python_files() -> list[Path]:
    return sorted(p for d in ("ardm", "benchmarks", "tests") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path):
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines (limit {MAX_MODULE_LINES}): split it"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


CROSS_CUTTING = {"test_layout.py", "test_docs.py"}  # tests of the tree itself, at tests/


def test_tests_mirror_the_modules_they_test():
    """tests/<package path>/test_<module>[_<aspect>].py for ardm/<package path>/<module>.py (or a
    subpackage, or the package itself), so a module's tests are found where the module is."""
    bad = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT / "tests")
        if len(rel.parts) == 1:
            if rel.name not in CROSS_CUTTING:
                bad.append(f"{rel}: only cross-cutting tests sit at tests/; move it beside its layer")
            continue
        package = PACKAGE.joinpath(*rel.parts[:-1])
        if not (package / "__init__.py").exists():
            bad.append(f"{rel}: ardm/{'/'.join(rel.parts[:-1])} is not a package")
            continue
        names = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if p.is_dir()}
        names.add(package.name)
        subject = rel.stem.removeprefix("test_")
        if not any(subject == n or subject.startswith(n + "_") for n in names - {"__init__", "__pycache__"}):
            bad.append(f"{rel}: names no module of ardm/{'/'.join(rel.parts[:-1])}")
    assert not bad, "\n".join(bad)

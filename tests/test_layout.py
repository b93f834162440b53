"""The package's shape: packages by stage, no import cycle, nothing hidden in functions, small pieces.

The layers themselves are import-linter's contract (pyproject.toml, run by `make test`); this test
checks what it cannot: cycles between modules inside a package, imports inside functions, module
and function size, private names across modules, module names that shadow public functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "committee"
# cli/ imports each command's code when the command runs (the parser stays light);
# an optional dependency (onnx, ray) is imported where it is used, in its adapter.
LAZY_OK = ("cli/",)
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    return {p.relative_to(SRC).as_posix(): ast.parse(p.read_text()) for p in sorted(SRC.rglob("*.py"))}


def dotted(rel: str) -> str:
    parts = ["committee", *rel[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("committee"):
            out += [(node, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names if a.name.startswith("committee")]
    return out


def resolve(name: str, known: set[str]) -> str | None:
    """The module an imported name lives in (``committee.x.y.f`` -> ``committee.x.y``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def test_no_import_cycle_between_modules():
    mods = modules()
    known = {dotted(r) for r in mods}
    graph = {dotted(r): set() for r in mods}
    for rel, tree in mods.items():
        for node, name in imports_of(tree):
            if isinstance(getattr(node, "parent", None), ast.If):
                continue
            target = resolve(name, known)
            if target and target != dotted(rel) and not target == "committee":
                graph[dotted(rel)].add(target)
    # type-only imports (if TYPE_CHECKING:) create no runtime arrow
    for rel, tree in mods.items():
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for sub, name in imports_of(node):
                    graph[dotted(rel)].discard(resolve(name, known))
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                pytest.fail(
                    "import cycle: " + " -> ".join(path[path.index(n) :] + [m, n]) if n in path else f"{m} -> {n}"
                )
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_no_committee_import_inside_a_function_outside_cli():
    hidden = []
    for rel, tree in modules().items():
        if rel.startswith(LAZY_OK):
            continue
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{rel}:{node.lineno} {name}" for node, name in imports_of(fn)]
    assert not hidden, hidden


def test_modules_and_functions_are_small():
    too_big = []
    for rel, tree in modules().items():
        n_lines = (SRC / rel).read_text().count("\n")
        if n_lines > MAX_MODULE_LINES:
            too_big.append(f"{rel}: {n_lines} lines")
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = fn.end_lineno - min([fn.lineno, *(d.lineno for d in fn.decorator_list)]) + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{rel}:{fn.lineno} {fn.name}: {length} lines")
    assert not too_big, too_big


def test_no_private_name_used_across_modules():
    crossing = []
    for rel, tree in modules().items():
        for node, name in imports_of(tree):
            leaf = name.rpartition(".")[2]
            if leaf.startswith("_") and not leaf.startswith("__"):
                crossing.append(f"{rel}:{node.lineno} {name}")
        aliases = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("committee")
            for a in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                crossing.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
    assert not crossing, crossing


def test_no_module_shares_its_name_with_a_public_function():
    mods = modules()
    module_names = {Path(r).stem for r in mods} | {Path(r).parent.name for r in mods if r.endswith("__init__.py")}
    functions = {
        f"{rel}:{n.name}"
        for rel, tree in mods.items()
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and not n.name.startswith("_") and n.name in module_names
    }
    assert not functions, functions

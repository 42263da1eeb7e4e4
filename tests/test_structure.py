"""The package's shape: no import cycle among xpert_evo's modules, and no module over 450 lines.

Read statically (`ast`), nothing is imported. Only module-level imports count: those in a
module's body, also inside a top-level ``try`` or ``if`` (not ``if TYPE_CHECKING``), since they
run when the module is imported. Imports inside functions run later and are left out. Importing
``a.b.c`` also runs the ``__init__`` of the packages ``a.b`` and ``a``, so those count as imported
too, except the importer's own packages (already being imported when it runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xpert_evo"
MAX_LINES = 450


def module_name(path: Path) -> str:
    """``xpert_evo/space/genome.py`` -> ``xpert_evo.space.genome``; a package's ``__init__.py``
    -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.Try):
            pending += [*node.body, *node.orelse, *node.finalbody]
            pending += [s for handler in node.handlers for s in handler.body]
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending += [*node.body, *node.orelse]
    return found


def ancestors(name: str) -> list[str]:
    """The packages above a dotted module name: ``a.b.c`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """Module -> the xpert_evo modules its import runs (see the module docstring)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        own = {*ancestors(name), name}
        run = {t for target in targets for t in (*ancestors(target), target)}
        graph[name] = {t for t in run if t in paths and t not in own}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_follows_module_level_imports_and_the_packages_they_run() -> None:
    source = ("import a\ntry:\n    import b\nexcept ImportError:\n    import c\n"
              "if TYPE_CHECKING:\n    import d\ndef f():\n    import e\n")
    statements = module_level_imports(ast.parse(source))
    assert sorted(alias.name for node in statements for alias in node.names) == ["a", "b", "c"]
    graph = import_graph()
    assert "xpert_evo.training.data" in graph["xpert_evo.training.train"]
    assert {"xpert_evo.hardware", "xpert_evo.hardware.cli"} <= graph["xpert_evo.cost"]
    assert "xpert_evo.space" not in graph["xpert_evo.space.options"]  # its own package
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_package_modules() -> None:
    found = cycles(import_graph())
    assert not found, f"import cycles (module-level imports): {found}"


def test_no_module_is_over_the_line_limit() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"

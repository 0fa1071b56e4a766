"""The host packages depend on each other in one direction only (read from the source with ``ast``).

    trustcore   → nothing of ours (formats and crypto shared by issuing and the gateway)
    provisioning → trustcore
    gateway     → trustcore
    simulators  → trustcore, gateway (test and demo tools; the deployed gateway never imports them)
    cbcc        → all of the above (the command tree; nothing imports it)

Every import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from support.micropython_runner import ROOT

PACKAGES = ("trustcore", "provisioning", "gateway", "simulators", "cbcc")
ALLOWED: dict[str, set[str]] = {
    "trustcore": set(),
    "provisioning": {"trustcore"},
    "gateway": {"trustcore"},
    "simulators": {"trustcore", "gateway"},
    "cbcc": {"trustcore", "provisioning", "gateway", "simulators"},
}


def imported_packages(source: str, packages: Iterable[str]) -> set[str]:
    """Top-level names of ``packages`` that ``source`` imports (absolute imports, any depth)."""
    ours = set(packages)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & ours
    return found


def package_graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, set[str]]]:
    """package → imported package → the files (relative to root) that import it."""
    pkgs = list(packages)
    graph: dict[str, dict[str, set[str]]] = {p: {} for p in pkgs}
    for pkg in pkgs:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = str(path.relative_to(root))
            for dep in imported_packages(path.read_text(encoding="utf-8"), pkgs) - {pkg}:
                graph[pkg].setdefault(dep, set()).add(rel)
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_packages_import_only_downwards() -> None:
    graph = package_graph(ROOT, PACKAGES)
    wrong = [
        f"{pkg} → {dep}: {', '.join(sorted(files))}"
        for pkg, deps in graph.items()
        for dep, files in deps.items()
        if dep not in ALLOWED[pkg]
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_cycle_between_packages() -> None:
    graph = package_graph(ROOT, PACKAGES)
    assert find_cycle({p: set(d) for p, d in graph.items()}) is None


def test_nothing_imports_the_command_tree_or_the_simulators_from_the_gateway() -> None:
    graph = package_graph(ROOT, PACKAGES)
    assert [p for p, d in graph.items() if "cbcc" in d] == []
    assert "simulators" not in graph["gateway"]


def test_the_checker_sees_nested_and_type_checking_imports(tmp_path: Path) -> None:
    """The gate can fail: a planted cycle hidden in a function and under TYPE_CHECKING is found."""
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    (tmp_path / "alpha" / "a.py").write_text("def f():\n    from beta.b import g\n    return g\n")
    (tmp_path / "beta" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import alpha.a\n"
    )
    graph = package_graph(tmp_path, ("alpha", "beta"))
    assert graph == {"alpha": {"beta": {"alpha/a.py"}}, "beta": {"alpha": {"beta/b.py"}}}
    assert find_cycle({p: set(d) for p, d in graph.items()}) == ["alpha", "beta", "alpha"]
    assert imported_packages("from . import x\nimport os\n", ("alpha",)) == set()

"""House rules on the shape of the code: no import cycles between our modules, no oversized module.

Lazy imports (inside functions) count: a cycle through a lazy import still means two modules that
cannot be understood, tested or moved one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 800


def _modules(base: Path) -> dict[str, Path]:
    out = {}
    for p in base.rglob("*.py"):
        if "egg-info" in str(p) or "__pycache__" in p.parts:
            continue
        name = ".".join(p.relative_to(base).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def import_graph(base: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports anywhere in its body (top level or lazy)."""
    mods = _modules(base)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in mods:
                        graph[m].add(target)
                    elif node.module in mods:
                        graph[m].add(node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
        graph[m] -= {m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(tmp_path)) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles_in_the_core_or_the_plugins():
    for base in (ROOT / "include", ROOT / "plugins"):
        assert cycles(import_graph(base)) == [], f"import cycle under {base}"


def test_no_module_past_the_size_limit():
    big = {str(p.relative_to(ROOT)): n for base in ("include", "plugins", "dags")
           for p in (ROOT / base).rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: split them by concern"

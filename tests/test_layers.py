"""Layers import downward only: data -> text -> evaluation -> training -> models ->
analysis -> study (the experiments layer) -> serving -> cli, and no module imports itself back through others."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lmrec"
# lowest first; a module may import its own layer and the layers below
LAYERS = [
    {"errors", "extras", "options", "version", "sparse", "ranking"},
    {"storage"},
    {"data"},
    {"text"},
    {"evaluation"},
    {"losses"},
    {"training"},
    {"models"},
    {"analysis"},
    {"study"},
    {"serving"},
    {"cli", "__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """lmrec modules imported by ``path``, function-level imports included, ``if TYPE_CHECKING:`` blocks not
    (``from package import submodule`` imports the submodule)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lmrec")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lmrec"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path, set(modules)) if m in modules and m != name}
            for name, path in modules.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return RANK[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_belongs_to_a_layer():
    unknown = sorted({m.split(".")[1] for m in graph() if "." in m} - set(RANK))
    assert not unknown, f"add these to LAYERS: {unknown}"


def test_layers_import_downward_only():
    upward = [f"{a} -> {b}" for a, deps in graph().items() for b in deps if layer(b) > layer(a)]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    g, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(g[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)

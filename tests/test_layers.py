"""The package is a layered house: its import graph (module-level and function-local
imports alike) has no cycle, and any module can be imported first."""
import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "transgrad"


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def resolve(module, node):
    """The transgrad modules an import statement in `module` names."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = package.split(".")
            pkg = pkg[:len(pkg) - node.level + 1]
            base = ".".join(pkg + ([base] if base else []))
        # `from . import x` may import a submodule x
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = set()
    for t in targets:
        while t and t not in MODULES:
            t = t.rpartition(".")[0]
        if t and t != module:
            out.add(t)
    return out


def import_graph():
    graph = {}
    for name, path in MODULES.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= resolve(name, node)
        # a package's own __init__ is imported before any of its modules: not an edge of the house
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_any_module_can_be_imported_first(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-2000:]


def test_every_cited_note_exists_once():
    """`NOTE [name]` cites a note; `NOTE [name]:` at the start of a comment or docstring line
    defines it (PyTorch's convention)."""
    import re

    cited, defined = set(), []
    for path in MODULES.values():
        text = path.read_text()
        cited |= set(re.findall(r"NOTE\s+\[([a-z ]+)\]", text))
        defined += re.findall(r"^\s*(?:#\s*)?NOTE \[([a-z ]+)\]:", text, re.M)
    assert sorted(cited - set(defined)) == []
    assert sorted(n for n in set(defined) if defined.count(n) > 1) == []

"""Backends are data plus one function (NOTE [backends]).

NOTE [backends]: a backend module (numpy.py, jax.py) provides
  name            its spelling of the op table (`row.spellings[name]`)
  xp, NAMESPACE   the array namespace, and the globals generated code runs with (xp and
                  the helpers of backends/helpers.py bound to it)
  HELPERS         the names generated code must leave to those helpers
  MODULE, IMPORTS, EXPORT_HELPERS  what a module written by `tg.export` imports (xp, then
                  other imports) and copies
  build(graph, fname, constants, values) -> (function, source)   generated code, loaded
  impl(row)       the eager form of a row, for tensors holding that backend's arrays
A call of a generated function raises helpers.GuardFailed when a guard does not hold.
"""
import ast
import itertools
import linecache
import re

_counter = itertools.count()


def get_backend(name):
    """The backend module for `name` ("numpy" or "jax")."""
    if not isinstance(name, str):
        return name
    if name == "numpy":
        from . import numpy

        return numpy
    if name == "jax":
        from . import jax

        return jax
    raise ValueError(f"unknown backend {name!r}; use 'numpy' or 'jax'")


def load(source, name: str, namespace: dict) -> dict:
    """Exec generated source (text, or an `ast.Module`) with a copy of `namespace` as its
    globals, and return them. The text is registered with linecache so that tracebacks
    through generated code show the generated lines."""
    filename = f"<transgrad:{name}:{next(_counter)}>"
    text = ast.unparse(source) if isinstance(source, ast.AST) else source
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    glb = dict(namespace)
    exec(compile(source, filename, "exec"), glb)
    return glb


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def eager_impl(op, spelling: str, namespace: dict):
    """`add_impl(a, b): return a + b`, the eager form of an op-table row, compiled from its
    template's syntax tree. Eager ops never print code, so this uses the standard `ast`
    module and leaves LibCST (the printer of generated code) unloaded until code is
    generated."""
    expr = ast.parse(_PLACEHOLDER.sub(r"\1", op.spellings[spelling]), mode="eval").body  # `{a}` is the name `a`
    star = op.inputs[-1] if op.variadic else None
    args = ast.arguments(
        posonlyargs=[], args=[ast.arg(n) for n in op.inputs if n != star], vararg=ast.arg(star) if star else None,
        kwonlyargs=[ast.arg(n) for n in op.params], kw_defaults=[None] * len(op.params), defaults=[])
    fname = op.name + "_impl"
    tree = ast.fix_missing_locations(ast.Module([ast.FunctionDef(fname, args, [ast.Return(expr)], [])], []))
    return load(tree, fname, namespace)[fname]

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
import itertools
import linecache

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


def load(source: str, name: str, namespace: dict) -> dict:
    """Exec generated source with a copy of `namespace` as its globals, and return them. The
    text is registered with linecache so that tracebacks through generated code show the
    generated lines."""
    filename = f"<transgrad:{name}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    glb = dict(namespace)
    exec(compile(source, filename, "exec"), glb)
    return glb

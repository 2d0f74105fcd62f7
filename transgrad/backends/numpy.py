"""The NumPy backend: generated code runs with `xp = numpy`."""
import linecache
import itertools

import numpy as xp

from ..codegen.template import Template
from ..index import materialize


# Helpers callable from generated code. They use only `xp`, so `tg.export` can copy
# their source into a standalone module.
def softmax(x, axis):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    s = x - xp.max(x, axis=axis, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def index_put(shape, v, index, accumulate):
    z = xp.zeros(shape, v.dtype)
    if accumulate:
        xp.add.at(z, index, v)  # repeated indices accumulate
    else:
        z[index] = v
    return z


def _along(idx, axis):
    """The full index of `idx`'s entries along `axis` (an open grid in the other dimensions)."""
    return tuple(idx if d == axis else xp.arange(n).reshape([n if e == d else 1 for e in range(idx.ndim)])
                 for d, n in enumerate(idx.shape))


def take_along(a, idx, axis, keepdims):
    out = a[_along(idx, axis)]
    return out if keepdims else xp.squeeze(out, axis)


def scatter_add(shape, v, idx, axis):
    z = xp.zeros(shape, v.dtype)
    xp.add.at(z, _along(idx, axis), v)  # repeated indices accumulate
    return z


def setitem(a, v, index):
    out = xp.array(a, copy=True)  # the trace stays pure: a copy with the items replaced
    out[index] = v
    return out


class GuardFailed(Exception):
    """A decision recorded when the code was traced does not hold for these inputs."""

    def __init__(self, index, value=None):
        super().__init__(index, value)
        self.index, self.value = index, value


def guard(value, expected, index):
    v = type(expected)(value.item())  # bool(), int(), float() as the traced run converted it
    if v != expected and not (v != v and expected != expected):  # NaN == NaN for a guard
        raise GuardFailed(index, v)


def run_hook(hook, g):
    """Call a tensor hook from generated code: it sees a Tensor, may return a replacement."""
    r = hook(_as_tensor(g))
    if r is None:
        return g
    out = getattr(r, "array", r)
    if getattr(out, "shape", None) != g.shape:
        raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} must return None or a tensor of shape "
                           f"{g.shape}, got {getattr(out, 'shape', type(r).__name__)}")
    return out.astype(g.dtype) if out.dtype != g.dtype else out


def _as_tensor(g):
    from ..tensor import _new

    return _new(g)


def vector_norm(x, axis, keepdims):
    if axis is None and not keepdims:
        return xp.sqrt(xp.vdot(x, x))  # one BLAS dot, no temporary (a loop's test, typically)
    return xp.sqrt(xp.add.reduce(x * x, axis=axis, keepdims=keepdims))


def mean(x, axis, keepdims):
    s = xp.add.reduce(x, axis=axis, keepdims=keepdims)
    return s / (x.size // s.size if s.size else 0)


MODULE = "numpy"
EXPORT_HELPERS = [GuardFailed, guard, setitem, vector_norm, softmax, log_softmax, index_put, mean, _along, take_along,
                  scatter_add]
HELPERS = {"_along": _along, "take_along": take_along, "scatter_add": scatter_add, "vector_norm": vector_norm, "run_hook": run_hook, "setitem": setitem, "softmax": softmax, "log_softmax": log_softmax, "index_put": index_put, "mean": mean,
           "guard": guard, "GuardFailed": GuardFailed}

# NumPy's reductions spend most of their time in Python wrappers; the ufunc methods
# compute the same (pairwise summation included) several times faster on small arrays.
TEMPLATES = {name: Template(text) for name, text in {
    "sum": "xp.add.reduce({a}, axis={axis}, keepdims={keepdims})",
    "mean": "mean({a}, {axis}, {keepdims})",
    "amax": "xp.maximum.reduce({a}, axis={axis}, keepdims={keepdims})",
    "amin": "xp.minimum.reduce({a}, axis={axis}, keepdims={keepdims})",
    "norm": "vector_norm({a}, {axis}, {keepdims})",
}.items()}
NAMESPACE = {"xp": xp, **HELPERS}

# eager forms of the primitives whose template needs a materialised index
def _getitem(a, *idx, index):
    # a basic index ending in `...` gives a view even where NumPy would give a scalar copy
    # (`x[0]` of a vector), so that element views see in-place writes as PyTorch's do
    return a[materialize(index, idx) + ((Ellipsis,) if not idx and Ellipsis not in index else ())]


IMPL_OVERRIDES = {
    "getitem": _getitem,
    "index_put": lambda v, *idx, shape, index, accumulate: index_put(shape, v, materialize(index, idx), accumulate),
    "setitem": lambda a, v, *idx, index: setitem(a, v, materialize(index, idx)),
}

_counter = itertools.count()


def load(source: str, name: str, namespace=None) -> dict:
    """Exec generated source and return its globals. The text is registered with
    linecache so that tracebacks through generated code show the generated lines."""
    filename = f"<transgrad:{name}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    glb = dict(NAMESPACE if namespace is None else namespace)
    exec(compile(source, filename, "exec"), glb)
    return glb


def build(graph, name, constants=(), values=None, as_tuple=True):
    """Generated code for `graph` as a NumPy function `name(*inputs) -> tuple` (constants
    are module globals), and its source. Guards raise GuardFailed inline."""
    from ..codegen.emit import emit
    from ..passes.reuse import reuse_buffers

    bound = {}
    source = emit(reuse_buffers(graph), name, templates=TEMPLATES, constants=constants, bound=bound, as_tuple=as_tuple)
    namespace = dict(NAMESPACE)
    namespace.update({n: values[id(v)] for n, v in bound.items()})
    return load(source, name, namespace)[name], source


def install_impls(ops):
    """Give every op-table row its eager NumPy form, generated from its template."""
    from ..codegen.emit import impl_source

    for op in ops.values():
        op.impl = IMPL_OVERRIDES.get(op.name) or load(impl_source(op, TEMPLATES), op.name)[op.name + "_impl"]

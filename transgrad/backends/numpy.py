"""The NumPy backend: generated code runs with `xp = numpy` (NOTE [backends])."""
import numpy

from ..index import materialize
from ..ir import Callee
from ..passes.reuse import reuse_buffers
from . import eager_impl, helpers, load
from .helpers import GuardFailed, guard

xp = numpy
name = "numpy"
MODULE = "numpy"  # what an exported module imports as xp
IMPORTS = ()  # and what else


def vector_norm(x, axis, keepdims):
    if axis is None and not keepdims:
        return xp.sqrt(xp.vdot(x, x))  # one BLAS dot, no temporary (a loop's test, typically)
    return xp.sqrt(xp.add.reduce(x * x, axis=axis, keepdims=keepdims))


def mean(x, axis, keepdims):
    s = xp.add.reduce(x, axis=axis, keepdims=keepdims)  # NumPy's mean, without its Python wrappers
    return s / (x.size // s.size if s.size else 0)


def zeros_with(v, index, shape, accumulate):
    """Zeros of `shape` with `v` at `index`; repeated indices add up with `accumulate`."""
    z = xp.zeros(shape, v.dtype)
    if accumulate:
        xp.add.at(z, index, v)
    else:
        z[index] = v
    return z


def setitem(a, v, index):
    out = xp.array(a, copy=True)  # the trace stays pure: a copy with the items replaced
    out[index] = v
    return out


def scatter_add(v, idx, shape, axis):
    """Zeros of `shape` with `v` added at `idx` along `axis` (the cotangent of take_along)."""
    z = xp.zeros(shape, v.dtype)
    xp.add.at(z, along(idx, axis), v)
    return z


def fold(a, size, kernel, stride, padding):
    """(N, C*kh*kw, L) patches added back into an (N, C, H, W) image: the inverse of unfold's layout."""
    padded, oh, ow, places = fold_at(size, kernel, stride, padding)
    cols = a.reshape(size[0], size[1], len(places), oh, ow)
    out = xp.zeros(padded, a.dtype)
    for k, rows, columns in places:
        out[:, :, rows, columns] += cols[:, :, k]
    (ph, pw) = padding
    return out[:, :, ph:ph + size[2], pw:pw + size[3]]


def stacked(rows, shape, dtype):
    """The values a loop saved, one row per iteration (NOTE [loops])."""
    return xp.stack(rows) if rows else xp.zeros((0,) + tuple(shape), dtype)


along, fold_at = helpers.along, helpers.fold_at  # for the unbound definitions above (generated code uses the bound ones)
OWN = [vector_norm, mean, zeros_with, setitem, scatter_add, fold, stacked]
NAMESPACE = helpers.bind(helpers.SHARED + OWN, {"xp": xp, "GuardFailed": GuardFailed, "guard": guard})
HELPERS = tuple(n for n in NAMESPACE if n != "xp")  # names generated code must leave to them
EXPORT_HELPERS = [GuardFailed, guard] + helpers.SHARED + OWN


def _getitem(a, *idx, index):
    # a basic index ending in `...` gives a view even where NumPy would give a scalar copy
    # (`x[0]` of a vector), so that element views see in-place writes as PyTorch's do
    return a[materialize(index, idx) + ((Ellipsis,) if not idx and Ellipsis not in index else ())]


# eager forms of the primitives whose template needs a materialised index
_INDEXED = {
    "getitem": _getitem,
    "index_put": lambda v, *idx, shape, index, accumulate: NAMESPACE["zeros_with"](
        v, materialize(index, idx), shape, accumulate),
    "setitem": lambda a, v, *idx, index: NAMESPACE["setitem"](a, v, materialize(index, idx)),
}


def impl(op):
    """The eager NumPy form of an op-table row, generated from its template on first use
    (and kept on the row)."""
    fn = op.impl
    if fn is None:
        fn = op.impl = _INDEXED.get(op.name) or eager_impl(op, name, NAMESPACE)
    return fn


def build(graph, fname, constants=(), values=None, as_tuple=True):
    """Generated code for `graph` as a NumPy function `fname(*inputs) -> tuple` (constants
    are module globals), and its source. Guards raise GuardFailed inline."""
    from ..codegen.emit import emit  # LibCST loads when code is first generated, not at import

    bound = {}
    source = emit(reuse_buffers(graph), fname, name, HELPERS, constants=constants, bound=bound, as_tuple=as_tuple)
    namespace = dict(NAMESPACE)
    namespace.update({n: v.fn if isinstance(v, Callee) else values[id(v)] for n, v in bound.items()})
    return load(source, fname, namespace)[fname], source

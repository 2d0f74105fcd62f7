"""The JAX backend: generated code runs with `xp = jax.numpy` under `jax.jit` (NOTE [backends]).

Guards become extra outputs of the jitted program and are checked on the host after the
call (NOTE [guards]); everything is pure, so a result whose guards fail is discarded.
"""
import jax
import jax.numpy

from ..codegen.emit import emit
from ..index import mask_counts, materialize
from ..ir import Callee
from ..passes.guards import guards_as_outputs
from . import eager_impl, helpers, load
from .helpers import GuardFailed, guard

xp = jax.numpy
name = "jax"
MODULE = "jax.numpy"  # what an exported module imports as xp


def static_masks(index, counts):
    """Boolean masks in `index` as integer indices of static size (XLA needs static shapes)."""
    counts, out = iter(counts), []
    for i in index if isinstance(index, tuple) else (index,):
        if getattr(i, "dtype", None) == bool and getattr(i, "ndim", 0) > 0:
            out.extend(xp.nonzero(i, size=next(counts)))
        else:
            out.append(i)
    return tuple(out)


def take(a, index, mask_counts):
    # xp.asarray: a NumPy array indexed by a traced index (`xs[t]` in a rolled loop) must become JAX's
    return xp.asarray(a)[static_masks(index, mask_counts)]


def zeros_with(v, index, shape, accumulate, mask_counts=()):
    """Zeros of `shape` with `v` at `index`; repeated indices add up with `accumulate`."""
    z = xp.zeros(shape, v.dtype)
    index = static_masks(index, mask_counts)
    return z.at[index].add(v) if accumulate else z.at[index].set(v)


def setitem(a, v, index, mask_counts=()):
    if None in mask_counts:  # `a[mask] = value`: no count of places needed
        mask = index[0] if isinstance(index, tuple) else index
        return xp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), v, a)
    return xp.asarray(a).at[static_masks(index, mask_counts)].set(v)


def scatter_add(v, idx, shape, axis):
    """Zeros of `shape` with `v` added at `idx` along `axis` (the cotangent of take_along)."""
    return xp.zeros(shape, v.dtype).at[along(idx, axis)].add(v)


def fold(a, size, kernel, stride, padding):
    """(N, C*kh*kw, L) patches added back into an (N, C, H, W) image: the inverse of unfold's layout."""
    padded, oh, ow, places = fold_at(size, kernel, stride, padding)
    cols = a.reshape(size[0], size[1], len(places), oh, ow)
    out = xp.zeros(padded, a.dtype)
    for k, rows, columns in places:
        out = out.at[:, :, rows, columns].add(cols[:, :, k])
    (ph, pw) = padding
    return out[:, :, ph:ph + size[2], pw:pw + size[3]]


along, fold_at = helpers.along, helpers.fold_at  # for the unbound definitions above (generated code uses the bound ones)
OWN = [static_masks, take, zeros_with, setitem, scatter_add, fold]
NAMESPACE = helpers.bind(helpers.SHARED + OWN, {"xp": xp, "lax": jax.lax, "GuardFailed": GuardFailed, "guard": guard})
IMPORTS = ("from jax import lax",)  # loops (NOTE [loops])
HELPERS = tuple(n for n in NAMESPACE if n != "xp")
EXPORT_HELPERS = [GuardFailed, guard] + helpers.SHARED + OWN


def x64_enabled():
    return bool(jax.config.jax_enable_x64)


def traces_on_host(arrays):
    """Can a trace of these arguments run on NumPy copies (NOTE [host tracing])?"""
    return not x64_enabled() and not any(isinstance(a, jax.core.Tracer) for a in arrays)


def build(graph, fname, constants=(), values=None, device=None, as_tuple=True):
    """`graph` as one XLA program (jax.jit), returning `fname(*inputs) -> tuple` whose
    guards are checked on the host, and the generated source. With `device`, inputs are
    placed there first. A graph of calls only (a compiled call's backward) is not jitted
    again: it calls the jitted programs it names (NOTE [shown is run])."""
    graph, checks = guards_as_outputs(graph)
    bound = {}
    source = emit(graph, fname, name, HELPERS, constants=constants, bound=bound, as_tuple=as_tuple or bool(checks))
    namespace = dict(NAMESPACE)
    namespace.update({n: v.fn if isinstance(v, Callee) else xp.asarray(values[id(v)])  # constants as JAX arrays
                      for n, v in bound.items()})
    python = load(source, fname, namespace)[fname]
    calls_only = graph.eqns and all(e.op == "call" for e in graph.eqns)
    jitted = python if calls_only else jax.jit(python)
    if device is not None:
        inner = jitted
        jitted = lambda *args: inner(*jax.device_put(args, device))  # noqa: E731
    n = len(checks)
    if not n:
        return jitted, source

    def run(*args):
        out = jitted(*args)
        if any(isinstance(a, jax.core.Tracer) for a in args):
            raise TypeError(f"{fname}: this trace has data-dependent control flow (guards), which cannot be checked "
                            "under a JAX transformation such as jax.vmap or jax.jit")
        flags = jax.device_get(out[-n:])  # the only transfer to the host: one small array per dtype
        for group, values in zip(checks, flags):
            for (index, expected), value in zip(group, values):
                guard(value, expected, index)
        return out[:-n]

    run.jitted = jitted
    return run, source


_INDEXED = {
    "getitem": lambda a, *idx, index: NAMESPACE["take"](a, materialize(index, idx), mask_counts(index)),
    "index_put": lambda v, *idx, shape, index, accumulate: NAMESPACE["zeros_with"](
        v, materialize(index, idx), shape, accumulate, mask_counts(index)),
    "setitem": lambda a, v, *idx, index: NAMESPACE["setitem"](a, v, materialize(index, idx), mask_counts(index)),
}


def impl(op):
    """The eager jax.numpy form of an op-table row (for tensors that hold JAX arrays)."""
    return _INDEXED.get(op.name) or eager_impl(op, name, NAMESPACE)

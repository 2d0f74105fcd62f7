"""The JAX backend: generated code runs with `xp = jax.numpy` under `jax.jit`.

Guards become extra outputs of the jitted program and are checked on the host after the
call (NOTE [guards]); everything is pure, so a result whose guards fail is discarded.
"""
import itertools
import linecache

import jax
import jax.numpy as xp

from ..codegen.template import Template
from .numpy import GuardFailed, guard, run_hook  # one exception type, one hook runner for every backend


def softmax(x, axis):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    s = x - xp.max(x, axis=axis, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def _static(index, counts):
    """Boolean masks in `index` as integer indices of static size (XLA needs static shapes)."""
    counts, out = iter(counts), []
    for i in index if isinstance(index, tuple) else (index,):
        if getattr(i, "dtype", None) == bool and getattr(i, "ndim", 0) > 0:
            out.extend(xp.nonzero(i, size=next(counts)))
        else:
            out.append(i)
    return tuple(out)


def take(a, index, mask_counts):
    return a[_static(index, mask_counts)]


def index_put(shape, v, index, accumulate, mask_counts=()):
    z = xp.zeros(shape, v.dtype)
    index = _static(index, mask_counts)
    return z.at[index].add(v) if accumulate else z.at[index].set(v)


def setitem(a, v, index, mask_counts=()):
    if None in mask_counts:  # `a[mask] = value`: no count of places needed
        mask = index[0] if isinstance(index, tuple) else index
        return xp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), v, a)
    return xp.asarray(a).at[_static(index, mask_counts)].set(v)


def _along(idx, axis):
    return tuple(idx if d == axis else xp.arange(n).reshape([n if e == d else 1 for e in range(idx.ndim)])
                 for d, n in enumerate(idx.shape))


def take_along(a, idx, axis, keepdims):
    out = a[_along(idx, axis)]
    return out if keepdims else xp.squeeze(out, axis)


def scatter_add(shape, v, idx, axis):
    return xp.zeros(shape, v.dtype).at[_along(idx, axis)].add(v)


def mean(x, axis, keepdims):
    return xp.mean(x, axis=axis, keepdims=keepdims)


MODULE = "jax.numpy"
EXPORT_HELPERS = [GuardFailed, guard, softmax, log_softmax, _static, take, index_put, setitem, mean, _along, take_along,
                  scatter_add]
HELPERS = {"_along": _along, "take_along": take_along, "scatter_add": scatter_add, "run_hook": run_hook, "setitem": setitem, "softmax": softmax, "log_softmax": log_softmax, "index_put": index_put, "mean": mean,
           "take": take, "_static": _static, "guard": guard, "GuardFailed": GuardFailed}
NAMESPACE = {"xp": xp, **HELPERS}
# the op table's forms serve jax.numpy too, except indexing by boolean masks
TEMPLATES = {name: Template(text) for name, text in {
    "getitem": "take({a}, xp.s_[{index}], {mask_counts})",
    "index_put": "index_put({shape}, {v}, xp.s_[{index}], {accumulate}, {mask_counts})",
    "setitem": "setitem({a}, {v}, xp.s_[{index}], {mask_counts})",
}.items()}

_counter = itertools.count()


def load(source, name, namespace=None):
    filename = f"<transgrad:{name}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    glb = dict(NAMESPACE if namespace is None else namespace)
    exec(compile(source, filename, "exec"), glb)
    return glb


def x64_enabled():
    return bool(jax.config.jax_enable_x64)


def build(graph, name, constants=(), values=None, device=None):
    """`graph` as one XLA program (jax.jit), returning `name(*inputs) -> tuple` whose
    guards are checked on the host, and the generated source. With `device`, inputs are
    placed there first."""
    from ..codegen.emit import emit
    from ..passes.guards import guards_as_outputs

    graph, checks = guards_as_outputs(graph)
    bound = {}
    source = emit(graph, name, templates=TEMPLATES, constants=constants, bound=bound, as_tuple=True)
    namespace = dict(NAMESPACE)
    namespace.update({n: xp.asarray(values[id(v)]) for n, v in bound.items()})  # constants as JAX arrays
    jitted = jax.jit(load(source, name, namespace)[name])
    if device is not None:
        inner = jitted
        jitted = lambda *args: inner(*jax.device_put(args, device))  # noqa: E731
    n = len(checks)
    if not n:
        return jitted, source

    def run(*args):
        out = jitted(*args)
        if any(isinstance(a, jax.core.Tracer) for a in args):
            raise TypeError(f"{name}: this trace has data-dependent control flow (guards), which cannot be checked "
                            "under a JAX transformation such as jax.vmap or jax.jit")
        flags = jax.device_get(out[-n:])  # the only transfer to the host: one small array per dtype
        for group, values in zip(checks, flags):
            for (index, expected), value in zip(group, values):
                guard(value, expected, index)
        return out[:-n]

    run.jitted = jitted
    return run, source


def impl(op):
    """The eager jax.numpy form of an op-table row (for tensors that hold JAX arrays)."""
    from ..codegen.emit import impl_source
    from ..index import mask_counts, materialize

    if op.name == "getitem":
        return lambda a, *idx, index: take(a, materialize(index, idx), mask_counts(index))
    if op.name == "index_put":
        return lambda v, *idx, shape, index, accumulate: index_put(
            shape, v, materialize(index, idx), accumulate, mask_counts(index))
    if op.name == "setitem":
        return lambda a, v, *idx, index: setitem(a, v, materialize(index, idx), mask_counts(index))
    return load(impl_source(op, TEMPLATES), op.name)[op.name + "_impl"]


def _register_tensor_pytree():
    """A Tensor is a JAX pytree (its array), so compiled functions compose with jax.vmap
    and jax.jit, which pass and return tensors."""
    from ..tensor import Tensor, _new

    jax.tree_util.register_pytree_node(Tensor, lambda t: ((t._data,), None), lambda _, xs: _new(xs[0]))


_register_tensor_pytree()

"""Eager dispatch: every operation on tensors is one call `apply(OPS[name], *inputs, **params)`.

`apply` runs the primitive's eager form (NumPy's, or jax.numpy's for JAX arrays), records
an autograd node when gradients are wanted and tells the active tracer. The Tensor class
(tensor/core.py) is defined above this module, whose functions create its instances: it
registers itself here (`register`).
"""
from __future__ import annotations

import numbers

import numpy as np

from .._state import mode, using, user_site, user_src
from ..backends import numpy as numpy_backend
from ..ops import OPS
from .dtypes import OpError, as_jax_computes, default_dtype, is_jax_array, to_array
from .records import edge, node_type, version_cell

Tensor = None  # the class, once tensor/core.py has defined it


def register(cls):
    global Tensor
    Tensor = cls


def new(data, requires_grad=False, grad_fn=None):
    """A tensor holding `data`, with nothing else recorded."""
    t = Tensor.__new__(Tensor)
    t._data = data
    t._requires_grad = requires_grad
    t._grad = None
    t.grad_fn = grad_fn
    t._version_cell = None
    t._base = None
    t._accumulator = None
    t._source = None
    t._hooks = None
    return t


def leaf(data, requires_grad=False):
    """A tensor the user created (its source line names it in generated code)."""
    t = new(data)
    t._source = user_site()
    if requires_grad:
        t.requires_grad_(True)
    if mode.tracer is not None:
        mode.tracer.constant(t)
    return t


def apply(op, *args, **params):
    """Run primitive `op` eagerly; record it for autograd and for the active tracer."""
    datas, wants_grad, impl, m = [], False, op.impl, mode
    tracer, on_jax = m.tracer, False
    for a in args:
        if isinstance(a, Tensor):
            if a._base is not None and a._version_cell.count != a._base[4]:
                refresh(a)  # a view whose storage was written through another tensor: take it again
            d = a._data
            wants_grad = wants_grad or a._requires_grad
            if type(d) is not np.ndarray and not isinstance(d, np.generic) and is_jax_array(d):
                if m.host:  # NOTE [host tracing]
                    d = np.asarray(d)
                else:
                    impl, on_jax = _jax_impl(op), True  # a JAX array: stay on its device
            datas.append(d)
        else:
            datas.append(a)
    if impl is None:
        impl = numpy_backend.impl(op)
    try:
        if tracer is not None and op.elementwise and tracer.abstract and not on_jax:
            out = _shaped(op, impl, datas, params)
        else:
            out = impl(*datas, **params)
    except Exception as e:
        raise _op_error(op, args, e) from None
    if m.host:
        out = as_jax_computes(out)
    t = new(out)
    if op.view and _is_view(out, args):  # NOTE [views]
        vc = t._version_cell = version_cell(args[0])
        t._base = (args[0], op, args[1:], params, vc.count)
    if wants_grad and m.grad_enabled and op.vjp is not None and out.dtype.kind == "f":
        t._requires_grad = True
        edges = tuple([(a.grad_fn or edge(a)) if isinstance(a, Tensor) and a._requires_grad else None for a in args])
        t.grad_fn = node_type(op.grad_fn_name)(op, args, params, out, user_src(), edges)
    if tracer is not None:
        tracer.record(op, args, params, t)
    return t


# NOTE [values nobody reads]: the values the rules of a backward compute while it is traced
# (NOTE [rules trace]) are never read: a rule decides nothing by them (the tracer refuses),
# and a call's results there are zeros already. So a rules tracer (`abstract`) does not
# compute an elementwise operation on large arrays: its result is a zero of the shape and
# dtype the operation gives, broadcast (read-only, no memory); the dtype is found once per
# op, input dtypes and scalars, on one element of each input. Tracing the backward of a
# program on 1000x1000 arrays then costs what it costs on small ones; on small arrays
# computing costs less than finding the dtype. A graph where user code runs among the rules
# (a custom Function's backward, a hook traced in) computes every value: that code may read
# them (engine/replay.py).
def _shaped(op, impl, datas, params):
    for d in datas:
        if type(d) is np.ndarray and d.size >= ABSTRACT_SIZE:
            break
    else:  # small arrays: computing costs less
        return impl(*datas, **params)
    shapes = [d.shape for d in datas if type(d) is np.ndarray]
    key = (op,) + tuple(d.dtype if type(d) is np.ndarray else (type(d), d) for d in datas)
    try:
        key += tuple(params.items())
        dtype = _DTYPES.get(key)
    except TypeError:  # an unhashable parameter
        key = dtype = None
    if dtype is None:
        with np.errstate(all="ignore"):
            dtype = np.asarray(impl(*[np.ones(1, d.dtype) if type(d) is np.ndarray else d for d in datas],
                                    **params)).dtype
        if key is not None:
            if len(_DTYPES) > 4096:
                _DTYPES.clear()
            _DTYPES[key] = dtype
    shape = np.broadcast_shapes(*shapes)
    return np.ndarray(shape, dtype, buffer=bytes(dtype.itemsize), strides=(0,) * len(shape))  # no memory


ABSTRACT_SIZE = 65536
_DTYPES = {}  # (op, input dtypes and scalars, params) -> the result's dtype


def _is_view(out, args):
    """Does `out`, the result of a view op on args[0], share args[0]'s storage? NumPy says;
    a JAX array never shares, but a basic index, reshape or transpose of it is still a view
    in PyTorch's sense, so in-place writes go through to the base (NOTE [views])."""
    a = args[0]
    if not isinstance(a, Tensor):
        return False
    base = getattr(out, "base", None)
    if base is not None:
        src = a._data
        return base is src or base is getattr(src, "base", None)
    return len(args) == 1 and is_jax_array(out)


# NOTE [views]: a tensor that shares another's storage records `_base = (base, op, index
# arrays, params, version)`: a view (getitem with a basic index, reshape, expand, permute,
# transpose) or, with op None, an alias (`.data`, `.detach()`). They share the base's
# VersionCell. An in-place write through a view becomes a write into the base (`setitem`,
# or the inverse reshape/permutation) that the base's history records, as PyTorch's
# CopySlices; a view whose storage was then written through another tensor is taken again
# from its base when it is next used (its values and history both), so it never answers
# with stale values or a stale history. JAX arrays never share memory, so on JAX this is
# how views and aliases see each other's writes at all.
def refresh(v):
    b, op, arrays, params, _ = v._base
    if b._base is not None and b._version_cell.count != b._base[4]:
        refresh(b)
    if op is None:  # an alias: the base's values, no history of its own
        v._data = b._data
        if mode.tracer is not None:
            mode.tracer.alias(v, b)
    else:
        with using(grad_enabled=mode.grad_enabled or b._requires_grad):
            fresh = apply(op, b, *arrays, **params)
        v._data, v.grad_fn, v._requires_grad = fresh._data, fresh.grad_fn, fresh._requires_grad
        if mode.tracer is not None:
            mode.tracer.alias(v, fresh)
    v._base = (b, op, arrays, params, v._version_cell.count)


def alias(t):
    """A tensor with t's storage and version but no history (`.data`, `.detach()`)."""
    out = new(t._data)
    vc = out._version_cell = version_cell(t)
    out._base = (t, None, (), None, vc.count)
    if mode.tracer is not None:
        mode.tracer.alias(out, t)
    return out


_JAX_IMPLS = {}


def _jax_impl(op):
    fn = _JAX_IMPLS.get(op.name)
    if fn is None:
        from ..backends import jax as jax_backend

        register_with_jax()
        fn = _JAX_IMPLS[op.name] = jax_backend.impl(op)
    return fn


_registered = []


def register_with_jax():
    """A Tensor is a JAX pytree (its array), so compiled functions compose with jax.vmap
    and jax.jit, which pass and return tensors. Done when JAX first meets a tensor."""
    if not _registered:
        import jax

        jax.tree_util.register_pytree_node(Tensor, lambda t: ((t._data,), None), lambda _, xs: new(xs[0]))
        _registered.append(True)


def describe(a):
    return f"{a.dtype}{list(a.shape)}" if isinstance(a, Tensor) else repr(a)


def _op_error(op, args, e):
    where = ""
    src = user_src()
    if mode.tracer is not None and src is not None:
        import linecache

        where = f" at {src[0]}:{src[1]} `{linecache.getline(*src).strip()}`"
    operands = ", ".join(describe(a) for a in args if not isinstance(a, tuple))
    return OpError(f"{op.name}: cannot apply to ({operands}){where}: {e}")


def wrap(x):
    """A tensor for lists, arrays and JAX arrays; Python scalars and tensors as they are."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, np.ndarray)) or is_jax_array(x):
        a = to_array(x)
        return leaf(a if is_jax_array(a) else np.array(a, copy=True))
    return x


def is_scalar(x):
    return isinstance(x, (numbers.Number, np.number, np.bool_)) and not isinstance(x, complex)


def python_scalar(x):
    return x.item() if isinstance(x, (np.number, np.bool_)) else x


def binary(name, a, b):
    """Binary op with PyTorch's promotion: an int or bool tensor meeting a float operand
    becomes the float dtype (NumPy would go to float64); Python scalars stay weak."""
    ta, tb = type(a), type(b)
    if ta is Tensor and a._data.dtype.kind == "f":  # fast path: nothing to promote
        if tb is float or tb is int or (tb is Tensor and b._data.dtype is a._data.dtype):
            return apply(OPS[name], a, b)
    elif tb is Tensor and (ta is float or ta is int) and b._data.dtype.kind == "f":
        return apply(OPS[name], a, b)
    a, b = wrap(python_scalar(a)), wrap(python_scalar(b))
    for x in (a, b):
        if not isinstance(x, Tensor) and not is_scalar(x):
            raise TypeError(f"{name}: unsupported operand type {type(x).__name__}")
    ka = a.dtype.kind if isinstance(a, Tensor) else ("f" if isinstance(a, float) else "i")
    kb = b.dtype.kind if isinstance(b, Tensor) else ("f" if isinstance(b, float) else "i")
    if ka == kb and isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype and (a.ndim == 0) != (
            b.ndim == 0):  # a 0-d tensor takes the other's dtype, as in PyTorch (float32 * 0-d float64: float32)
        a, b = (a.astype(b.dtype), b) if a.ndim == 0 else (a, b.astype(a.dtype))
    if name == "div" and ka != "f" and kb != "f":  # true division of integers gives floats
        a = a.astype(default_dtype) if isinstance(a, Tensor) else float(a)
        b = b.astype(default_dtype) if isinstance(b, Tensor) else float(b)
    elif (ka == "f") != (kb == "f") and not name.startswith("logical_"):
        f = a if ka == "f" else b
        fdt = f.dtype if isinstance(f, Tensor) else default_dtype
        if isinstance(a, Tensor) and ka != "f":
            a = a.astype(fdt)
        if isinstance(b, Tensor) and kb != "f":
            b = b.astype(fdt)
    return apply(OPS[name], a, b)


def result_dtype(tensors):
    """PyTorch's promotion: the highest kind (bool < int < float) decides, and only tensors of
    that kind promote, 0-d ones only where none has dims (int64 with float32 is float32, and
    float32 with a 0-d float64 too, where NumPy gives float64)."""
    rank = {"b": 0, "u": 1, "i": 1, "f": 2}
    top = max(rank[t.dtype.kind] for t in tensors)
    tops = [t for t in tensors if rank[t.dtype.kind] == top]
    out = None
    for t in [t for t in tops if t.ndim] or tops:
        out = t.dtype if out is None else np.promote_types(out, t.dtype)
    return out


def where(condition, a, b):
    """`a` where `condition` holds, else `b` (either may be a Python scalar)."""
    c = wrap(condition)
    if not isinstance(c, Tensor) or c.dtype != np.dtype(bool):
        raise TypeError(f"where: condition must be a bool tensor (got {describe(c)})")
    a, b = wrap(python_scalar(a)), wrap(python_scalar(b))
    ka = a.dtype.kind if isinstance(a, Tensor) else None
    kb = b.dtype.kind if isinstance(b, Tensor) else None
    if ka and kb and a.dtype != b.dtype:
        dt = result_dtype((a, b))
        a, b = a.astype(dt), b.astype(dt)
    elif (ka or kb) and (ka or kb) not in "f" and isinstance(a if not ka else b, float):  # int tensor, float scalar
        a, b = (a.astype(default_dtype) if ka else a), (b.astype(default_dtype) if kb else b)
    return apply(OPS["where"], c, a, b)


def dims(dim, ndim, name):
    """Normalise `dim` (None, int or tuple; negatives allowed) to a sorted tuple or None."""
    if dim is None:
        return None
    ds = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not ds:  # `sum(())`, `mean([])`: every dim, as in PyTorch
        return None
    out = []
    for d in ds:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{name}: dimension {d} is out of range for a tensor of {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) < len(out):
        raise RuntimeError(f"{name}: dim {next(d for d in out if out.count(d) > 1)} appears multiple times in the list of dims")
    return tuple(sorted(out))


def floating(t):
    """`t`, or its float32 copy when it holds integers (exp, log, ... give floats)."""
    return t if t.dtype.kind == "f" else t.astype(default_dtype)

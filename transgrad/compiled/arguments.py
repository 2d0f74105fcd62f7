"""A compiled function's arguments and results: flattened into dynamic leaves (tensors,
arrays, differentiated floats) and a hashable signature, and rebuilt in their structure.

A leaf is a tuple `(name, data, requires_grad, tensor or None, position)`: the name the
generated code gives it, the array, whether it is differentiated, the tensor the caller
passed (its gradient goes there), and the positional argument it belongs to (None for a
keyword argument). Plain tuples: this runs at every call.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, default_dtype, is_jax_array

_SCALARS = (bool, int, float)
JAX_ARRAYS = set()  # concrete JAX array types seen: they take the fast path from then on


def flatten(value, name, diff, leaves, key, pos=0):
    """Append `value`'s dynamic leaves and its part of the signature to `leaves` and `key`."""
    if isinstance(value, Tensor):
        rg = value._requires_grad or diff
        if diff and value.dtype.kind != "f":
            raise TypeError(f"grad: argument `{name}` has dtype {value.dtype}; only float arguments can be differentiated")
        leaves.append((name, value._fresh(), rg, value, pos))
        key.append((value.shape, value.dtype, rg))
    elif isinstance(value, np.ndarray) or is_jax_array(value):
        a = value
        if type(a) is not np.ndarray and "Tracer" not in type(a).__name__:
            JAX_ARRAYS.add(type(a))
        if diff and a.dtype.kind != "f":
            raise TypeError(f"grad: argument `{name}` has dtype {a.dtype}; only float arguments can be differentiated")
        leaves.append((name, a, diff, None, pos))
        key.append(("array", a.shape, np.dtype(a.dtype), diff))
    elif type(value) in _SCALARS and diff:
        if type(value) is not float:
            raise TypeError(f"grad: argument `{name}` is a {type(value).__name__}; only floats can be differentiated")
        leaves.append((name, np.asarray(value, default_dtype), True, None, pos))
        key.append(("scalar", float))
    elif isinstance(value, (list, tuple)):
        key.append((type(value), len(value)))
        for i, v in enumerate(value):
            flatten(v, f"{name}_{i}", diff, leaves, key, pos)
    elif isinstance(value, dict):
        key.append((dict, tuple(value)))
        for k, v in value.items():
            flatten(v, f"{name}_{k}", diff, leaves, key, pos)
    else:
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"compile: argument `{name}` of type {type(value).__name__} is neither a tensor nor "
                            "hashable; pass tensors, arrays, scalars or tuples/lists/dicts of them") from None
        key.append(("static", type(value), value))


def rebuild(value, it, diff):
    """`value` with its dynamic leaves replaced by the next items of `it`."""
    if isinstance(value, (Tensor, np.ndarray)) or is_jax_array(value):
        return next(it)
    if type(value) is float and diff:
        return next(it)
    if isinstance(value, (list, tuple)):
        items = [rebuild(v, it, diff) for v in value]
        return type(value)(items) if type(value) in (list, tuple) else type(value)(*items)
    if isinstance(value, dict):
        return {k: rebuild(v, it, diff) for k, v in value.items()}
    return value


def tree_leaves(value):
    """The leaves `rebuild(value, it, diff=True)` replaces, in its order."""
    if isinstance(value, (Tensor, np.ndarray)) or type(value) is float or is_jax_array(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in tree_leaves(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in tree_leaves(v)]
    return []


def flatten_out(value, leaves):
    """Outputs: tensors become leaves; the structure (with Python values) is the tree."""
    if isinstance(value, Tensor):
        leaves.append(value)
        return ("T",)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(flatten_out(v, leaves) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, flatten_out(v, leaves)) for k, v in value.items()))
    return ("const", value)


def unflatten_out(tree, it):
    kind = tree[0]
    if kind == "T":
        return next(it)
    if kind == "const":
        return tree[1]
    if kind is dict:
        return {k: unflatten_out(v, it) for k, v in tree[1]}
    items = [unflatten_out(v, it) for v in tree[1]]
    return kind(items) if kind in (list, tuple) else kind(*items)

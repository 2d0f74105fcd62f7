"""What a compiled call reads of `.grad` and writes into tensors from outside (NOTE [effects]).

A trace names each such tensor by its place: ("arg", i) the caller's tensor of leaf i,
("cap", j) the j-th captured tensor as found for this call, ("grad", place) the `.grad` of
another. Each call finds them again, so a new closure, a reassigned weight or a new
`.grad` tensor is the one that is read and written.
"""
from __future__ import annotations

import numpy as np

from .._state import using
from ..tensor import new
from ..tensor.inplace import inplace
from .sources import Stale


def find(where, leaves, captured):
    """The tensor at `where` for this call (None for an argument passed as an array)."""
    kind = where[0]
    if kind == "arg":
        return leaves[where[1]][3]
    if kind == "cap":
        return captured[where[1]]
    owner = find(where[1], leaves, captured)
    return None if owner is None else owner._grad


def describe(tr, where):
    """`fc1.weight`, `w.grad`: a place as the user's code spells it."""
    kind = where[0]
    if kind == "arg":
        return tr.arg_names[where[1]]
    if kind == "cap":
        c = tr.captured[where[1]]
        return c.paths[0][1] if c.paths else f"a captured tensor of shape {list(c.shape)}"
    return describe(tr, where[1]) + ".grad"


def grad_inputs(tr, leaves, captured):
    """The `.grad` tensors the trace reads, after checking that each `.grad` it looked at
    is None, or not, as when it was traced (else Stale: another trace applies)."""
    for where, was_none in tr.grad_guards:
        owner = find(where, leaves, captured)
        if (owner._grad is None) != was_none:
            raise Stale(f"`{describe(tr, where)}.grad` was {'None' if was_none else 'a tensor'} when traced, and is "
                        f"{'a tensor' if was_none else 'None'} now")
    out = []
    for where, v in zip(tr.grad_reads, tr.fwd_inputs[len(tr.in_vars) + len(tr.captured):]):
        g = find(("grad", where), leaves, captured)
        if g.shape != v.shape or g.dtype != v.dtype:
            raise Stale(f"`{describe(tr, where)}` changed from {v.dtype}{list(v.shape)} to {g.dtype}{list(g.shape)}")
        out.append(g)
    return out


def apply(tr, values, leaves, captured):
    """Write a call's effects into the tensors they are for: the values each tensor from
    outside ends with (in place, so that its views and aliases see them), then the `.grad`
    each ends with. `values` are the program's extra outputs, in the order of `tr.effects`."""
    it = iter(values)
    with using(grad_enabled=False):
        for kind, where, _ in tr.effects:
            if kind == "data":
                t, a = find(where, leaves, captured), next(it)
                if type(t._data) is np.ndarray:
                    a = np.asarray(a)
                if t.shape == np.shape(a):
                    inplace(t, f"{tr.name}()", lambda _: new(a))
                else:  # `t.data = ...` with another shape
                    t._data = a
        for kind, where, has_value in tr.effects:
            if kind == "grad":
                t = find(where, leaves, captured)
                if not has_value:
                    t._grad = None
                    continue
                a = next(it)
                if type(t._data) is np.ndarray and type(a) is not np.ndarray:  # a JAX program's result
                    a = np.array(a)
                t._grad = new(a)

"""Structural helpers for VJP rules, written in the Tensor API so rules trace into IR.

They call methods of their operands only (no import of the tensor front end): the op table
and its rules sit below it.

NOTE [broadcasting]: broadcasting is undone in exactly one place, `sum_to`: every binary
rule passes its raw cotangent through it, which sums over the dimensions the operand was
broadcast along.
"""
from __future__ import annotations

import math


def _is_tensor(x):
    return hasattr(x, "_op")  # a Tensor (Python scalars take no cotangent)


def sum_to(g, like):
    """Sum `g` down to the shape of `like` (a Tensor); None when `like` is a Python scalar."""
    if not _is_tensor(like):
        return None
    shape = like.shape
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    if axes:
        g = g.sum(dim=axes, keepdim=True)
    return g.reshape(shape) if g.shape != shape else g


def pow_vjp(g, out, a, b):
    """a ** b, where either side may be a Python scalar. d/da is 0 where b == 0 (a ** -1 is
    inf at a == 0); d/db uses log(a), taken as 0 where a == 0 (the limit of out * log(a))."""
    ga = None
    if _is_tensor(a) and (_is_tensor(b) or b != 0):
        ga = g * b * a ** (b - 1)
        ga = sum_to(ga.where(b != 0, 0) if _is_tensor(b) else ga, a)
    elif _is_tensor(a):
        ga = g * 0  # zeros of a's shape (g is), recorded
    if not _is_tensor(b):
        return ga, None
    if _is_tensor(a):
        log_a = a.log().where(a != 0, 0)
    else:
        log_a = math.log(a) if a > 0 else (0.0 if a == 0 else math.nan)
    return ga, sum_to(g * out * log_a, b)


def unreduce(g, shape, axis, keepdims):
    """Broadcast a reduction's cotangent back to the input `shape`."""
    if not keepdims and axis is not None:
        kept = list(g.shape)
        for a in sorted(axis):
            kept.insert(a, 1)
        g = g.reshape(tuple(kept))
    return g.expand(*shape)


def reduced_count(shape, axis):
    n = 1
    for i, s in enumerate(shape):
        if axis is None or i in axis:
            n *= s
    return n


def matmul_vjp(g, a, b):
    """Cotangents of a @ b, with 1-D operands promoted as NumPy does and batch dims summed."""
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    out_shape = list(g.shape)
    if a.ndim == 1:
        out_shape.insert(len(out_shape) - (0 if b.ndim == 1 else 1), 1)
    if b.ndim == 1:
        out_shape.append(1)
    g2 = g.reshape(tuple(out_shape)) if tuple(out_shape) != g.shape else g
    ga = sum_to(g2 @ b2.transpose(-1, -2), a2)
    gb = sum_to(a2.transpose(-1, -2) @ g2, b2)
    return ga.reshape(a.shape), gb.reshape(b.shape)


def extreme_vjp(g, out, a, axis, keepdims):
    """max/min: the cotangent is shared evenly among the tied extreme elements."""
    mask = (a == unreduce(out, a.shape, axis, keepdims)).astype(g.dtype)
    return (unreduce(g, a.shape, axis, keepdims) * mask / mask.sum(dim=axis, keepdim=True),)


def split_vjp(g, xs, axis, stacked):
    """cat/stack: each input's cotangent is its slice of `g` along `axis`."""
    out, start = [], 0
    for x in xs:
        if stacked:
            idx = (slice(None),) * axis + (start,)
            start += 1
        else:
            idx = (slice(None),) * axis + (slice(start, start + x.shape[axis]),)
            start += x.shape[axis]
        out.append(g[idx])
    return tuple(out)


def prod_vjp(g, out, a, axis, keepdims):
    """d/da_j prod(a) = prod of the others: out / a_j without zeros; with one zero only its
    place gets the product of the others; with two or more, nothing does."""
    zero = a == 0
    nonzero = a.where(zero.logical_not(), 1)
    others = nonzero.prod(dim=axis, keepdim=True) if axis is not None else nonzero.prod().reshape((1,) * a.ndim)
    zeros = zero.astype(a.dtype).sum(dim=axis, keepdim=True) if axis is not None else zero.astype(a.dtype).sum()
    g = unreduce(g, a.shape, axis, keepdims)
    none_zero = (others / nonzero).where(zeros == 0, 0)
    one_zero = others.where(zero & (zeros == 1), 0)
    return (g * (none_zero + one_zero),)


def cumsum_vjp(g, axis):
    """The cotangent of a running sum is the running sum of g from the end."""
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return (g[flip].cumsum(axis)[flip],)


def einsum_parts(equation, n):
    """('ij', 'jk'), 'ik' of an equation like 'ij,jk->ik' (the output sorted when implicit)."""
    if "..." in equation:
        raise NotImplementedError(f"einsum {equation!r}: '...' is not supported; name every dimension")
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    ins = tuple(lhs.split(","))
    if len(ins) != n:
        raise ValueError(f"einsum {equation!r}: {len(ins)} operands in the equation, {n} given")
    if not _:
        letters = "".join(ins)
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ins, rhs


def einsum_vjp(g, xs, equation):
    """Each operand's cotangent is an einsum of g with the other operands, broadcast along
    the letters only that operand had (they were summed away)."""
    ins, out = einsum_parts(equation, len(xs))
    sizes = {c: n for s, x in zip(ins, xs) for c, n in zip(s, x.shape)}
    grads = []
    for i, (s, x) in enumerate(zip(ins, xs)):
        if len(set(s)) != len(s):
            raise NotImplementedError(f"einsum {equation!r}: the gradient of a diagonal ({s}) is not supported")
        others = [(t, y) for j, (t, y) in enumerate(zip(ins, xs)) if j != i]
        seen = set(out).union(*[set(t) for t, _ in others])
        kept = "".join(c for c in s if c in seen)
        gi = g._op("einsum", g, *[y for _, y in others], equation=",".join([out] + [t for t, _ in others]) + "->" + kept)
        if kept != s:
            gi = gi.reshape(tuple(sizes[c] if c in kept else 1 for c in s)).expand(*x.shape)
        grads.append(gi)
    return tuple(grads)

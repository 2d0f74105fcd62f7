"""`repr` of a tensor, as modern PyTorch prints it."""
from __future__ import annotations

import numpy as np

from .dtypes import bool_, float32, int64


def _fmt_floats(a):
    finite = a[np.isfinite(a)]
    if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        return lambda v: (f"{v:.0f}." if np.isfinite(v) else str(v)).replace("nan.", "nan")
    big = np.abs(finite).max() if finite.size else 0
    nz = np.abs(finite[finite != 0])
    small = nz.min() if nz.size else 1
    if big >= 1e8 or small < 1e-4 or (finite.size and big / small > 1e3):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def tensor_repr(t):
    a = np.asarray(t._fresh())
    prefix = "tensor("
    if a.size == 0:
        body = "[]"
    elif a.dtype.kind == "f":
        f = _fmt_floats(a)
        width = max(len(f(v)) for v in a.ravel())
        body = np.array2string(a, separator=", ", prefix=prefix, formatter={"float_kind": lambda v: f(v).rjust(width)},
                               max_line_width=80, threshold=1000)
    else:
        body = np.array2string(a, separator=", ", prefix=prefix, max_line_width=80, threshold=1000)
    extra = []
    if a.dtype not in (float32, int64, bool_):
        extra.append(f"dtype={a.dtype}")
    if t.grad_fn is not None:
        extra.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        extra.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extra) + ")"

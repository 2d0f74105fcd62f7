"""Indexing: `x[1:3, None, idx]` as a hashable spec plus index tensors (transgrad.index)."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from ..index import Arr, Mask, Sl
from ..ops import OPS
from .dispatch import apply, dims, python_scalar, wrap
from .dtypes import bool_
from .inplace import inplace
from .records import named, renamed

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into


def index_spec(idx, count=True):
    """Turn a user index into (hashable spec, index tensors). A boolean mask's count of True
    values decides the result's shape (inside a trace: a guard); `count=False` when it does
    not matter."""
    items = idx if isinstance(idx, tuple) else (idx,)
    spec, arrays = [], []
    for i in items:
        if isinstance(i, (list, np.ndarray, range)):
            i = wrap(np.asarray(i))
        if hasattr(i, "_data"):
            if i.dtype.kind not in "iub":
                raise IndexError(f"getitem: tensors used as indices must be integer or bool, got {i.dtype}")
            n = int(i.sum()._concrete("mask")) if i.dtype == bool_ and count else None
            spec.append(Mask(len(arrays), n) if i.dtype == bool_ else Arr(len(arrays)))
            arrays.append(i)
        elif isinstance(i, slice):
            spec.append(Sl(*(None if v is None else int(v) for v in (i.start, i.stop, i.step))))
        elif i is None or i is Ellipsis:
            spec.append(i)
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            spec.append(int(i))
        else:
            raise IndexError(f"getitem: unsupported index {i!r} of type {type(i).__name__}; use ints, slices, None, "
                             "..., integer or bool tensors")
    return tuple(spec), arrays


_VIEWS = {int: "SelectBackward0", Sl: "SliceBackward0"}


class Indexing:
    __slots__ = ()

    def gather(self: TensorT, dim, index) -> TensorT:
        """`out[i][j] = self[i][index[i][j]]` along `dim` (PyTorch's gather)."""
        index = wrap(index)
        d = dims(dim, self.ndim, "gather")[0]
        if index.ndim != self.ndim or index.dtype.kind not in "iu":
            raise RuntimeError(f"gather: index must be an integer tensor with as many dimensions as the input "
                               f"(got {index.dtype}{list(index.shape)} for {self.dtype}{list(self.shape)})")
        return apply(OPS["gather"], self, index, axis=d)

    @named("IndexSelectBackward0")
    def index_select(self: TensorT, dim, index) -> TensorT:
        d = dims(dim, self.ndim, "index_select")[0]
        if getattr(index, "ndim", 1) > 1:
            raise IndexError(f"index_select: the index must be a vector, got shape {list(index.shape)}")
        return self[(slice(None),) * d + (wrap(index),)]

    @named("MaskedFillBackward0")
    def masked_fill(self: TensorT, mask, value) -> TensorT:
        if hasattr(value, "_data"):
            return wrap(value).where(mask, self)
        return self.where(~wrap(mask), value if self.dtype.kind == "f" else self.dtype.type(value))  # keeps its dtype

    def __getitem__(self: TensorT, idx) -> TensorT:
        spec, arrays = index_spec(idx)
        if not arrays and all(i is Ellipsis or i == Sl(None, None, None) for i in spec):  # x[:], x[...]
            return self
        out = apply(OPS["getitem"], self, *arrays, index=spec)
        if not arrays:  # a view: PyTorch names it after the last index that takes one
            views = [_VIEWS.get(type(i), "UnsqueezeBackward0") for i in spec if i is not Ellipsis and i != Sl(None, None, None)]
            renamed(out, views[-1], -1)
        return out

    def __setitem__(self: TensorT, idx, value):
        value = wrap(python_scalar(value))
        is_tensor = hasattr(value, "_data")
        # one mask, one value for all its places (`g[x < 0] = 0`): the count of places is not needed
        one_mask = hasattr(idx, "_data") and idx.dtype == bool_
        spec, arrays = index_spec(idx, count=not (one_mask and np.size(value._data if is_tensor else value) == 1))
        if is_tensor and value.dtype != self.dtype:
            value = value.astype(self.dtype)
        inplace(self, "setitem", lambda t: apply(OPS["setitem"], t, value, *arrays, index=spec))

"""Tensor methods that reduce over dimensions."""
from __future__ import annotations

import collections
from typing import TypeVar

from ..ops import OPS
from .dispatch import apply, binary, dims, floating
from .dtypes import default_int, int64

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into

MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])


class Reductions:
    __slots__ = ()

    def sum(self: TensorT, dim=None, keepdim=False) -> TensorT:
        x = self
        if self.dtype.kind in "biu" and self.dtype != int64:  # as PyTorch: integer sums are int64
            x = self.astype(default_int(self._data))
        return apply(OPS["sum"], x, axis=dims(dim, self.ndim, "sum"), keepdims=bool(keepdim))

    def mean(self: TensorT, dim=None, keepdim=False) -> TensorT:
        if self.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got {self.dtype}")
        return apply(OPS["mean"], self, axis=dims(dim, self.ndim, "mean"), keepdims=bool(keepdim))

    def _extreme(self: TensorT, name, dim, keepdim):
        if self.numel() == 0:
            raise RuntimeError(f"{name}(): expected a non-empty tensor")
        if dim is None:  # the whole tensor: ties share the gradient evenly, as PyTorch's max()
            return apply(OPS["a" + name], self, axis=None, keepdims=False)
        axis = dims(dim, self.ndim, name)[0]
        # along a dim the gradient goes to the index returned, as PyTorch's max(dim)
        arg = apply(OPS["arg" + name], self, axis=axis, keepdims=True)
        values = apply(OPS[name + "_dim"], self, arg, axis=axis, keepdims=bool(keepdim))
        return MaxMin(values, arg if keepdim else arg.reshape(values.shape))

    def max(self: TensorT, dim=None, keepdim=False) -> TensorT:
        """`max()`, `max(dim)` -> (values, indices), or `max(other)`: the elementwise maximum."""
        if hasattr(dim, "_data"):
            return binary("maximum", self, dim)
        return self._extreme("max", dim, keepdim)

    def min(self: TensorT, dim=None, keepdim=False) -> TensorT:
        """`min()`, `min(dim)` -> (values, indices), or `min(other)`: the elementwise minimum."""
        if hasattr(dim, "_data"):
            return binary("minimum", self, dim)
        return self._extreme("min", dim, keepdim)

    def amax(self: TensorT, dim=None, keepdim=False) -> TensorT:
        return apply(OPS["amax"], self, axis=dims(dim, self.ndim, "amax"), keepdims=bool(keepdim))

    def amin(self: TensorT, dim=None, keepdim=False) -> TensorT:
        return apply(OPS["amin"], self, axis=dims(dim, self.ndim, "amin"), keepdims=bool(keepdim))

    def argmax(self: TensorT, dim=None, keepdim=False) -> TensorT:
        return apply(OPS["argmax"], self, axis=None if dim is None else dims(dim, self.ndim, "argmax")[0],
                     keepdims=bool(keepdim))

    def argmin(self: TensorT, dim=None, keepdim=False) -> TensorT:
        return apply(OPS["argmin"], self, axis=None if dim is None else dims(dim, self.ndim, "argmin")[0],
                     keepdims=bool(keepdim))

    def norm(self: TensorT, p=2, dim=None, keepdim=False) -> TensorT:
        x = floating(self)
        if p in (2, "fro"):
            return apply(OPS["norm"], x, axis=dims(dim, self.ndim, "norm"), keepdims=bool(keepdim))
        if p == 1:
            return x.abs().sum(dim, keepdim)
        if p == float("inf"):
            return x.abs().amax(dim, keepdim)
        return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    def softmax(self: TensorT, dim) -> TensorT:
        return apply(OPS["softmax"], floating(self), axis=dims(dim, self.ndim, "softmax")[0])

    def log_softmax(self: TensorT, dim) -> TensorT:
        return apply(OPS["log_softmax"], floating(self), axis=dims(dim, self.ndim, "log_softmax")[0])

"""Tensor methods that reduce over dimensions."""
from __future__ import annotations

import collections
from typing import TypeVar

import numpy as np

from ..ops import OPS
from .dispatch import apply, binary, dims, floating
from .dtypes import default_int, int64
from .records import named, renamed

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into

MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])
SortResult = collections.namedtuple("SortResult", ["values", "indices"])


class Reductions:
    __slots__ = ()

    def sum(self: TensorT, dim=None, keepdim=False, *, dtype=None, axis=None) -> TensorT:
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind in "biu" and x.dtype != int64:  # as PyTorch: integer sums are int64
            x = x.astype(default_int(self._data))
        dim = axis if dim is None else dim
        out = apply(OPS["sum"], x, axis=dims(dim, self.ndim, "sum"), keepdims=bool(keepdim))
        return out if dim is None else renamed(out, "SumBackward1", -1)  # PyTorch's name for sum(dim)

    def mean(self: TensorT, dim=None, keepdim=False, *, dtype=None, axis=None) -> TensorT:
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got {x.dtype}")
        dim = axis if dim is None else dim
        out = apply(OPS["mean"], x, axis=dims(dim, self.ndim, "mean"), keepdims=bool(keepdim))
        return out if dim is None else renamed(out, "MeanBackward1", -1)

    def prod(self: TensorT, dim=None, keepdim=False, *, dtype=None) -> TensorT:
        x = self if dtype is None else self.astype(dtype)
        return apply(OPS["prod"], x, axis=dims(dim, self.ndim, "prod"), keepdims=bool(keepdim))

    def cumsum(self: TensorT, dim, *, dtype=None) -> TensorT:
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind in "biu" and x.dtype != int64:
            x = x.astype(default_int(self._data))
        return apply(OPS["cumsum"], x, axis=dims(dim, self.ndim, "cumsum")[0])

    @named("VarBackward0")
    def var(self: TensorT, dim=None, unbiased=None, keepdim=False, *, correction=None) -> TensorT:
        """Variance: the mean squared deviation, divided by N - correction (1 by default)."""
        correction = (1 if unbiased is None or unbiased else 0) if correction is None else correction
        x = floating(self)
        d = x - x.mean(dim, keepdim=True)
        axes = dims(dim, self.ndim, "var")
        n = x.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return (d * d).sum(dim, keepdim) / max(n - correction, 0)

    @named("StdBackward0")
    def std(self: TensorT, dim=None, unbiased=None, keepdim=False, *, correction=None) -> TensorT:
        v = self.var(dim, unbiased, keepdim, correction=correction)
        return v.where(v != 0, 1).sqrt().where(v != 0, 0)  # no spread: 0, with gradient 0 (not inf * 0)

    @named("LogsumexpBackward0")
    def logsumexp(self: TensorT, dim, keepdim=False) -> TensorT:
        x, axes = floating(self), dims(dim, self.ndim, "logsumexp")
        m = x.amax(axes, keepdim=True).detach()  # for stability only: its gradient cancels
        m = m.where(m.isfinite(), 0)
        out = (x - m).exp().sum(axes, keepdim=True).log() + m
        return out if keepdim else out.reshape(tuple(n for i, n in enumerate(out.shape) if i not in axes))

    def all(self: TensorT, dim=None, keepdim=False) -> TensorT:
        x = self if self.dtype.kind == "b" else self != 0
        return apply(OPS["all"], x, axis=dims(dim, self.ndim, "all"), keepdims=bool(keepdim))

    def any(self: TensorT, dim=None, keepdim=False) -> TensorT:
        x = self if self.dtype.kind == "b" else self != 0
        return apply(OPS["any"], x, axis=dims(dim, self.ndim, "any"), keepdims=bool(keepdim))

    def argsort(self: TensorT, dim=-1, descending=False) -> TensorT:
        return apply(OPS["argsort"], self, axis=dims(dim, self.ndim, "argsort")[0], descending=bool(descending))

    @named("SortBackward0")
    def sort(self: TensorT, dim=-1, descending=False):
        """(values, indices) sorted along `dim`; the gradient goes to the places they came from."""
        idx = self.argsort(dim, descending)
        return SortResult(self.gather(dim, idx), idx)

    @named("TopkBackward0")
    def topk(self: TensorT, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the `k` largest (or smallest) along `dim`."""
        d = dims(dim, self.ndim, "topk")[0]
        if not 0 <= k <= (self.shape[d] if self.ndim else 1):
            raise RuntimeError(f"topk: selected index k = {k} is out of range for a dimension of size "
                               f"{self.shape[d] if self.ndim else 1}")
        idx = self.argsort(d, descending=largest)[(slice(None),) * d + (slice(0, k),)]
        return SortResult(self.gather(d, idx), idx)

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

    @named("AmaxBackward0")
    def amax(self: TensorT, dim=None, keepdim=False) -> TensorT:
        return apply(OPS["amax"], self, axis=dims(dim, self.ndim, "amax"), keepdims=bool(keepdim))

    @named("AminBackward0")
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

"""Tensor methods that change the shape: views where NumPy gives views (NOTE [views])."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from ..ops import OPS
from .dispatch import apply, dims, wrap
from .dtypes import OpError

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into


def _sizes(args):
    """`f(2, 3)` or `f((2, 3))`."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


class Shapes:
    __slots__ = ()

    def reshape(self: TensorT, *shape) -> TensorT:
        shape = tuple(int(s) for s in _sizes(shape))
        n, known = self.numel(), int(np.prod([s for s in shape if s != -1]))
        if shape.count(-1) > 1 or (shape.count(-1) == 0 and known != n) or (-1 in shape and (known == 0 or n % known)):
            raise OpError(f"reshape: shape {list(shape)} is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
        return self if shape == self.shape else apply(OPS["reshape"], self, shape=shape)

    view = reshape

    def flatten(self: TensorT) -> TensorT:
        return self.reshape(-1)

    def expand(self: TensorT, *sizes) -> TensorT:
        sizes = _sizes(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise OpError(f"expand: the number of sizes provided ({len(sizes)}) must be at least the number of "
                          f"dimensions ({self.ndim})")
        shape = tuple(self.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(sizes))
        return self if shape == self.shape else apply(OPS["expand"], self, shape=shape)

    def expand_as(self: TensorT, other) -> TensorT:
        return self.expand(*other.shape)

    def permute(self: TensorT, *order) -> TensorT:
        order = _sizes(order)
        axes = tuple(int(d) % max(self.ndim, 1) for d in order)
        if sorted(axes) != list(range(self.ndim)):
            raise OpError(f"permute: dims {list(order)} are not a permutation of a {self.ndim}-d tensor's dimensions")
        return apply(OPS["permute"], self, axes=axes)

    def transpose(self: TensorT, dim0, dim1) -> TensorT:
        d0, d1 = (dims(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        return self if d0 == d1 else apply(OPS["transpose"], self, dim0=min(d0, d1), dim1=max(d0, d1))

    def t(self: TensorT) -> TensorT:
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self: TensorT) -> TensorT:
        return self.permute(*reversed(range(self.ndim)))

    def unsqueeze(self: TensorT, dim) -> TensorT:
        d = int(dim) % (self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self: TensorT, dim=None) -> TensorT:
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        d = dims(dim, self.ndim, "squeeze")[0]
        return self if self.shape[d] != 1 else self.reshape(self.shape[:d] + self.shape[d + 1:])

    def matmul(self: TensorT, other) -> TensorT:
        other = wrap(other)
        if self.ndim == 0 or other.ndim == 0:
            raise OpError(f"matmul: both arguments need to be at least 1-D (got shapes {self.shape} and {other.shape})")
        k1 = self.shape[-1]
        k2 = other.shape[-2] if other.ndim > 1 else other.shape[0]
        if k1 != k2:
            raise OpError(f"matmul: shapes {self.shape} and {other.shape} cannot be multiplied ({k1} != {k2})")
        a, b = self, other
        if a.dtype != b.dtype and (a.dtype.kind == "f" or b.dtype.kind == "f"):
            dt = np.promote_types(a.dtype, b.dtype) if a.dtype.kind == b.dtype.kind else (
                a.dtype if a.dtype.kind == "f" else b.dtype)
            a, b = a.astype(dt), b.astype(dt)
        return apply(OPS["matmul"], a, b)

    mm = matmul

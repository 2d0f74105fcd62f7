"""Tensor methods that change the shape: views where NumPy gives views (NOTE [views])."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from ..ops import OPS
from .dispatch import apply, dims, result_dtype, wrap
from .dtypes import OpError
from .records import named, renamed, sequence

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

    def flatten(self: TensorT, start_dim=0, end_dim=-1) -> TensorT:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (dims(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim))
        if start > end:
            raise OpError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        return self.reshape(self.shape[:start] + (int(np.prod(self.shape[start:end + 1])),) + self.shape[end + 1:])

    def expand(self: TensorT, *sizes) -> TensorT:
        sizes = _sizes(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise OpError(f"expand: the number of sizes provided ({len(sizes)}) must be at least the number of "
                          f"dimensions ({self.ndim})")
        if -1 in sizes[:lead]:
            raise OpError(f"expand: -1 is not allowed in a leading, new dimension (sizes {list(sizes)})")
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

    @named("TBackward0")
    def t(self: TensorT) -> TensorT:
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self: TensorT) -> TensorT:
        return self.permute(*reversed(range(self.ndim)))

    @named("UnsqueezeBackward0")
    def unsqueeze(self: TensorT, dim) -> TensorT:
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dimension {dim} is out of range for a {self.ndim}-d tensor "
                             f"({-self.ndim - 1} ... {self.ndim})")
        d = int(dim) % (self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self: TensorT, dim=None) -> TensorT:
        since = next(sequence)
        if dim is None:
            return renamed(self.reshape(tuple(s for s in self.shape if s != 1)), "SqueezeBackward0", since)
        ds = {d for d in dims(dim, self.ndim, "squeeze") if self.shape[d] == 1}  # a dim or a tuple of them
        out = self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in ds)) if ds else self
        return renamed(out, "SqueezeBackward1", since)

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
            dt = result_dtype((a, b))
            a, b = a.astype(dt), b.astype(dt)
        return apply(OPS["matmul"], a, b)

    def mm(self: TensorT, other) -> TensorT:
        _ranks(self, other, (2, 2), "mm")
        return self.matmul(other)

    @named("BmmBackward0")
    def bmm(self: TensorT, other) -> TensorT:
        _ranks(self, other, (3, 3), "bmm")
        return self.matmul(other)

    @named("MvBackward0")
    def mv(self: TensorT, other) -> TensorT:
        _ranks(self, other, (2, 1), "mv")
        return self.matmul(other)

    @named("DotBackward0")
    def dot(self: TensorT, other) -> TensorT:
        if self.ndim != 1 or getattr(other, "ndim", 0) != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got {self.ndim}D and {getattr(other, 'ndim', 0)}D tensors")
        return self.matmul(other)

    def outer(self: TensorT, other) -> TensorT:
        return self.reshape(-1, 1) * wrap(other).reshape(1, -1)

    @named("RepeatBackward0")
    def repeat(self: TensorT, *sizes) -> TensorT:
        """Tile the tensor `sizes[d]` times along each dimension (PyTorch's repeat)."""
        sizes = tuple(int(s) for s in _sizes(sizes))
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number of "
                               f"dimensions of the tensor ({self.ndim})")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        spread = tuple(x for n in shape for x in (1, n))
        tiled = tuple(x for r, n in zip(sizes, shape) for x in (r, n))
        return self.reshape(spread).expand(*tiled).reshape(tuple(r * n for r, n in zip(sizes, shape)))

    @named("FlipBackward0")
    def flip(self: TensorT, *axes) -> TensorT:
        axes = dims(_sizes(axes), self.ndim, "flip") or ()
        return self[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(self.ndim))]

    @named("SplitBackward0")
    def split(self: TensorT, split_size_or_sections, dim=0) -> tuple:
        d = dims(dim, self.ndim, "split")[0]
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} do not add up to dimension {d}'s size {n}")
        out, start = [], 0
        for size in sizes:
            out.append(self[(slice(None),) * d + (slice(start, start + size),)])
            start += size
        return tuple(out)

    def chunk(self: TensorT, chunks, dim=0) -> tuple:
        n = self.shape[dims(dim, self.ndim, "chunk")[0]]
        return self.split(-(-n // chunks) if n else 1, dim)

    @named("TrilBackward0")
    def tril(self: TensorT, diagonal=0) -> TensorT:
        return self.where(self._triangle(diagonal, lower=True), 0)

    @named("TriuBackward0")
    def triu(self: TensorT, diagonal=0) -> TensorT:
        return self.where(self._triangle(diagonal, lower=False), 0)

    def _triangle(self, diagonal, lower):
        rows, cols = self.shape[-2:]
        keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else ~np.tri(rows, cols, diagonal - 1, dtype=bool)
        return wrap(keep)


def _ranks(a, b, want, name):
    got = (a.ndim, getattr(b, "ndim", 0))
    if got != want:
        raise RuntimeError(f"{name}: expected {want[0]}-D and {want[1]}-D tensors, got shapes {list(a.shape)} and "
                           f"{list(getattr(b, 'shape', ()))}")

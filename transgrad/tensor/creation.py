"""Making tensors: from data, filled, random, the legacy constructors, and the functions
of several tensors (`cat`, `stack`, `where`, `maximum`)."""
from __future__ import annotations

import warnings

import numpy as np

from .._state import mode
from ..ops import OPS
from .core import Tensor
from .dispatch import apply, binary, dims, leaf, where, wrap  # noqa: F401  (where: tg.where)
from .dtypes import OpError, check_dtype, default_dtype, float32, float64, int64, is_jax_array, to_array

__all__ = ["tensor", "from_numpy", "zeros", "ones", "full", "eye", "arange", "zeros_like", "ones_like", "full_like",
           "manual_seed", "randn", "rand", "FloatTensor", "DoubleTensor", "LongTensor", "where", "maximum", "minimum",
           "cat", "stack"]


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dtype(dtype):
    return default_dtype if dtype is None else check_dtype(np.dtype(dtype), "constructor")


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from a scalar, nested lists, a NumPy array or a Tensor (copied).

    >>> import transgrad as tg
    >>> tg.tensor([[1, 2], [3, 4]], dtype=tg.float32)
    tensor([[1., 2.],
            [3., 4.]])
    """
    a = to_array(data, dtype)
    return leaf(a if is_jax_array(a) else np.array(a, copy=True), requires_grad)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with the NumPy array `a`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(a).__name__})")
    return leaf(to_array(a, where="from_numpy()"), False)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return leaf(np.zeros(_shape(shape), _dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """`tg.ones(2, 2)`: a float32 tensor of ones."""
    return leaf(np.ones(_shape(shape), _dtype(dtype)), requires_grad)


def full(shape, value, dtype=None, requires_grad: bool = False) -> Tensor:
    return leaf(np.full(_shape((shape,)), value, _dtype(dtype)), requires_grad)


def eye(n: int, m=None, dtype=None, requires_grad: bool = False) -> Tensor:
    return leaf(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    a = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None:
        a = a.astype(default_dtype if a.dtype.kind == "f" else int64)
    return leaf(a.astype(dtype) if dtype is not None else a, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, value, dtype=None) -> Tensor:
    return leaf(np.full(t.shape, value, dtype or t.dtype), False)


_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind `randn` and `rand`."""
    global _rng
    _rng = np.random.default_rng(seed)


def _random_in_trace(name):
    if mode.tracer is not None and mode.tracer.compiling:
        warnings.warn(f"tg.{name} inside a compiled function is drawn once, when the function is traced, and "
                      "then reused by every call; pass random tensors in as arguments", RuntimeWarning, stacklevel=3)


def randn(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    _random_in_trace("randn")
    return leaf(_rng.standard_normal(_shape(shape)).astype(_dtype(dtype)), requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    _random_in_trace("rand")
    return leaf(_rng.random(_shape(shape)).astype(_dtype(dtype)), requires_grad)


def FloatTensor(*args) -> Tensor:
    """Legacy constructor: `FloatTensor([0.1, 1.0])` (data) or `FloatTensor(2, 3)` (shape)."""
    return Tensor(*args, dtype=float32)


def DoubleTensor(*args) -> Tensor:
    return Tensor(*args, dtype=float64)


def LongTensor(*args) -> Tensor:
    return Tensor(*args, dtype=int64)


def maximum(a, b) -> Tensor:
    return binary("maximum", a, b)


def minimum(a, b) -> Tensor:
    return binary("minimum", a, b)


def _same_dtype(ts, name):
    ts = [wrap(t) for t in ts]
    if not ts:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    dt = ts[0].dtype
    for t in ts[1:]:
        dt = np.promote_types(dt, t.dtype)
    return [t.astype(dt) for t in ts]


def cat(tensors, dim: int = 0) -> Tensor:
    ts = _same_dtype(tensors, "cat")
    axis = dims(dim, ts[0].ndim, "cat")[0]
    for t in ts[1:]:
        if t.ndim != ts[0].ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if i != axis):
            raise OpError(f"cat: sizes of tensors must match except in dimension {axis} (got {ts[0].shape} and {t.shape})")
    return apply(OPS["cat"], *ts, axis=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    ts = _same_dtype(tensors, "stack")
    for t in ts[1:]:
        if t.shape != ts[0].shape:
            raise OpError(f"stack: expects each tensor to be equal size, but got {ts[0].shape} and {t.shape}")
    axis = int(dim) % (ts[0].ndim + 1)
    return apply(OPS["stack"], *ts, axis=axis)


"""Making tensors: from data, filled, random, the legacy constructors, and the functions
of several tensors (`cat`, `stack`, `where`, `maximum`)."""
from __future__ import annotations

import numpy as np

from .._state import mode, user_site
from ..ops import OPS
from .core import Tensor
from .dispatch import apply, binary, dims, leaf, new, result_dtype, where, wrap  # noqa: F401  (where: tg.where)
from ..rules import einsum_parts
from .dtypes import OpError, check_device, check_dtype, default_dtype, float32, float64, int64, is_jax_array, to_array

__all__ = ["tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye", "arange", "linspace", "zeros_like",
           "ones_like", "empty_like", "full_like", "manual_seed", "randn", "rand", "randint", "randperm", "randn_like",
           "rand_like", "FloatTensor", "DoubleTensor", "LongTensor", "where", "maximum", "minimum", "cat", "stack", "einsum",
           "allclose", "is_tensor", "numel"]


def _shape(shape, size=None):
    """`f(2, 3)`, `f((2, 3))` or `f(size=(2, 3))`."""
    if size is not None:
        shape = (size,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dtype(dtype):
    return default_dtype if dtype is None else check_dtype(np.dtype(dtype), "constructor")


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from a scalar, nested lists, a NumPy array or a Tensor (copied).

    >>> import transgrad as tg
    >>> tg.tensor([[1, 2], [3, 4]], dtype=tg.float32)
    tensor([[1., 2.],
            [3., 4.]])
    """
    check_device(device)
    a = to_array(data, dtype)
    return leaf(a if is_jax_array(a) else np.array(a, copy=True), requires_grad)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with the NumPy array `a`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(a).__name__})")
    return leaf(to_array(a, where="from_numpy()"), False)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return leaf(np.zeros(_shape(shape, size), _dtype(dtype)), requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`tg.ones(2, 2)`: a float32 tensor of ones."""
    check_device(device)
    return leaf(np.ones(_shape(shape, size), _dtype(dtype)), requires_grad)


empty = zeros  # PyTorch leaves empty() uninitialised; zeros are one of its possible values


def full(shape, value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    if dtype is None and isinstance(value, (bool, int, np.integer)):  # as PyTorch: the value's kind
        dtype = np.dtype(bool) if isinstance(value, bool) else int64
    return leaf(np.full(_shape((shape,)), value, _dtype(dtype)), requires_grad)


def eye(n: int, m=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return leaf(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    a = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None:
        a = a.astype(default_dtype if a.dtype.kind == "f" else int64)
    return leaf(a.astype(dtype) if dtype is not None else a, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return leaf(np.linspace(start, end, steps).astype(_dtype(dtype)), requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(*t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


empty_like = zeros_like


def full_like(t: Tensor, value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return leaf(np.full(t.shape, value, dtype or t.dtype), requires_grad)


_rng = None  # made on first use: numpy.random costs `import transgrad` a tenth of its time


def manual_seed(seed: int) -> None:
    """Seed the generator behind `randn`, `rand`, `randint`, `randperm`, dropout masks and
    the initialisations of `tg.nn`."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The generator `manual_seed` seeds."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng


def drawn(draw, requires_grad: bool = False) -> Tensor:
    """The tensor `draw(generator)` makes. Inside a compiled function it is an input of the
    trace, drawn again at every call (NOTE [effects]), never a constant."""
    t = new(draw(generator()))
    t._source = user_site()
    tracer = mode.tracer
    if tracer is not None:
        if tracer.compiling:
            tracer.random(draw, t)
        else:
            tracer.constant(t)
    if requires_grad:
        t.requires_grad_(True)
    return t


def randn(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    shape, dtype = _shape(shape, size), _dtype(dtype)
    return drawn(lambda g: g.standard_normal(shape).astype(dtype), requires_grad)


def rand(*shape, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    shape, dtype = _shape(shape, size), _dtype(dtype)
    return drawn(lambda g: g.random(shape).astype(dtype), requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    """Integers from [low, high) (or [0, low) with one bound), int64 as in PyTorch."""
    check_device(device)
    if isinstance(high, (tuple, list)):  # randint(high, size), as PyTorch's
        low, high, size = 0, low, high
    low, high = (0, low) if high is None else (low, high)
    shape, dtype = _shape((size,)), dtype or int64
    return drawn(lambda g: g.integers(low, high, shape).astype(dtype))


def randperm(n: int, dtype=None, device=None) -> Tensor:
    check_device(device)
    dtype = dtype or int64
    return drawn(lambda g: g.permutation(n).astype(dtype))


def randn_like(t: Tensor, dtype=None) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype)


def rand_like(t: Tensor, dtype=None) -> Tensor:
    return rand(*t.shape, dtype=dtype or t.dtype)


def einsum(equation: str, *operands) -> Tensor:
    """`tg.einsum("ij,jk->ik", a, b)`, its operands given one by one or as a list."""
    xs = [wrap(x) for x in (operands[0] if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else operands)]
    einsum_parts(equation, len(xs))  # an unsupported equation fails here, before anything runs
    if len({x.dtype for x in xs}) > 1:
        xs = _same_dtype(xs, "einsum")
    return apply(OPS["einsum"], *xs, equation=equation.replace(" ", ""))


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(np.allclose(np.asarray(wrap(a)), np.asarray(wrap(b)), rtol=rtol, atol=atol, equal_nan=equal_nan))


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()


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
    dt = result_dtype(ts)
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


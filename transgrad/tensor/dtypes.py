"""Data types and arrays: what a tensor may hold, and PyTorch's defaults for it."""
from __future__ import annotations

import numpy as np

from .._state import mode

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = np.dtype("int8"), np.dtype("int16"), np.dtype("int32"), np.dtype("int64")
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
SUPPORTED = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
default_dtype = float32


class OpError(RuntimeError, ValueError):
    """A primitive could not run on these operands (shapes, dtypes or values)."""


def check_dtype(dt, where):
    if dt not in SUPPORTED:
        names = ", ".join(d.name for d in SUPPORTED)
        raise TypeError(f"{where}: dtype {dt} is not supported by transgrad (supported: {names})")
    return dt


def is_jax_array(a) -> bool:
    return type(a).__module__.startswith(("jax", "jaxlib"))


def default_int(data):
    """int64, or int32 for a JAX array when JAX runs without x64 (as JAX itself does)."""
    if mode.host:
        return int32
    if is_jax_array(data):
        import jax

        return int64 if jax.config.jax_enable_x64 else int32
    return int64


def x64_refused(data, dtype, what):
    """float64 of a JAX array without jax_enable_x64 would silently be float32: refuse it."""
    if dtype == float64 and (mode.host or is_jax_array(data)):
        import jax

        if not jax.config.jax_enable_x64:
            raise TypeError(f"{what} of a JAX array: JAX keeps float32 unless jax_enable_x64 is on "
                            "(jax.config.update('jax_enable_x64', True))")


def to_array(data, dtype=None, where="tensor()"):
    """An array (NumPy, or JAX left where it is) from a scalar, nested lists or an array;
    Python floats become float32 and ints int64, as in PyTorch."""
    if hasattr(data, "_data"):  # a Tensor
        a = data._data
    elif isinstance(data, (np.ndarray, np.generic)):
        a = np.asarray(data)
    elif is_jax_array(data):  # a JAX array stays where it is (JAX arrays are immutable)
        if dtype is not None and np.dtype(dtype) != data.dtype:
            data = data.astype(dtype)
        return data
    else:
        a = np.asarray(_unwrap_nested(data))
        if dtype is None and a.dtype.kind == "f":
            a = a.astype(default_dtype)
        elif dtype is None and a.dtype.kind in "iu":
            a = a.astype(int64)
    if dtype is not None:
        a = np.asarray(a, dtype=check_dtype(np.dtype(dtype), where))
    check_dtype(a.dtype, where)
    return a


def _unwrap_nested(x):
    if hasattr(x, "_data"):
        return x._data
    if isinstance(x, (list, tuple)):
        return [_unwrap_nested(v) for v in x]
    return x


class device:
    """Where a tensor lives: `device("cpu")` (NumPy arrays; JAX arrays have JAX devices). A
    CUDA device is not available: programs that pick `"cuda" if torch.cuda.is_available()
    else "cpu"` run on the CPU."""

    def __init__(self, type="cpu", index=None):
        type = getattr(type, "type", type)
        if str(type).split(":")[0] != "cpu":
            raise RuntimeError(f"device {type!r}: transgrad runs on the CPU (NumPy) or on JAX devices "
                               "(t.to('jax')); CUDA is not available")
        self.type, self.index = "cpu", index

    def __eq__(self, other):
        return str(getattr(other, "type", other)) == "cpu"

    def __hash__(self):
        return hash("cpu")

    def __repr__(self):
        return "device(type='cpu')"

    def __str__(self):
        return "cpu"


def check_device(d):
    """The `device=` of a constructor: the CPU, or nothing."""
    if d is not None:
        device(d)


_NARROW = {np.dtype("float64"): float32, np.dtype("int64"): int32, np.dtype("uint64"): np.dtype("uint32")}


def as_jax_computes(out):
    """NOTE [host tracing]: a NumPy result with the dtype JAX without x64 gives it (32 bits)."""
    narrow = _NARROW.get(out.dtype)
    return np.asarray(out, narrow) if narrow is not None else out

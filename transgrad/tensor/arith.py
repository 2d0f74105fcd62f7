"""Tensor methods: operators, elementwise functions, comparisons and casts."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from ..ops import OPS
from .dispatch import apply, binary, floating, python_scalar, where, wrap
from .dtypes import bool_, check_dtype, float32, float64, int32, int64, x64_refused
from .records import named

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into


def _unary(name):
    row = OPS[name]
    if row.floating:  # exp, log, ... of an integer tensor give floats
        def method(self: TensorT) -> TensorT:
            return apply(row, floating(self))
    else:
        def method(self: TensorT) -> TensorT:
            return apply(row, self)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Elementwise `{name}` (PyTorch's `Tensor.{name}`)."
    return method


def _truth(x):
    x = wrap(python_scalar(x))
    return x if getattr(x, "dtype", None) == np.bool_ else x != 0


class Arithmetic:
    """Operators and elementwise methods, each one `apply` of an op-table row."""

    __slots__ = ()

    def __add__(self: TensorT, o) -> TensorT: return binary("add", self, o)
    def __radd__(self: TensorT, o) -> TensorT: return binary("add", o, self)
    def __sub__(self: TensorT, o) -> TensorT: return binary("sub", self, o)
    def __rsub__(self: TensorT, o) -> TensorT: return binary("sub", o, self)
    def __mul__(self: TensorT, o) -> TensorT: return binary("mul", self, o)
    def __rmul__(self: TensorT, o) -> TensorT: return binary("mul", o, self)
    def __truediv__(self: TensorT, o) -> TensorT: return binary("div", self, o)
    def __rtruediv__(self: TensorT, o) -> TensorT: return binary("div", o, self)
    def __pow__(self: TensorT, o) -> TensorT: return binary("pow", self, o)
    def __rpow__(self: TensorT, o) -> TensorT: return binary("pow", o, self)
    def __mod__(self: TensorT, o) -> TensorT: return binary("remainder", self, o)
    def __rmod__(self: TensorT, o) -> TensorT: return binary("remainder", o, self)
    def __floordiv__(self: TensorT, o) -> TensorT: return binary("floor_divide", self, o)
    def __rfloordiv__(self: TensorT, o) -> TensorT: return binary("floor_divide", o, self)
    def __matmul__(self: TensorT, o) -> TensorT: return self.matmul(o)
    def __rmatmul__(self: TensorT, o) -> TensorT: return wrap(o).matmul(self)
    def __neg__(self: TensorT) -> TensorT: return apply(OPS["neg"], self)
    def __pos__(self: TensorT): return self
    def __abs__(self: TensorT) -> TensorT: return self.abs()
    def __lt__(self: TensorT, o) -> TensorT: return binary("lt", self, o)
    def __le__(self: TensorT, o) -> TensorT: return binary("le", self, o)
    def __gt__(self: TensorT, o) -> TensorT: return binary("gt", self, o)
    def __ge__(self: TensorT, o) -> TensorT: return binary("ge", self, o)
    def __eq__(self: TensorT, o) -> TensorT: return binary("eq", self, o)
    def __ne__(self: TensorT, o) -> TensorT: return binary("ne", self, o)
    def __and__(self: TensorT, o) -> TensorT: return binary("logical_and", self, o)
    def __or__(self: TensorT, o) -> TensorT: return binary("logical_or", self, o)
    def __invert__(self: TensorT) -> TensorT: return apply(OPS["logical_not"], self)

    def add(self: TensorT, o, *, alpha=1) -> TensorT: return self + (o if alpha == 1 else o * alpha)
    def sub(self: TensorT, o, *, alpha=1) -> TensorT: return self - (o if alpha == 1 else o * alpha)
    def mul(self: TensorT, o) -> TensorT: return self * o
    def div(self: TensorT, o, *, rounding_mode=None) -> TensorT:
        if rounding_mode is None:
            return self / o
        q = self // o  # "floor"; "trunc" rounds toward zero, in the dtype floor division gives
        return q if rounding_mode == "floor" else (self / o).trunc().astype(q.dtype)
    def pow(self: TensorT, o) -> TensorT: return self ** o
    def remainder(self: TensorT, o) -> TensorT: return self % o
    def fmod(self: TensorT, o) -> TensorT: return binary("fmod", self, o)
    def floor_divide(self: TensorT, o) -> TensorT: return self // o
    def frac(self: TensorT) -> TensorT: return self - self.trunc()
    def maximum(self: TensorT, o) -> TensorT: return binary("maximum", self, o)
    def minimum(self: TensorT, o) -> TensorT: return binary("minimum", self, o)
    def lt(self: TensorT, o) -> TensorT: return self < o
    def le(self: TensorT, o) -> TensorT: return self <= o
    def gt(self: TensorT, o) -> TensorT: return self > o
    def ge(self: TensorT, o) -> TensorT: return self >= o
    def eq(self: TensorT, o) -> TensorT: return self == o
    def ne(self: TensorT, o) -> TensorT: return self != o
    # logical: nonzero is True (`&`, `|` and `~` of integers are bitwise, as in PyTorch)
    def logical_and(self: TensorT, o) -> TensorT: return binary("logical_and", _truth(self), _truth(o))
    def logical_or(self: TensorT, o) -> TensorT: return binary("logical_or", _truth(self), _truth(o))
    def logical_not(self: TensorT) -> TensorT: return ~_truth(self)

    @named("PowBackward0")
    def square(self: TensorT) -> TensorT:
        return self * self

    @named("RsqrtBackward0")
    def rsqrt(self: TensorT) -> TensorT:
        return 1 / self.sqrt()

    @named("ReciprocalBackward0")
    def reciprocal(self: TensorT) -> TensorT:
        return 1 / floating(self)

    @named("ClampMinBackward0")
    def clamp_min(self: TensorT, min) -> TensorT:
        return self.clamp(min=min)

    @named("ClampMaxBackward0")
    def clamp_max(self: TensorT, max) -> TensorT:
        return self.clamp(max=max)

    def clamp(self: TensorT, min=None, max=None) -> TensorT:
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        if any(hasattr(b, "_data") and (b.ndim or b.requires_grad) for b in (min, max)):  # tensor bounds: ties keep self's grad
            out = self if min is None else where(self < min, min, self)
            return out if max is None else where(out > max, max, out)
        lo, hi = python_scalar(min), python_scalar(max)
        x = floating(self) if isinstance(lo, float) or isinstance(hi, float) else self  # int with 1.5: float32
        return apply(OPS["clamp"], x, lo=lo, hi=hi)

    clip = clamp

    def where(self: TensorT, condition, other) -> TensorT:
        """`self` where `condition` holds, else `other` (PyTorch's `Tensor.where`)."""
        return where(condition, self, other)

    def astype(self: TensorT, dtype) -> TensorT:
        dtype = check_dtype(np.dtype(dtype), "astype")
        x64_refused(self._data, dtype, "astype(float64)")
        return self if dtype == self.dtype else apply(OPS["astype"], self, dtype=dtype)

    def float(self: TensorT) -> TensorT: return self.astype(float32)
    def double(self: TensorT) -> TensorT: return self.astype(float64)
    def long(self: TensorT) -> TensorT: return self.astype(int64)
    def int(self: TensorT) -> TensorT: return self.astype(int32)
    def bool(self: TensorT) -> TensorT: return self.astype(bool_)
    def clone(self: TensorT) -> TensorT: return apply(OPS["clone"], self)
    def contiguous(self: TensorT) -> TensorT: return self


# every unary elementwise row is a method of its own name (exp, log, sin, ...): adding one is
# one row and one OpSpec
for _row in OPS.values():
    if _row.elementwise and _row.inputs == ("a",) and not _row.params and _row.method == _row.name:
        if _row.name not in Arithmetic.__dict__:
            setattr(Arithmetic, _row.name, _unary(_row.name))

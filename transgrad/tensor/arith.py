"""Tensor methods: operators, elementwise functions, comparisons and casts."""
from __future__ import annotations

import numpy as np

from ..ops import OPS
from .dispatch import apply, binary, floating, python_scalar, where, wrap
from .dtypes import bool_, check_dtype, float32, float64, int32, int64, x64_refused


def _unary(name):
    row = OPS[name]
    if row.floating:  # exp, log, ... of an integer tensor give floats
        def method(self):
            return apply(row, floating(self))
    else:
        def method(self):
            return apply(row, self)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Elementwise `{name}` (PyTorch's `Tensor.{name}`)."
    return method


class Arithmetic:
    """Operators and elementwise methods, each one `apply` of an op-table row."""

    __slots__ = ()

    def __add__(self, o): return binary("add", self, o)
    def __radd__(self, o): return binary("add", o, self)
    def __sub__(self, o): return binary("sub", self, o)
    def __rsub__(self, o): return binary("sub", o, self)
    def __mul__(self, o): return binary("mul", self, o)
    def __rmul__(self, o): return binary("mul", o, self)
    def __truediv__(self, o): return binary("div", self, o)
    def __rtruediv__(self, o): return binary("div", o, self)
    def __pow__(self, o): return binary("pow", self, o)
    def __rpow__(self, o): return binary("pow", o, self)
    def __matmul__(self, o): return self.matmul(o)
    def __rmatmul__(self, o): return wrap(o).matmul(self)
    def __neg__(self): return apply(OPS["neg"], self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __lt__(self, o): return binary("lt", self, o)
    def __le__(self, o): return binary("le", self, o)
    def __gt__(self, o): return binary("gt", self, o)
    def __ge__(self, o): return binary("ge", self, o)
    def __eq__(self, o): return binary("eq", self, o)
    def __ne__(self, o): return binary("ne", self, o)
    def __and__(self, o): return binary("logical_and", self, o)
    def __or__(self, o): return binary("logical_or", self, o)
    def __invert__(self): return apply(OPS["logical_not"], self)

    def add(self, o): return self + o
    def sub(self, o): return self - o
    def mul(self, o): return self * o
    def div(self, o): return self / o
    def pow(self, o): return self ** o
    def maximum(self, o): return binary("maximum", self, o)
    def minimum(self, o): return binary("minimum", self, o)
    def lt(self, o): return self < o
    def le(self, o): return self <= o
    def gt(self, o): return self > o
    def ge(self, o): return self >= o
    def eq(self, o): return self == o
    def ne(self, o): return self != o
    def logical_and(self, o): return binary("logical_and", self, o)
    def logical_or(self, o): return binary("logical_or", self, o)
    def logical_not(self): return ~self

    neg, exp, log, sin, cos, tanh = map(_unary, ("neg", "exp", "log", "sin", "cos", "tanh"))
    sigmoid, relu, abs, sqrt, sign = map(_unary, ("sigmoid", "relu", "abs", "sqrt", "sign"))

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return apply(OPS["clamp"], self, lo=python_scalar(min), hi=python_scalar(max))

    clip = clamp

    def where(self, condition, other):
        """`self` where `condition` holds, else `other` (PyTorch's `Tensor.where`)."""
        return where(condition, self, other)

    def astype(self, dtype):
        dtype = check_dtype(np.dtype(dtype), "astype")
        x64_refused(self._data, dtype, "astype(float64)")
        return self if dtype == self.dtype else apply(OPS["astype"], self, dtype=dtype)

    def float(self): return self.astype(float32)
    def double(self): return self.astype(float64)
    def long(self): return self.astype(int64)
    def int(self): return self.astype(int32)
    def bool(self): return self.astype(bool_)
    def clone(self): return apply(OPS["clone"], self)
    def contiguous(self): return self

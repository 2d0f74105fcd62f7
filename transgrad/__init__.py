"""transgrad: define-by-run autodiff whose backward passes are generated Python code.

>>> import transgrad as tg
>>> x = tg.ones(2, 2, requires_grad=True)
>>> y = x + 2
>>> out = (y * y * 3).mean()
>>> out.backward()
>>> x.grad
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])
"""
from . import autograd
from ._state import enable_grad, is_grad_enabled, no_grad
from .api import compile, grad, value_and_grad
from .autodiff import backward_code
from .export import export
from .backends.numpy import install_impls as _install_impls
from .ops import OPS as _OPS
from .tensor import (
    DoubleTensor, FloatTensor, LongTensor, OpError, Tensor, arange, bool_, cat, eye, float16, float32,
    float64, from_numpy, full, full_like, int8, int16, int32, int64, manual_seed, maximum, minimum,
    ones, ones_like, rand, randn, stack, tensor, uint8, where, zeros, zeros_like,
)

_install_impls(_OPS)
__version__ = "0.1.0"


def _method(name):
    def fn(t, *args, **kwargs):
        return getattr(t if isinstance(t, Tensor) else tensor(t), name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"`tg.{name}(t, ...)` is `t.{name}(...)`."
    return fn


# the Tensor methods that are also functions, as in torch.NAME(t, ...)
(add, sub, mul, div, pow, neg, exp, log, sin, cos, tanh, sigmoid, relu, abs, sqrt, sign, clamp, sum, mean,
 max, min, amax, amin, argmax, argmin, norm, softmax, log_softmax, reshape, transpose, t, permute,
 unsqueeze, squeeze, expand, matmul, clone, flatten) = map(_method, (
    "add sub mul div pow neg exp log sin cos tanh sigmoid relu abs sqrt sign clamp sum mean max min amax "
    "amin argmax argmin norm softmax log_softmax reshape transpose t permute unsqueeze squeeze expand "
    "matmul clone flatten").split())

__all__ = [
    "Tensor", "autograd", "compile", "grad", "value_and_grad", "export", "backward_code", "no_grad", "enable_grad",
    "is_grad_enabled", "OpError", "tensor", "from_numpy", "zeros", "ones", "full", "eye", "arange", "randn", "rand",
    "zeros_like", "ones_like", "full_like", "manual_seed", "FloatTensor", "DoubleTensor", "LongTensor", "where",
    "maximum", "minimum", "cat", "stack", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
    "bool_", "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "abs",
    "sqrt", "sign", "clamp", "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "norm", "softmax",
    "log_softmax", "reshape", "transpose", "t", "permute", "unsqueeze", "squeeze", "expand", "matmul", "clone",
    "flatten",
]

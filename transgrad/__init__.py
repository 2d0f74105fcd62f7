"""transgrad: define-by-run autodiff whose backward passes are generated Python code.

>>> import transgrad as tg
>>> x = tg.ones(2, 2, requires_grad=True)
>>> y = x + 2
>>> out = (y * y * 3).mean()
>>> out.backward()
>>> x.grad
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])

The house, bottom to top (each layer imports only those below it):
    0  ir, index, _state              the IR, index specs, per-thread mode
    1  ops, rules                     THE op table and the helpers of its VJP rules
    2  passes/, codegen/              Graph -> Graph passes; Graph -> Python source (LibCST)
    3  backends/, interp              NumPy and JAX: namespaces, build, eager forms; the oracle
    4  tensor/                        the Tensor front end and what autograd records
    5  trace                          the tracers: IR from running code
    6  engine/                        backward(): graph walk, VJP replay, generated backwards
    7  compiled/, api, export, autograd/   tg.compile, tg.grad, tg.export, the PyTorch spellings
"""
from . import autograd
from ._state import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .api import compile, grad, value_and_grad
from .engine import backward_code
from .export import export
from .ops import OPS as _OPS
from .tensor import (
    DoubleTensor, FloatTensor, LongTensor, OpError, Tensor, arange, bool_, cat, eye, float16, float32, float64,
    from_numpy, full, full_like, int8, int16, int32, int64, manual_seed, maximum, minimum, ones, ones_like, rand, randn,
    stack, tensor, uint8, where, zeros, zeros_like,
)
from .tensor import tensor as _tensor

__version__ = "0.1.0"


def _function(name):
    """`tg.NAME(t, ...)` is `t.NAME(...)`, as in torch.NAME(t, ...)."""
    def fn(t, *args, **kwargs):
        return getattr(t if isinstance(t, Tensor) else _tensor(t), name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"`tg.{name}(t, ...)` is `t.{name}(...)`."
    return fn


# every op-table row's function (its `function` name: PyTorch's), and the compositions that
# are Tensor methods too; rows of several tensors (cat, where, ...) are defined in tensor/creation
_FUNCTIONS = sorted({row.function for row in _OPS.values() if row.function} | {"t", "unsqueeze", "squeeze", "flatten"})
for _name in _FUNCTIONS:
    if _name not in globals():
        globals()[_name] = _function(_name)

__all__ = [
    "Tensor", "autograd", "compile", "grad", "value_and_grad", "export", "backward_code", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "OpError", "tensor", "from_numpy", "zeros", "ones", "full", "eye", "arange",
    "randn", "rand", "zeros_like", "ones_like", "full_like", "manual_seed", "FloatTensor", "DoubleTensor",
    "LongTensor", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "where",
    "maximum", "minimum", "cat", "stack",
] + [n for n in _FUNCTIONS if n not in ("full", "where", "maximum", "minimum", "cat", "stack")]

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
from . import autograd, cuda, nn, optim
from ._state import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .api import compile, grad, value_and_grad
from .engine import backward_code
from .export import export
from .ops import OPS as _OPS
from .tensor import *  # noqa: F403  (Tensor, tensor(), zeros(), dtypes, ...: tensor.__all__)
from .tensor import Tensor, bool_, creation as _creation, float16, float32, float64, int16, int32, int64
from .tensor import __all__ as _tensor_all
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
# are Tensor methods too; functions of several tensors (cat, where, ...) are in tensor/creation
_COMPOSED = ("t unsqueeze squeeze flatten mm bmm mv dot outer cumsum prod var std logsumexp square rsqrt reciprocal "
             "clip clamp_min clamp_max masked_fill gather index_select flip split chunk tril triu sort topk argsort "
             "numel frac").split()
_FUNCTIONS = sorted({row.function for row in _OPS.values() if row.function} | set(_COMPOSED))
for _name in _FUNCTIONS:
    if _name not in globals():
        globals()[_name] = _function(_name)

# PyTorch's dtype names (defined last: `float`, `int` and `bool` shadow the builtins here)
float, double, half, long, int, short, bool = float32, float64, float16, int64, int32, int16, bool_  # noqa: A001

__all__ = [
    "autograd", "cuda", "nn", "optim", "compile", "grad", "value_and_grad", "export", "backward_code", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "float", "double", "half", "long", "int", "short", "bool",
] + [n for n in _tensor_all if n not in ("apply", "new", "alias", "leaf_tensor", "to_array", "is_jax_array",
                                          "default_dtype")] + [n for n in _FUNCTIONS if n not in _creation.__all__]

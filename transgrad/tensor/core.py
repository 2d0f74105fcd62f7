"""The Tensor: an array with PyTorch's autograd semantics, its methods gathered from one
module per concern (arith, reduce, shape, indexing, inplace)."""
from __future__ import annotations

import numpy as np

from .. import _state
from .._state import mode, user_site
from ..ops import OPS
from . import dispatch
from .arith import Arithmetic
from .dispatch import alias, leaf, new, refresh
from .dtypes import default_dtype, device, is_jax_array, to_array
from .indexing import Indexing
from .inplace import InPlace
from .printing import tensor_repr
from .records import check_not_passed_by, register_hook
from .reduce import Reductions
from .shape import Shapes


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


class Tensor(Arithmetic, Reductions, Shapes, Indexing, InPlace):
    """An n-dimensional array with PyTorch's autograd semantics.

    >>> import transgrad as tg
    >>> x = tg.ones(2, 2, requires_grad=True)
    >>> out = ((x + 2) * (x + 2) * 3).mean()
    >>> out.backward()
    >>> x.grad
    tensor([[4.5000, 4.5000],
            [4.5000, 4.5000]])
    """

    __slots__ = ("_data", "_requires_grad", "_grad", "grad_fn", "_version_cell", "_base", "_accumulator", "_source",
                 "_hooks", "__weakref__")
    __array_priority__ = 1000  # NumPy defers `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, *args, dtype=None):
        # legacy constructors: Tensor([1.0, 2.0]) is data, Tensor(2, 3) is a shape
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = to_array(args[0], dtype or default_dtype, "Tensor()")
        else:
            data = np.zeros(tuple(int(s) for s in args), dtype or default_dtype)
        self._data, self._requires_grad, self._grad, self.grad_fn = data, False, None, None
        self._version_cell, self._base, self._accumulator, self._source, self._hooks = None, None, None, user_site(), None

    def __getstate__(self):
        # the leaf's AccumulateGrad is held by a weak reference: a backward makes it again
        slots = {k: getattr(self, k) for c in type(self).__mro__ for k in c.__dict__.get("__slots__", ())
                 if k not in ("__weakref__", "__dict__") and hasattr(self, k)}
        slots["_accumulator"] = None
        return getattr(self, "__dict__", None) or None, slots

    def _op(self, name, *inputs, **params):
        """`apply(OPS[name], *inputs, **params)`: how VJP rules reach primitives (ops.py)."""
        return dispatch.apply(OPS[name], *inputs, **params)

    # ---- attributes -------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; "
                "use .detach() to get a tensor without history")
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.dtype})")
        if requires_grad and self._source is None:
            self._source = user_site()
        self._requires_grad = bool(requires_grad) or self.grad_fn is not None
        return self

    @property
    def grad(self):
        """The gradient backward() accumulated (None until one reaches this tensor). Inside
        a compiled function, `.grad` of a tensor from outside it is the tracer's to answer
        (NOTE [effects])."""
        tracer = mode.tracer
        if tracer is not None and tracer.compiling:
            return tracer.read_grad(self)
        return self._grad

    @grad.setter
    def grad(self, value):
        tracer = mode.tracer
        if tracer is not None and tracer.compiling:
            tracer.write_grad(self, value)
        else:
            self._grad = value

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        """How many in-place operations modified this tensor's storage (as PyTorch's)."""
        return 0 if self._version_cell is None else self._version_cell.count

    @property
    def data(self) -> "Tensor":
        return alias(self)

    @data.setter
    def data(self, value):
        tracer = mode.tracer
        if tracer is not None:
            tracer.set_data(self, value if isinstance(value, Tensor) else leaf(to_array(value, where="Tensor.data")))
        else:
            self._data = to_array(value, where="Tensor.data")

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def device(self):
        """`device(type='cpu')` for a NumPy array; the JAX device for a JAX array."""
        if is_jax_array(self._data):
            return next(iter(self._data.devices()))
        return device("cpu")

    is_cuda = False

    @property
    def array(self):
        """The array it holds (NumPy or JAX), no copy; inside a compiled function it raises as numpy() does."""
        return self._concrete("array")

    def _fresh(self):
        """Its array, a view's values brought up to date (NOTE [views]); no tracer asks."""
        if self._base is not None and self._version_cell.count != self._base[4]:
            refresh(self)
        return self._data

    def to(self, target=None, dtype=None, **kwargs) -> "Tensor":
        """`t.to(dtype)`, `t.to(device)`, `t.to(other)` as in PyTorch (the CPU is the only
        device: a no-op); `t.to("jax")` / `t.to(jax_device)` moves to a JAX device and
        `t.to("numpy")` back to the host. A move keeps requires_grad but not history."""
        dtype = kwargs.get("dtype", dtype)
        target = kwargs.get("device", target)
        if isinstance(target, Tensor):
            target, dtype = None, target.dtype
        if isinstance(target, (np.dtype, type)):
            target, dtype = None, target
        out = self if dtype is None else self.astype(dtype)
        if target is None or isinstance(target, device) or target in ("cpu", "cuda") or str(target).startswith("cuda"):
            if target is not None:
                device(target)  # cuda: a clear error
            return out.to("numpy") if is_jax_array(out._data) and target is not None else out
        return out._moved(target)

    def _moved(self, target):
        if self.grad_fn is not None:
            raise RuntimeError(f"to({target!r}): moving a tensor with history would cut its gradient; "
                               "move the inputs (leaves) instead")
        if target == "numpy":
            data = np.asarray(self._data)
        else:
            import jax

            dispatch.register_with_jax()
            data = jax.device_put(self._data, None if target == "jax" else target)
        out = new(data)
        out._source = self._source
        return out.requires_grad_(self._requires_grad) if self._requires_grad else out

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs) -> "Tensor":
        device("cuda")  # a clear error: no CUDA here

    def type(self, dtype=None):
        """The type's name, or the tensor cast to `dtype`."""
        if dtype is None:
            names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                     "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
            return f"transgrad.{names[self.dtype.name]}Tensor"
        return self.astype(dtype)

    def new_zeros(self, *size, dtype=None, requires_grad=False) -> "Tensor":
        return self.new_full(_size(size), 0, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False) -> "Tensor":
        return self.new_full(_size(size), 1, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False) -> "Tensor":
        return leaf(np.full(_size((size,)), fill_value, dtype or self.dtype), requires_grad)

    def new_tensor(self, data, dtype=None, requires_grad=False) -> "Tensor":
        return leaf(np.array(to_array(data, dtype or self.dtype)), requires_grad)

    new_empty = new_zeros

    def element_size(self) -> int:
        return self.dtype.itemsize

    def block_until_ready(self) -> "Tensor":
        """Wait for pending device work (JAX); a no-op for NumPy arrays."""
        if hasattr(self._data, "block_until_ready"):
            self._data.block_until_ready()
        return self

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self._data.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    __hash__ = object.__hash__

    # ---- autograd ------------------------------------------------------------------
    def retain_grad(self) -> "Tensor":
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            check_not_passed_by(self, "retain_grad()")
            self.grad_fn.retained = self
        return self

    def detach(self) -> "Tensor":
        return alias(self)

    def register_hook(self, fn):
        """Call `fn(grad)` when this tensor's gradient is computed; it may return a
        replacement. Returns a handle whose `.remove()` unregisters it (NOTE [hooks])."""
        return register_hook(self, fn)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad,
        by running generated backward code (see `tg.backward_code`)."""
        _state.engine.backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    # ---- values reaching Python (guards when tracing) ------------------------------
    def _concrete(self, how):
        self._fresh()
        if mode.tracer is not None:
            decided = mode.tracer.concretize(self, how)
            if decided is not None:  # NOTE [decisions]
                return decided
        return self._data

    def item(self):
        d = self._concrete("item")
        if d.size != 1:
            raise RuntimeError(f"a Tensor with {d.size} elements cannot be converted to Scalar")
        return d.item() if hasattr(d, "item") else d

    def tolist(self):
        return np.asarray(self._concrete("tolist")).tolist()

    def numpy(self) -> np.ndarray:
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return np.asarray(self._concrete("numpy"))

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._concrete("numpy"))
        return a if dtype is None else a.astype(dtype)

    def __bool__(self):
        d = self._concrete("bool")
        if d.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {d.size} values is ambiguous")
        return bool(d.item())

    def __float__(self):
        if self.numel() != 1:
            raise RuntimeError(f"only one element tensors can be converted to Python scalars (got {self.numel()})")
        return float(self._concrete("float").item())

    def __int__(self):
        if self.numel() != 1:
            raise RuntimeError(f"only one element tensors can be converted to Python scalars (got {self.numel()})")
        return int(self._concrete("int").item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._concrete("index").item())

    def __repr__(self):
        return tensor_repr(self)


dispatch.register(Tensor)

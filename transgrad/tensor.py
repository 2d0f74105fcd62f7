"""The Tensor front end: eager, define-by-run, PyTorch semantics.

Every operation is one call `apply(OPS[name], *inputs, **params)`: it runs the
primitive's eager form, records an autograd node when gradients are wanted, and tells
the active tracer (if any). Methods are explicit one-liners so that tools can see them.
"""
from __future__ import annotations

import collections
import numbers

import numpy as np

from ._state import mode, user_src
from .index import Arr, Mask, Sl
from .ops import OPS

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = np.dtype("int8"), np.dtype("int16"), np.dtype("int32"), np.dtype("int64")
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
SUPPORTED = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
default_dtype = float32


class OpError(RuntimeError, ValueError):
    """A primitive could not run on these operands (shapes, dtypes or values)."""


def _check_dtype(dt, where):
    if dt not in SUPPORTED:
        names = ", ".join(d.name for d in SUPPORTED)
        raise TypeError(f"{where}: dtype {dt} is not supported by transgrad (supported: {names})")
    return dt


def _to_array(data, dtype=None, where="tensor()"):
    if isinstance(data, Tensor):
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
        a = np.asarray(a, dtype=_check_dtype(np.dtype(dtype), where))
    _check_dtype(a.dtype, where)
    return a


def _unwrap_nested(x):
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, (list, tuple)):
        return [_unwrap_nested(v) for v in x]
    return x


def _new(data, requires_grad=False, grad_fn=None):
    t = Tensor.__new__(Tensor)
    t._data = data
    t._rg = requires_grad
    t.grad = None
    t.grad_fn = grad_fn
    t._vc = None
    t._base = None
    t._accum = None
    t._src = None
    return t


def apply(op, *args, **params):
    """Run primitive `op` eagerly; record it for autograd and for the active tracer."""
    datas, wants_grad, impl = [], False, op.impl
    for a in args:
        if isinstance(a, Tensor):
            if a._base is not None and a._vc.count != a._base[4]:
                _refresh(a)  # a view whose storage was written through another tensor: take it again
            d = a._data
            datas.append(d)
            wants_grad = wants_grad or a._rg
            if type(d) is not np.ndarray and not isinstance(d, np.generic) and is_jax_array(d):
                impl = _foreign_impl(op)  # a JAX array: stay on its device
        else:
            datas.append(a)
    try:
        out = impl(*datas, **params)
    except Exception as e:
        raise _op_error(op, args, e) from None
    t = _new(out)
    if op.view and _is_view(out, args):  # NOTE [views]
        vc = t._vc = _ad.version_cell(args[0])
        t._base = (args[0], op, args[1:], params, vc.count)
    m = mode
    if wants_grad and m.grad_enabled and op.vjp is not None and out.dtype.kind == "f":
        t._rg = True
        t.grad_fn = _ad.Node(op, args, params, out, user_src())
    if m.tracer is not None:
        m.tracer.record(op, args, params, t)
    return t


def _is_view(out, args):
    """Does `out`, the result of a view op on args[0], share args[0]'s storage? NumPy says;
    a JAX array never shares, but a basic index, reshape or transpose of it is still a view
    in PyTorch's sense, so in-place writes go through to the base (NOTE [views])."""
    a = args[0]
    if not isinstance(a, Tensor):
        return False
    base = getattr(out, "base", None)
    if base is not None:
        src = a._data
        return base is src or base is getattr(src, "base", None)
    return len(args) == 1 and is_jax_array(out)


# NOTE [views]: a tensor that shares another's storage records `_base = (base, op, index
# arrays, params, version)`: a view (getitem with a basic index, reshape, expand, permute,
# transpose) or, with op None, an alias (`.data`, `.detach()`). They share the base's
# VersionCell. An in-place write through a view becomes a write into the base (`setitem`,
# or the inverse reshape/permutation) that the base's history records, as PyTorch's
# CopySlices; a view whose storage was then written through another tensor is taken again
# from its base when it is next used (its values and history both), so it never answers
# with stale values or a stale history. JAX arrays never share memory, so on JAX this is
# how views and aliases see each other's writes at all.
def _refresh(v):
    b, op, arrays, params, _ = v._base
    if b._base is not None and b._vc.count != b._base[4]:
        _refresh(b)
    if op is None:  # an alias: the base's values, no history of its own
        v._data = b._data
        if mode.tracer is not None:
            mode.tracer.alias(v, b)
    else:
        prev, mode.grad_enabled = mode.grad_enabled, mode.grad_enabled or b._rg
        try:
            fresh = apply(op, b, *arrays, **params)
        finally:
            mode.grad_enabled = prev
        v._data, v.grad_fn, v._rg = fresh._data, fresh.grad_fn, fresh._rg
        if mode.tracer is not None:
            mode.tracer.alias(v, fresh)
    v._base = (b, op, arrays, params, v._vc.count)


def _alias(t):
    """A tensor with t's storage and version but no history (`.data`, `.detach()`)."""
    out = _new(t._data)
    vc = out._vc = _ad.version_cell(t)
    out._base = (t, None, (), None, vc.count)
    if mode.tracer is not None:
        mode.tracer.alias(out, t)
    return out


_JAX_IMPLS = {}


def _foreign_impl(op):
    fn = _JAX_IMPLS.get(op.name)
    if fn is None:
        from .backends import jax as jax_backend

        fn = _JAX_IMPLS[op.name] = jax_backend.impl(op)
    return fn


def is_jax_array(a):
    return type(a).__module__.startswith(("jax", "jaxlib"))


def _describe(a):
    return f"{a.dtype}{list(a.shape)}" if isinstance(a, Tensor) else repr(a)


def _op_error(op, args, e):
    where = ""
    src = user_src()
    if mode.tracer is not None and src is not None:
        import linecache

        where = f" at {src[0]}:{src[1]} `{linecache.getline(*src).strip()}`"
    operands = ", ".join(_describe(a) for a in args if not isinstance(a, tuple))
    return OpError(f"{op.name}: cannot apply to ({operands}){where}: {e}")


def _wrap(x):
    return x if isinstance(x, Tensor) else tensor(x) if isinstance(x, (list, np.ndarray)) or is_jax_array(x) else x


def _is_scalar(x):
    return isinstance(x, (numbers.Number, np.number, np.bool_)) and not isinstance(x, complex)


def _py(x):
    return x.item() if isinstance(x, (np.number, np.bool_)) else x


def _binary(name, a, b):
    """Binary op with PyTorch's promotion: an int or bool tensor meeting a float operand
    becomes the float dtype (NumPy would go to float64); Python scalars stay weak."""
    ta, tb = type(a), type(b)
    if ta is Tensor and a._data.dtype.kind == "f":  # fast path: nothing to promote
        if tb is float or tb is int or (tb is Tensor and b._data.dtype.kind == "f"):
            return apply(OPS[name], a, b)
    elif tb is Tensor and (ta is float or ta is int) and b._data.dtype.kind == "f":
        return apply(OPS[name], a, b)
    a, b = _wrap(_py(a)), _wrap(_py(b))
    for x in (a, b):
        if not isinstance(x, Tensor) and not _is_scalar(x):
            raise TypeError(f"{name}: unsupported operand type {type(x).__name__}")
    ka = a.dtype.kind if isinstance(a, Tensor) else ("f" if isinstance(a, float) else "i")
    kb = b.dtype.kind if isinstance(b, Tensor) else ("f" if isinstance(b, float) else "i")
    if name == "div" and ka != "f" and kb != "f":  # true division of integers gives floats
        a = a.astype(default_dtype) if isinstance(a, Tensor) else float(a)
        b = b.astype(default_dtype) if isinstance(b, Tensor) else float(b)
    elif (ka == "f") != (kb == "f") and name not in ("logical_and", "logical_or"):
        f = a if ka == "f" else b
        fdt = f.dtype if isinstance(f, Tensor) else default_dtype
        if isinstance(a, Tensor) and ka != "f":
            a = a.astype(fdt)
        if isinstance(b, Tensor) and kb != "f":
            b = b.astype(fdt)
    return apply(OPS[name], a, b)


def _dims(dim, ndim, name):
    """Normalise `dim` (None, int or tuple; negatives allowed) to a sorted tuple or None."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{name}: dimension {d} is out of range for a tensor of {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    return tuple(sorted(set(out)))


def _default_int(data):
    """int64, or int32 for a JAX array when JAX runs without x64 (as JAX itself does)."""
    if is_jax_array(data):
        import jax

        return int64 if jax.config.jax_enable_x64 else int32
    return int64


def _float(t):
    return t if t.dtype.kind == "f" else t.astype(default_dtype)


MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])


class Tensor:
    """An n-dimensional array with PyTorch's autograd semantics.

    >>> import transgrad as tg
    >>> x = tg.ones(2, 2, requires_grad=True)
    >>> out = ((x + 2) * (x + 2) * 3).mean()
    >>> out.backward()
    >>> x.grad
    tensor([[4.5000, 4.5000],
            [4.5000, 4.5000]])
    """

    __slots__ = ("_data", "_rg", "grad", "grad_fn", "_vc", "_base", "_accum", "_src", "_hooks", "__weakref__")
    __array_priority__ = 1000  # NumPy defers `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, *args, dtype=None):
        # legacy constructors: Tensor([1.0, 2.0]) is data, Tensor(2, 3) is a shape
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = _to_array(args[0], dtype or default_dtype, "Tensor()")
        else:
            data = np.zeros(tuple(int(s) for s in args), dtype or default_dtype)
        self._data, self._rg, self.grad, self.grad_fn = data, False, None, None
        self._vc, self._base, self._accum, self._src = None, None, None, user_src()

    # ---- attributes -------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; "
                "use .detach() to get a tensor without history")
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.dtype})")
        if requires_grad and self._src is None:
            self._src = user_src()
        self._rg = bool(requires_grad) or self.grad_fn is not None
        return self

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def _version(self):
        """How many in-place operations modified this tensor's storage (as PyTorch's)."""
        return 0 if self._vc is None else self._vc.count

    @property
    def data(self):
        return _alias(self)

    @data.setter
    def data(self, value):
        self._data = _to_array(value, where="Tensor.data")

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def device(self):
        """"cpu" for a NumPy array; the JAX device for a JAX array."""
        if is_jax_array(self._data):
            return next(iter(self._data.devices()))
        return "cpu"

    @property
    def array(self):
        """The array this tensor holds (NumPy or JAX), without a copy."""
        if self._base is not None and self._vc.count != self._base[4]:
            _refresh(self)
        return self._data

    def to(self, target):
        """`t.to(dtype)`; `t.to("jax")` / `t.to(jax_device)` moves to a JAX device;
        `t.to("numpy")` copies to the host. A move keeps requires_grad but not history."""
        if isinstance(target, (np.dtype, type)) or (isinstance(target, str) and target not in ("jax", "numpy", "cpu")):
            return self.astype(target)
        if self.grad_fn is not None:
            raise RuntimeError(f"to({target!r}): moving a tensor with history would cut its gradient; "
                               "move the inputs (leaves) instead")
        if target in ("numpy", "cpu"):
            data = np.asarray(self._data)
        else:
            import jax

            data = jax.device_put(self._data, None if target == "jax" else target)
        out = _new(data)
        out._src = self._src
        return out.requires_grad_(self._rg) if self._rg else out

    def block_until_ready(self):
        """Wait for pending device work (JAX); a no-op for NumPy arrays."""
        if hasattr(self._data, "block_until_ready"):
            self._data.block_until_ready()
        return self

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return self._data.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    __hash__ = object.__hash__

    def retain_grad(self):
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn._retained = self
        return self

    def detach(self):
        return _alias(self)

    def register_hook(self, fn):
        return _ad.register_hook(self, fn)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad,
        by running generated backward code (see `tg.backward_code`)."""
        _ad.backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    # ---- values reaching Python (guards when tracing) ------------------------------
    def _concrete(self, how):
        if self._base is not None and self._vc.count != self._base[4]:
            _refresh(self)
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

    def numpy(self):
        if self._rg:
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

    # ---- arithmetic --------------------------------------------------------------
    def __add__(self, o): return _binary("add", self, o)
    def __radd__(self, o): return _binary("add", o, self)
    def __sub__(self, o): return _binary("sub", self, o)
    def __rsub__(self, o): return _binary("sub", o, self)
    def __mul__(self, o): return _binary("mul", self, o)
    def __rmul__(self, o): return _binary("mul", o, self)
    def __truediv__(self, o): return _binary("div", self, o)
    def __rtruediv__(self, o): return _binary("div", o, self)
    def __pow__(self, o): return _binary("pow", self, o)
    def __rpow__(self, o): return _binary("pow", o, self)
    def __matmul__(self, o): return self.matmul(o)
    def __rmatmul__(self, o): return _wrap(o).matmul(self)
    def __neg__(self): return apply(OPS["neg"], self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __lt__(self, o): return _binary("lt", self, o)
    def __le__(self, o): return _binary("le", self, o)
    def __gt__(self, o): return _binary("gt", self, o)
    def __ge__(self, o): return _binary("ge", self, o)
    def __eq__(self, o): return _binary("eq", self, o)
    def __ne__(self, o): return _binary("ne", self, o)
    def __and__(self, o): return _binary("logical_and", self, o)
    def __or__(self, o): return _binary("logical_or", self, o)
    def __invert__(self): return apply(OPS["logical_not"], self)

    def add(self, o): return self + o
    def sub(self, o): return self - o
    def mul(self, o): return self * o
    def div(self, o): return self / o
    def pow(self, o): return self ** o
    def neg(self): return -self

    # ---- elementwise --------------------------------------------------------------
    def exp(self): return apply(OPS["exp"], _float(self))
    def log(self): return apply(OPS["log"], _float(self))
    def sin(self): return apply(OPS["sin"], _float(self))
    def cos(self): return apply(OPS["cos"], _float(self))
    def tanh(self): return apply(OPS["tanh"], _float(self))
    def sigmoid(self): return apply(OPS["sigmoid"], _float(self))
    def sqrt(self): return apply(OPS["sqrt"], _float(self))
    def relu(self): return apply(OPS["relu"], self)
    def abs(self): return apply(OPS["abs"], self)
    def sign(self): return apply(OPS["sign"], self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return apply(OPS["clamp"], self, lo=_py(min), hi=_py(max))

    clip = clamp

    def astype(self, dtype):
        dtype = _check_dtype(np.dtype(dtype), "astype")
        if dtype == float64 and is_jax_array(self._data):
            import jax

            if not jax.config.jax_enable_x64:
                raise TypeError("astype(float64) of a JAX array: JAX keeps float32 unless jax_enable_x64 is on "
                                "(jax.config.update('jax_enable_x64', True))")
        return self if dtype == self.dtype else apply(OPS["astype"], self, dtype=dtype)

    def float(self): return self.astype(float32)
    def double(self): return self.astype(float64)
    def long(self): return self.astype(int64)
    def int(self): return self.astype(int32)
    def bool(self): return self.astype(bool_)
    def clone(self): return apply(OPS["clone"], self)
    def contiguous(self): return self

    # ---- reductions ----------------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        x = self
        if self.dtype.kind in "biu" and self.dtype != int64:  # as PyTorch: integer sums are int64
            x = self.astype(_default_int(self._data))
        return apply(OPS["sum"], x, axis=_dims(dim, self.ndim, "sum"), keepdims=bool(keepdim))

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got {self.dtype}")
        return apply(OPS["mean"], self, axis=_dims(dim, self.ndim, "mean"), keepdims=bool(keepdim))

    def _extreme(self, name, dim, keepdim):
        if self.numel() == 0:
            raise RuntimeError(f"{name}(): expected a non-empty tensor")
        if dim is None:  # the whole tensor: ties share the gradient evenly, as PyTorch's max()
            return apply(OPS["a" + name], self, axis=None, keepdims=False)
        axis = _dims(dim, self.ndim, name)[0]
        # along a dim the gradient goes to the index returned, as PyTorch's max(dim)
        arg = apply(OPS["arg" + name], self, axis=axis, keepdims=True)
        values = apply(OPS[name + "_dim"], self, arg, axis=axis, keepdims=bool(keepdim))
        return MaxMin(values, arg if keepdim else arg.reshape(values.shape))

    def max(self, dim=None, keepdim=False):
        """`max()`, `max(dim)` -> (values, indices), or `max(other)`: the elementwise maximum."""
        if isinstance(dim, Tensor):
            return maximum(self, dim)
        return self._extreme("max", dim, keepdim)

    def min(self, dim=None, keepdim=False):
        """`min()`, `min(dim)` -> (values, indices), or `min(other)`: the elementwise minimum."""
        if isinstance(dim, Tensor):
            return minimum(self, dim)
        return self._extreme("min", dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return apply(OPS["argmax"], self, axis=None if dim is None else _dims(dim, self.ndim, "argmax")[0], keepdims=bool(keepdim))

    def argmin(self, dim=None, keepdim=False):
        return apply(OPS["argmin"], self, axis=None if dim is None else _dims(dim, self.ndim, "argmin")[0], keepdims=bool(keepdim))

    def norm(self, p=2, dim=None, keepdim=False):
        x = _float(self)
        if p in (2, "fro"):
            return apply(OPS["norm"], x, axis=_dims(dim, self.ndim, "norm"), keepdims=bool(keepdim))
        if p == 1:
            return x.abs().sum(dim, keepdim)
        if p == float("inf"):
            return x.abs().amax(dim, keepdim)
        return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    def amax(self, dim=None, keepdim=False):
        return apply(OPS["amax"], self, axis=_dims(dim, self.ndim, "amax"), keepdims=bool(keepdim))

    def amin(self, dim=None, keepdim=False):
        return apply(OPS["amin"], self, axis=_dims(dim, self.ndim, "amin"), keepdims=bool(keepdim))

    def softmax(self, dim):
        return apply(OPS["softmax"], _float(self), axis=_dims(dim, self.ndim, "softmax")[0])

    def log_softmax(self, dim):
        return apply(OPS["log_softmax"], _float(self), axis=_dims(dim, self.ndim, "log_softmax")[0])

    # ---- shapes --------------------------------------------------------------------
    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = tuple(int(s) for s in shape)
        n, known = self.numel(), int(np.prod([s for s in shape if s != -1]))
        if shape.count(-1) > 1 or (shape.count(-1) == 0 and known != n) or (-1 in shape and (known == 0 or n % known)):
            raise OpError(f"reshape: shape {list(shape)} is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
        return self if shape == self.shape else apply(OPS["reshape"], self, shape=shape)

    view = reshape

    def flatten(self):
        return self.reshape(-1)

    def expand(self, *sizes):
        sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise OpError(f"expand: the number of sizes provided ({len(sizes)}) must be at least the number of dimensions ({self.ndim})")
        shape = tuple(self.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(sizes))
        return self if shape == self.shape else apply(OPS["expand"], self, shape=shape)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        axes = tuple(int(d) % max(self.ndim, 1) for d in dims)
        if sorted(axes) != list(range(self.ndim)):
            raise OpError(f"permute: dims {list(dims)} are not a permutation of a {self.ndim}-d tensor's dimensions")
        return apply(OPS["permute"], self, axes=axes)

    def transpose(self, dim0, dim1):
        d0, d1 = (_dims(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        return self if d0 == d1 else apply(OPS["transpose"], self, dim0=min(d0, d1), dim1=max(d0, d1))

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def unsqueeze(self, dim):
        d = int(dim) % (self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        d = _dims(dim, self.ndim, "squeeze")[0]
        return self if self.shape[d] != 1 else self.reshape(self.shape[:d] + self.shape[d + 1:])

    def matmul(self, other):
        other = _wrap(other)
        if self.ndim == 0 or other.ndim == 0:
            raise OpError(f"matmul: both arguments need to be at least 1-D (got shapes {self.shape} and {other.shape})")
        k1 = self.shape[-1]
        k2 = other.shape[-2] if other.ndim > 1 else other.shape[0]
        if k1 != k2:
            raise OpError(f"matmul: shapes {self.shape} and {other.shape} cannot be multiplied ({k1} != {k2})")
        a, b = self, other
        if a.dtype != b.dtype and (a.dtype.kind == "f" or b.dtype.kind == "f"):
            dt = np.promote_types(a.dtype, b.dtype) if a.dtype.kind == b.dtype.kind else (a.dtype if a.dtype.kind == "f" else b.dtype)
            a, b = a.astype(dt), b.astype(dt)
        return apply(OPS["matmul"], a, b)

    mm = matmul

    # ---- indexing ------------------------------------------------------------------
    def __getitem__(self, idx):
        spec, arrays = _index_spec(idx, self)
        if not arrays and all(i == Sl(None, None, None) for i in spec):
            return self
        return apply(OPS["getitem"], self, *arrays, index=spec)

    # ---- in-place (version counter) ----------------------------------------------------
    def zero_(self):
        return _ad.inplace(self, "zero_", lambda t: _filled(t, 0))

    def fill_(self, value):
        return _ad.inplace(self, "fill_", lambda t: _filled(t, value))

    def add_(self, other, alpha=1):
        return _ad.inplace(self, "add_", lambda t: t + (other if alpha == 1 else other * alpha))

    def sub_(self, other, alpha=1):
        return _ad.inplace(self, "sub_", lambda t: t - (other if alpha == 1 else other * alpha))

    def mul_(self, other):
        return _ad.inplace(self, "mul_", lambda t: t * other)

    def div_(self, other):
        return _ad.inplace(self, "div_", lambda t: t / other)

    def clamp_(self, min=None, max=None):
        return _ad.inplace(self, "clamp_", lambda t: t.clamp(min, max))

    def copy_(self, src):
        return _ad.inplace(self, "copy_", lambda t: _copied(t, src))

    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)

    def __setitem__(self, idx, value):
        value = _wrap(_py(value))
        # one mask, one value for all its places (`g[x < 0] = 0`): the count of places is not needed
        spec, arrays = _index_spec(idx, self, count=not (np.size(value._data if isinstance(value, Tensor) else value) == 1
                                                        and isinstance(idx, Tensor) and idx.dtype == bool_))
        if isinstance(value, Tensor) and value.dtype != self.dtype:
            value = value.astype(self.dtype)
        _ad.inplace(self, "setitem", lambda t: apply(OPS["setitem"], t, value, *arrays, index=spec))

    def __repr__(self):
        return _repr(self)


def _filled(t, value):
    """`t` filled with `value`, as a new tensor with no history (what `fill_` writes)."""
    out = _new(np.full(np.shape(t._data), value, t.dtype) if not is_jax_array(t._data) else t._data * 0 + value)
    if mode.tracer is not None:
        mode.tracer.constant(out)
    return out


def _copied(t, src):
    src = _wrap(src)
    if not isinstance(src, Tensor):
        return _filled(t, src)
    if src.dtype != t.dtype:
        src = src.astype(t.dtype)
    return apply(OPS["clone"], src)  # copy_ gets a node of its own (src keeps its own)


def _index_spec(idx, t, count=True):
    """Turn a user index into (hashable spec, index tensors); see transgrad.index."""
    items = idx if isinstance(idx, tuple) else (idx,)
    spec, arrays = [], []
    for i in items:
        if isinstance(i, (list, np.ndarray)):
            i = tensor(i)
        if isinstance(i, Tensor):
            if i.dtype.kind not in "iub":
                raise IndexError(f"getitem: tensors used as indices must be integer or bool, got {i.dtype}")
            # a mask's count of True values decides the result's shape: inside a trace, a guard
            n = int(i.sum()._concrete("mask")) if i.dtype == bool_ and count else None
            spec.append(Mask(len(arrays), n) if i.dtype == bool_ else Arr(len(arrays)))
            arrays.append(i)
        elif isinstance(i, slice):
            spec.append(Sl(*(None if v is None else int(v) for v in (i.start, i.stop, i.step))))
        elif i is None or i is Ellipsis:
            spec.append(i)
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            spec.append(int(i))
        else:
            raise IndexError(f"getitem: unsupported index {i!r} of type {type(i).__name__}; use ints, slices, None, ..., integer or bool tensors")
    return tuple(spec), arrays


# ---- repr like PyTorch ------------------------------------------------------------------
def _fmt_floats(a):
    finite = a[np.isfinite(a)]
    if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        return lambda v: (f"{v:.0f}." if np.isfinite(v) else str(v)).replace("nan.", "nan")
    big = np.abs(finite).max() if finite.size else 0
    nz = np.abs(finite[finite != 0])
    small = nz.min() if nz.size else 1
    if big >= 1e8 or small < 1e-4 or (finite.size and big / small > 1e3):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def _repr(t):
    a = np.asarray(t.array)
    prefix = "tensor("
    if a.size == 0:
        body = "[]"
    elif a.dtype.kind == "f":
        f = _fmt_floats(a)
        width = max(len(f(v)) for v in a.ravel())
        body = np.array2string(a, separator=", ", prefix=prefix, formatter={"float_kind": lambda v: f(v).rjust(width)},
                               max_line_width=80, threshold=1000)
    else:
        body = np.array2string(a, separator=", ", prefix=prefix, max_line_width=80, threshold=1000)
    extra = []
    if a.dtype not in (float32, int64, bool_):
        extra.append(f"dtype={a.dtype}")
    if t.grad_fn is not None:
        extra.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extra.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extra) + ")"


# ---- constructors ---------------------------------------------------------------------
def _leaf(data, requires_grad):
    t = _new(data)
    t._src = user_src()
    if requires_grad:
        t.requires_grad_(True)
    if mode.tracer is not None:
        mode.tracer.constant(t)
    return t


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf tensor from a scalar, nested lists, a NumPy array or a Tensor (copied).

    >>> import transgrad as tg
    >>> tg.tensor([[1, 2], [3, 4]], dtype=tg.float32)
    tensor([[1., 2.],
            [3., 4.]])
    """
    a = _to_array(data, dtype)
    return _leaf(a if is_jax_array(a) else np.array(a, copy=True), requires_grad)


def from_numpy(a):
    """A tensor sharing memory with the NumPy array `a`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(a).__name__})")
    return _leaf(_to_array(a, where="from_numpy()"), False)


def _dt(dtype):
    return default_dtype if dtype is None else _check_dtype(np.dtype(dtype), "constructor")


def zeros(*shape, dtype=None, requires_grad=False):
    return _leaf(np.zeros(_shape(shape), _dt(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    """`tg.ones(2, 2)`: a float32 tensor of ones."""
    return _leaf(np.ones(_shape(shape), _dt(dtype)), requires_grad)


def full(shape, value, dtype=None, requires_grad=False):
    return _leaf(np.full(_shape((shape,)), value, _dt(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _leaf(np.eye(n, m, dtype=_dt(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    a = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None:
        a = a.astype(default_dtype if a.dtype.kind == "f" else int64)
    return _leaf(a.astype(dtype) if dtype is not None else a, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t, value, dtype=None):
    return _leaf(np.full(t.shape, value, dtype or t.dtype), False)


_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator behind `randn` and `rand`."""
    global _rng
    _rng = np.random.default_rng(seed)


def _random_in_trace(name):
    if mode.tracer is not None and hasattr(mode.tracer, "guards"):
        import warnings

        warnings.warn(f"tg.{name} inside a compiled function is drawn once, when the function is traced, and "
                      "then reused by every call; pass random tensors in as arguments", RuntimeWarning, stacklevel=3)


def randn(*shape, dtype=None, requires_grad=False):
    _random_in_trace("randn")
    return _leaf(_rng.standard_normal(_shape(shape)).astype(_dt(dtype)), requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    _random_in_trace("rand")
    return _leaf(_rng.random(_shape(shape)).astype(_dt(dtype)), requires_grad)


def FloatTensor(*args):
    """Legacy constructor: `FloatTensor([0.1, 1.0])` (data) or `FloatTensor(2, 3)` (shape)."""
    return Tensor(*args, dtype=float32)


def DoubleTensor(*args):
    return Tensor(*args, dtype=float64)


def LongTensor(*args):
    return Tensor(*args, dtype=int64)


# ---- functions that are not methods --------------------------------------------------
def where(condition, a, b):
    c = _wrap(condition)
    if not isinstance(c, Tensor) or c.dtype != bool_:
        raise TypeError(f"where: condition must be a bool tensor (got {_describe(c)})")
    a, b = _wrap(_py(a)), _wrap(_py(b))
    ka = a.dtype.kind if isinstance(a, Tensor) else None
    kb = b.dtype.kind if isinstance(b, Tensor) else None
    if ka and kb and a.dtype != b.dtype:
        dt = np.promote_types(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    return apply(OPS["where"], c, a, b)


def maximum(a, b):
    return _binary("maximum", a, b)


def minimum(a, b):
    return _binary("minimum", a, b)


def _same_dtype(ts, name):
    ts = [_wrap(t) for t in ts]
    if not ts:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    dt = ts[0].dtype
    for t in ts[1:]:
        dt = np.promote_types(dt, t.dtype)
    return [t.astype(dt) for t in ts]


def cat(tensors, dim=0):
    ts = _same_dtype(tensors, "cat")
    axis = _dims(dim, ts[0].ndim, "cat")[0]
    for t in ts[1:]:
        if t.ndim != ts[0].ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if i != axis):
            raise OpError(f"cat: sizes of tensors must match except in dimension {axis} (got {ts[0].shape} and {t.shape})")
    return apply(OPS["cat"], *ts, axis=axis)


def stack(tensors, dim=0):
    ts = _same_dtype(tensors, "stack")
    for t in ts[1:]:
        if t.shape != ts[0].shape:
            raise OpError(f"stack: expects each tensor to be equal size, but got {ts[0].shape} and {t.shape}")
    axis = int(dim) % (ts[0].ndim + 1)
    return apply(OPS["stack"], *ts, axis=axis)


from . import autodiff as _ad  # noqa: E402  (autodiff needs Tensor; apply needs autodiff.Node)


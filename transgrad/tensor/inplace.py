"""In-place operations: PyTorch's `t.op_()`, with version counters (NOTE [versions]) and
writes through views into their bases (NOTE [views])."""
from __future__ import annotations

from linecache import getline
from typing import TypeVar

import numpy as np

from .._state import mode, user_src, using
from ..ops import OPS
from .dispatch import apply, is_jax_array, new, refresh, wrap
from .dtypes import OpError
from .records import Node, Overwritten, version_cell

TensorT = TypeVar("TensorT")  # the Tensor class these methods are mixed into


def inplace(t, name, compute):
    """Apply `compute(t)` (out-of-place) and write the result into `t`'s storage, as
    PyTorch's `t.op_()`: t's version is bumped and, with grad recording on, t takes the
    new node as its grad_fn. A write through a view is a write into its base (NOTE [views])."""
    tracer = mode.tracer
    src = user_src()
    _check(t, name, src, tracer)
    if t._base is not None and t._version_cell.count != t._base[4]:
        refresh(t)
    out = compute(t)
    if out.shape != t.shape:
        if np.broadcast_shapes(out.shape, t.shape) != t.shape:
            raise OpError(f"{name}{_at(src)}: the result has shape {out.shape}, which does not fit in the "
                          f"tensor's shape {t.shape}")
        out = out.expand(*t.shape)
    if out.dtype != t.dtype:
        if not np.can_cast(out.dtype, t.dtype, "same_kind"):
            raise RuntimeError(f"{name}{_at(src)}: result type {out.dtype} can't be cast to the desired output "
                               f"type {t.dtype}")
        out = out.astype(t.dtype)
    if out.grad_fn is None and t.grad_fn is not None and mode.grad_enabled:  # zero_() of a value with history
        out = apply(OPS["fill"], t, out)
    node = out.grad_fn if mode.grad_enabled else None
    if node is not None and tracer is not None and tracer.records_into_outside(t):
        raise RuntimeError(f"{name}{_at(src)}: an in-place operation that records gradient history into a tensor "
                           "from outside a compiled function; write it under `with tg.no_grad():`, or use the "
                           "out-of-place form")
    writes = tracer is None and type(t._data) is np.ndarray and t._data.flags.writeable
    if node is not None:  # the new node may read t's old values: keep them (a copy if memory is overwritten)
        old = new(t._data.copy() if writes else t._data, requires_grad=t._requires_grad, grad_fn=t.grad_fn)
        if tracer is not None:
            tracer.alias(old, t)
        node.saved = tuple(old if a is t else a for a in node.saved)
    base = t._base
    if base is not None and base[1] is not None and (
            tracer is not None or not writes or (mode.grad_enabled and (out._requires_grad or _root(t)._requires_grad))):
        # a write through a view: the base takes the new values and records how (NOTE [views])
        b, op, arrays, params, _ = base
        inplace(b, name, lambda bt: written_back(bt, op, arrays, params, out))
        refresh(t)
        return t
    vc = version_cell(t)
    vc.stamp(name, src)
    _mark_overwritten(t, vc)
    _store(t, out)
    if node is not None:
        t.grad_fn, t._requires_grad = node, True
        node.out_data = t._data
    if base is not None:
        t._base = base[:4] + (vc.count,)
    return t


def _at(src):
    return f" at {src[0]}:{src[1]} `{getline(*src).strip()}`" if src else ""


def _root(t):
    while t._base is not None:
        t = t._base[0]
    return t


def _check(t, name, src, tracer):
    """Refuse, before anything changes, the in-place writes PyTorch refuses (and writes that
    could not reach the caller's tensor from inside a compiled function)."""
    v, through_alias = t, False
    while v._base is not None:
        op = v._base[1]
        if op is not None and op.name == "expand":
            raise RuntimeError(f"{name}{_at(src)}: this tensor is an expanded view (expand() or broadcasting made "
                               "several of its elements share one memory location); clone() it before writing in place")
        through_alias = through_alias or op is None  # `.data` / `.detach()`: writes through it are outside autograd
        v = v._base[0]
    if mode.grad_enabled and v._requires_grad and v.grad_fn is None and not through_alias:
        what = "a leaf Variable" if v is t else "a view of a leaf Variable"
        raise RuntimeError(f"{name}{_at(src)}: {what} that requires grad is being used in an in-place operation "
                           "(wrap it in `with tg.no_grad():` to update it as data)")
    if tracer is not None:
        if tracer.read_only(v):
            raise RuntimeError(f"{name}{_at(src)}: this argument of a compiled function came as an array, so an "
                               "in-place write could not reach the caller's; pass a tensor, or use the out-of-place form")
        tracer.writing(t)  # NOTE [effects]: a tensor from outside enters the trace before it changes


def written_back(b, op, arrays, params, v):
    """The base `b` with its view (`op[params]`) replaced by the values of `v`: how an
    in-place write through a view changes the base, as differentiable operations."""
    if op.name == "getitem":
        return apply(OPS["setitem"], b, v, *arrays, index=params["index"])
    if op.name == "reshape":
        return v.reshape(b.shape)
    if op.name == "permute":
        return v.permute(*sorted(range(len(params["axes"])), key=params["axes"].__getitem__))
    if op.name == "transpose":
        return v.transpose(params["dim0"], params["dim1"])
    raise RuntimeError(f"in-place write through a {op.name} view is not supported; clone() it first")


def _store(t, out):
    """Put the values of `out` into t's storage: written into NumPy memory (which its views
    and aliases share), or, for immutable arrays (JAX, NumPy scalars) and inside a trace
    (which must stay pure), given to t and, through its aliases and views, to its base."""
    data = t._data
    if mode.tracer is None and type(data) is np.ndarray and data.flags.writeable:
        np.copyto(data, out._data, casting="unsafe")
        return
    base = t._base
    if base is not None:
        b, op, arrays, params, _ = base
        with using(grad_enabled=False):
            _store(b, out if op is None else written_back(b, op, arrays, params, out))
    value = out._data
    # outside a trace, t owns its NumPy memory: later writes into it must not reach `out`'s
    t._data = np.array(value) if mode.tracer is None and type(value) is np.ndarray else value
    if mode.tracer is not None:
        mode.tracer.alias(t, out)


def _mark_overwritten(t, vc):
    """The nodes whose results lived in the storage being written (t's, its bases') can no
    longer give them to a backward that reads them (NOTE [versions])."""
    while t is not None:
        n = t.grad_fn
        if isinstance(n, Node) and type(n.out_data) is not Overwritten:
            n.out_data = Overwritten(n.out_data, vc)
        t = t._base[0] if t._base is not None else None


def _filled(t, value):
    """`t` filled with `value`, as a new tensor with no history (what `fill_` writes)."""
    if hasattr(value, "_data"):  # a 0-d tensor: its gradient is the sum of t's
        return _copied(t, value)
    out = new(np.full(np.shape(t._data), value, t.dtype) if not is_jax_array(t._data) else t._data * 0 + value)
    if mode.tracer is not None:
        mode.tracer.constant(out)
    return out


def _copied(t, src):
    src = wrap(src)
    if not hasattr(src, "_data"):
        return _filled(t, src)
    if src.dtype != t.dtype:
        src = src.astype(t.dtype)
    return apply(OPS["clone"], src)  # copy_ gets a node of its own (src keeps its own)


class InPlace:
    """The in-place methods (each bumps the version counter shared with aliases and views)."""

    __slots__ = ()

    def zero_(self: TensorT) -> TensorT:
        return inplace(self, "zero_", lambda t: _filled(t, 0))

    def fill_(self: TensorT, value) -> TensorT:
        return inplace(self, "fill_", lambda t: _filled(t, value))

    def add_(self: TensorT, other, alpha=1) -> TensorT:
        return inplace(self, "add_", lambda t: t + (other if alpha == 1 else other * alpha))

    def sub_(self: TensorT, other, alpha=1) -> TensorT:
        return inplace(self, "sub_", lambda t: t - (other if alpha == 1 else other * alpha))

    def mul_(self: TensorT, other) -> TensorT:
        return inplace(self, "mul_", lambda t: t * other)

    def div_(self: TensorT, other) -> TensorT:
        return inplace(self, "div_", lambda t: t / other)

    def clamp_(self: TensorT, min=None, max=None) -> TensorT:
        return inplace(self, "clamp_", lambda t: t.clamp(min, max))

    def copy_(self: TensorT, src) -> TensorT:
        return inplace(self, "copy_", lambda t: _copied(t, src))

    def clamp_min_(self: TensorT, min) -> TensorT:
        return inplace(self, "clamp_min_", lambda t: t.clamp(min=min))

    def masked_fill_(self: TensorT, mask, value) -> TensorT:
        return inplace(self, "masked_fill_", lambda t: t.masked_fill(mask, value))

    def __iadd__(self: TensorT, other) -> TensorT: return self.add_(other)
    def __isub__(self: TensorT, other) -> TensorT: return self.sub_(other)
    def __imul__(self: TensorT, other) -> TensorT: return self.mul_(other)
    def __itruediv__(self: TensorT, other) -> TensorT: return self.div_(other)


def _inplace_of(name):
    def method(self):
        return inplace(self, name + "_", lambda t: getattr(t, name)())

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"`{name}` in place (PyTorch's `Tensor.{name}_`)."
    return method


# every unary elementwise row has its in-place form (exp_, sigmoid_, relu_, ...)
for _row in OPS.values():
    if _row.elementwise and _row.inputs == ("a",) and not _row.params and _row.method == _row.name and _row.vjp:
        setattr(InPlace, _row.name + "_", _inplace_of(_row.name))

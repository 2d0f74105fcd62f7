"""Custom differentiable operations, as `torch.autograd.Function`."""
from __future__ import annotations

import numpy as np

from .._state import mode, no_grad, user_src
from ..rules import sum_to
from ..tensor import Tensor, new
from ..tensor.dispatch import wrap
from ..tensor.records import edge, node_type


class FunctionCtx:
    def __init__(self):
        self._saved = ()
        self._view = None
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        return self._saved if self._view is None else self._view


class _CustomOp:
    """Stands in for an op-table row: its VJP calls the user's `backward`."""

    custom = True

    def __init__(self, cls):
        self.name = cls.__name__
        self.grad_fn_name = f"{cls.__name__}Backward"
        self.cls = cls

    def vjp(self, g, out, *args, ctx, slots, nargs, attrs):
        places = {"arg": args[:nargs], "extra": args[nargs:]}
        ctx._view = tuple(out if kind == "out" else places[kind][j] for kind, j in slots)
        kept = {name: getattr(ctx, name) for name, _ in attrs}
        for name, j in attrs:  # tensors kept as ctx attributes: the backward sees their recorded values
            setattr(ctx, name, places["extra"][j])
        try:
            grads = self.cls.backward(ctx, g)
        finally:
            ctx._view = None
            for name, value in kept.items():
                setattr(ctx, name, value)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) < nargs:
            grads = grads + (None,) * (nargs - len(grads))
        return tuple(self._fitted(g, a, i) for i, (g, a) in enumerate(zip(grads[:nargs], args))) + (None,) * (
            len(args) - nargs)

    def _fitted(self, g, a, i):
        """A gradient of the input's shape: one broadcast against it is summed down, as PyTorch does."""
        if isinstance(g, Tensor) and mode.tracer is not None:
            mode.tracer.var(g)  # computed by recorded operations, or a clear error
        if not isinstance(g, Tensor) or not isinstance(a, Tensor) or g.shape == a.shape:
            return g
        if len(g.shape) < len(a.shape) or np.broadcast_shapes(g.shape, a.shape) != g.shape:
            raise RuntimeError(f"Function {self.grad_fn_name} returned an invalid gradient at index {i} - got "
                               f"{list(g.shape)} but expected shape compatible with {list(a.shape)}")
        return sum_to(g, a)


class Function:
    """Define an op by its forward and backward; `backward` must use transgrad ops (it is
    traced into the generated backward code like any rule).

    >>> import transgrad as tg
    >>> class Cube(tg.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * 3 * x ** 2
    >>> x = tg.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward(); x.grad
    tensor([12.])
    """

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("Function subclasses must implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must implement backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args) -> Tensor:
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not isinstance(out, Tensor):
            if isinstance(out, tuple):
                raise NotImplementedError(f"{cls.__name__}.forward: returning several tensors is not supported yet")
            out = wrap(out)
        if not (mode.grad_enabled and any(ctx.needs_input_grad)):
            return out
        slots, extras = [], []
        for s in ctx._saved:
            pos = next((i for i, a in enumerate(args) if a is s), None)
            if pos is not None:
                slots.append(("arg", pos))
            elif s is out:
                slots.append(("out", 0))
            else:
                slots.append(("extra", len(extras)))
                extras.append(s)
        attrs = []
        for name, value in vars(ctx).items():
            if isinstance(value, Tensor) and not name.startswith("_"):
                attrs.append((name, len(extras)))
                extras.append(value)
        op = _CustomOp(cls)
        params = {"ctx": ctx, "slots": tuple(slots), "nargs": len(args), "attrs": tuple(attrs)}
        edges = tuple(edge(a) for a in args) + (None,) * len(extras)
        node = node_type(op.grad_fn_name)(op, tuple(args) + tuple(extras), params, out._data, user_src(), edges)
        result = new(out._data, requires_grad=True, grad_fn=node)
        if mode.tracer is not None:  # the forward's operations were recorded: its result is this tensor
            mode.tracer.alias(result, out)
            mode.tracer.produced(result)
        return result

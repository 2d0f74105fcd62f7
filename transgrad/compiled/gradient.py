"""`GradFunction`: `tg.grad(f)` / `tg.value_and_grad(f)`, one joint forward+backward program
per path of `f` (its CompiledFunction's traces)."""
from __future__ import annotations

import functools

import numpy as np

from .._state import mode
from ..backends.helpers import GuardFailed
from ..engine import owned
from ..tensor import Tensor, new
from .arguments import JAX_ARRAYS, rebuild
from .function import CacheInfo, CompiledFunction
from .sources import Stale


class GradFunction:
    """`tg.grad(f)` / `tg.value_and_grad(f)`: one joint program per path of `f`."""

    def __init__(self, f, argnums, backend, with_value):
        self._f = f if isinstance(f, CompiledFunction) and backend is None else CompiledFunction(
            getattr(f, "fn", f), backend=backend or "numpy")
        self.argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        self._single = isinstance(argnums, int)
        self._with_value = with_value
        self._joint_key = (self.argnums, with_value)
        self._plan = None  # see _plan
        functools.update_wrapper(self, self._f.fn)

    @property
    def __transgrad_fn__(self):
        return self._f.fn

    def __call__(self, *args, **kwargs):
        f, out = self._f, None
        if mode.tracer is None and not kwargs:
            if self._plan is not None:  # the fastest path: the last call's trace, arguments alike
                out = self._plan(args)
                if out is not None:
                    return out
            leaves, key = f._leaves(args, kwargs, self.argnums)  # fast path: the newest trace of this signature fits
            traces = f._traces.get(key)
            if traces:
                tr = traces[0]
                joint = tr.joint.get(self._joint_key)
                if joint is not None:
                    try:
                        inputs = f.inputs(tr, leaves)[0]
                        out = owned(joint[0](*inputs), inputs)
                        tr.hits += 1
                        f.hits += 1
                        self._plan = _plan(self, tr, args)
                    except (GuardFailed, Stale):
                        out = None  # the general path below retries, records and retraces
        if out is None:
            out = f._call(args, kwargs, self.argnums, self._with_value)
        out = [x if type(x) is Tensor else new(x) for x in out]
        value, grads = (out[0], out[1:]) if self._with_value else (None, out)
        it = iter(grads)  # each argument's gradient has the argument's structure (a list, a dict...)
        grads = [rebuild(args[p], it, True) for p in self.argnums]
        grads = grads[0] if self._single else tuple(grads)
        return (value, grads) if self._with_value else grads

    def code(self, *args, **kwargs) -> str:
        """Source of the generated joint program for these inputs."""
        tr = self._f._trace_for(args, kwargs, self.argnums, self._with_value)
        tr.joint_program(self.argnums, self._with_value, self._f.__name__)
        return tr.joint[(self.argnums, self._with_value)][1]

    @property
    def traces(self):
        return self._f.traces

    def cache_info(self) -> CacheInfo:
        return self._f.cache_info()


def _plan(g, tr, args):
    """A call of trace `tr`'s joint program for arguments like `args` that checks nothing but
    each argument's type, shape and dtype (the guards run in the program): None where the
    trace reads anything besides its arguments (tensors from outside, .grad, random numbers,
    a loop bound) or an argument is not one array or tensor. A call it does not fit, or
    whose guards fail, takes the general path."""
    f = g._f
    if tr.env or tr.captured or tr.grad_guards or tr.randoms or f._bounds:
        return None
    sig = []
    for a in args:
        t = type(a)
        if t is np.ndarray or t in JAX_ARRAYS:
            sig.append((t, a.shape, a.dtype, None))
        elif t is Tensor and a._base is None:
            sig.append((t, a._data.shape, a._data.dtype, a._requires_grad))
        else:
            return None
    fn, numpy, with_value, single = tr.joint[g._joint_key][0], f.backend.name == "numpy", g._with_value, g._single
    n = len(sig)

    def run(args):
        if len(args) != n:
            return None
        arrays = []
        for a, (t, shape, dtype, rg) in zip(args, sig):
            if type(a) is not t:
                return None
            if rg is not None:
                if a._requires_grad is not rg or a._base is not None:
                    return None
                a = a._data
            if a.shape != shape or a.dtype != dtype:
                return None
            arrays.append(a)
        try:
            out = fn(*arrays)
        except GuardFailed:
            return None
        tr.hits += 1
        f.hits += 1
        out = [new(x) for x in (owned(out, arrays) if numpy else out)]
        grads = out[1:] if with_value else out
        grads = grads[0] if single else tuple(grads)
        return (out[0], grads) if with_value else grads

    return run

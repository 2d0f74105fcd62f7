"""`GradFunction`: `tg.grad(f)` / `tg.value_and_grad(f)`, one joint forward+backward program
per path of `f` (its CompiledFunction's traces)."""
from __future__ import annotations

import functools

from .._state import mode
from ..backends.helpers import GuardFailed
from ..engine import owned
from ..tensor import Tensor, new
from .arguments import rebuild
from .function import CacheInfo, CompiledFunction, plan_arrays, plan_signature
from .sources import Stale


class GradFunction:
    """`tg.grad(f)` / `tg.value_and_grad(f)`: one joint program per path of `f`."""

    def __init__(self, f, argnums, backend, with_value):
        self._f = f if isinstance(f, CompiledFunction) and backend is None else CompiledFunction(
            getattr(f, "fn", f), backend=backend or "numpy")
        self.argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        self._counted = {} if min(self.argnums) < 0 else None  # per number of arguments: argnums from the last
        self._single = isinstance(argnums, int)
        self._with_value = with_value
        self._joint_key = (self.argnums, with_value)
        self._plan = None  # NOTE [plans]
        functools.update_wrapper(self, self._f.fn)

    @property
    def __transgrad_fn__(self):
        return self._f.fn

    def __call__(self, *args, **kwargs):
        if self._counted is not None:  # a negative argnum counts from the last argument, as in JAX
            g = self._counted.get(len(args))
            if g is None:
                if any(not -len(args) <= a < len(args) for a in self.argnums):
                    raise ValueError(f"grad: argnums {self.argnums} out of range for {len(args)} arguments")
                g = self._counted[len(args)] = GradFunction(self._f, [a % len(args) for a in self.argnums], None,
                                                            self._with_value)
                g._single = self._single
            return g(*args, **kwargs)
        f, out = self._f, None
        if mode.tracer is None and not kwargs:
            if self._plan is not None:  # NOTE [plans]
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
    """The plan of a `tg.grad` call (NOTE [plans]): the joint program's gradients as tensors."""
    f = g._f
    sig = plan_signature(f, tr, args)
    if sig is None:
        return None
    fn, numpy, with_value, single = tr.joint[g._joint_key][0], f.backend.name == "numpy", g._with_value, g._single

    def run(args):
        arrays = plan_arrays(sig, args)
        if arrays is None:
            return None
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

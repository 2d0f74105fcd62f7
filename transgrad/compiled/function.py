"""`CompiledFunction`: a Python function run as generated code, one trace per control-flow
path, cached per code object; `GradFunction`: its gradient (tg.grad / tg.value_and_grad).

The first call with a new input signature traces the function (`trace.ForwardTracer`);
every decision the run took on a tensor value is a guard that the generated code re-checks
(NOTE [guards]). A call whose inputs take another path fails a guard before any result
escapes, and is retraced. A cache hit runs only generated code.
"""
from __future__ import annotations

import collections
import functools
import inspect
import linecache
import re
import threading
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from .._state import PKG_DIR, gc_paused, mode, user_src, using
from ..backends import get_backend
from ..backends.helpers import GuardFailed
from ..codegen.names import identifier
from ..engine import grad as autograd_grad, owned
from ..tensor import Tensor, dispatch, new, tensor, zeros_like
from ..tensor.creation import generator
from ..tensor.dtypes import as_jax_computes
from ..trace import ForwardTracer, TraceError, name_from_source, tracing
from ..trace.loops import range_bounds
from . import effects, sources
from .arguments import JAX_ARRAYS, flatten, flatten_out, rebuild, tree_leaves, unflatten_out
from .program import MAX_REDECISIONS, Trace
from .sources import Stale


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    retraces: int
    size: int


class _Shared:
    """The traces of one Python function, shared by every wrapper of every closure of its code
    (a `tg.value_and_grad(loss)` made anew inside a training loop finds the traces of the last)."""

    def __init__(self):
        self.traces = {}  # signature -> [Trace], newest first
        self.lock = threading.RLock()
        self.retrace_log = []
        self.changing = collections.Counter()  # source of the guard behind each retrace
        self.warned = False
        self.meta = None
        self.order = collections.deque()  # traces, oldest first

    def add(self, key, tr, cap):
        """Keep `tr`; past `cap` traces of this code (made for many closures) drop the oldest."""
        self.traces.setdefault(key, []).insert(0, tr)
        self.order.append((key, tr))
        while len(self.order) > cap:
            k, old = self.order.popleft()
            self.traces[k].remove(old)
            if not self.traces[k]:
                del self.traces[k]


_SHARED = weakref.WeakKeyDictionary()  # code object -> {(backend, device, cache_size): _Shared}
_SHARED_LOCK = threading.Lock()


def _shared(fn, backend, device, cache_size, loops, checkpoint):
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:  # another kind of callable: a cache of its own
        return _Shared()
    with _SHARED_LOCK:
        per_code = _SHARED.setdefault(code, {})
        return per_code.setdefault((backend.name, device, cache_size, loops, checkpoint), _Shared())


def _signature_meta(shared, fn):
    """(name in generated code, positional parameter names, the *args name). A callable
    object (a Module) is named after its class, its parameters after its `forward`'s."""
    forward = getattr(fn, "forward", None)
    sig = inspect.signature(forward if callable(forward) and not inspect.isroutine(fn) else fn)
    positional = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = next((p.name for p in sig.parameters.values() if p.kind == p.VAR_POSITIONAL), "arg")
    shared.meta = (identifier(getattr(fn, "__name__", type(fn).__name__).strip("<>")), positional, varargs)
    return shared.meta


class CompiledFunction:
    """A function compiled per control-flow path; see `tg.compile`."""

    def __init__(self, fn, backend="numpy", cache_size=16, device=None, loops="roll", checkpoint=None):
        if inspect.isroutine(fn):
            functools.update_wrapper(self, fn)
        else:  # a callable object (a Module): its attributes stay its own
            functools.update_wrapper(self, fn, updated=())
            self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.fn = fn
        self.backend = get_backend(backend)
        if self.backend.name == "jax":
            dispatch.register_with_jax()
        self.device = device
        self.cache_size = cache_size
        if loops not in ("roll", "unroll"):
            raise ValueError(f"compile: loops={loops!r}; use 'roll' (one program for every trip count) or 'unroll'")
        if checkpoint is not None and (not isinstance(checkpoint, int) or isinstance(checkpoint, bool) or checkpoint < 1):
            raise ValueError(f"compile: checkpoint={checkpoint!r}; use a positive int k (save the state of every "
                             "k-th iteration of a rolled loop, recompute the others in the backward) or None")
        self.loops, self.checkpoint = loops, checkpoint
        self._shared = _shared(fn, self.backend, device, cache_size, loops, checkpoint)
        self._traces = self._shared.traces
        self._lock = self._shared.lock
        self._name, self._positional, self._varargs = self._shared.meta or _signature_meta(self._shared, fn)
        # parameters that only bound a loop (`for t in range(n)`) are inputs, not keys (NOTE [loops])
        self._bounds = {self._positional.index(n): lines for n, lines in range_bounds(fn).items()
                        if n in self._positional} if loops == "roll" else {}
        self.hits = self.misses = self.retraces = 0  # this wrapper's calls; the traces are the code's
        self._plan = None  # NOTE [plans]

    @property
    def __transgrad_fn__(self):
        return self.fn

    @property
    def retrace_log(self) -> list:
        """Why each retrace of this function's code happened, in the user's terms."""
        return self._shared.retrace_log

    def __call__(self, *args, **kwargs):
        if self._plan is not None and not kwargs and mode.tracer is None:  # NOTE [plans]
            out = self._plan(args)
            if out is not None:
                return out
        return self._call(args, kwargs, None)

    @property
    def traces(self) -> list:
        """Cached traces, each showing its guards."""
        with self._lock:
            return [t for ts in self._traces.values() for t in ts]

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, self.retraces, self._size())

    def _size(self):
        """Traces that this function could run: those of its code whose baked-in objects are
        this closure's (`cache_size` bounds them; other closures of the code have their own)."""
        return sum(1 for ts in self._traces.values() for tr in ts if sources.holds(self.fn, tr.env))

    def code(self, *args, **kwargs) -> str:
        """Source of the generated forward and backward code for these inputs."""
        tr = self._trace_for(args, kwargs, None)
        tr.forward()
        return "\n\n".join([tr.source] + [tr.backward_sources[k] for k in sorted(tr.backward_sources)])

    # ---- calling ----
    def _leaves(self, args, kwargs, argnums):
        """The call's dynamic leaves and its signature (compiled/arguments.py). `argnums`
        counts the call's positional arguments, as in JAX; keyword arguments are never
        differentiated."""
        leaves, key = [], []
        names, n = self._positional, len(self._positional)
        for pos, a in enumerate(args):
            diff = argnums is not None and pos in argnums
            name = names[pos] if pos < n else f"{self._varargs}_{pos - n}"
            ta = type(a)
            if (ta is np.ndarray or ta in JAX_ARRAYS) and (not diff or a.dtype.kind == "f"):
                leaves.append((name, a, diff, None, pos))
                key.append(("array", a.shape, a.dtype, diff))
            elif ta is Tensor and (not diff or a._data.dtype.kind == "f"):
                rg = a._requires_grad or diff
                leaves.append((name, a._fresh(), rg, a, pos))
                key.append((a._data.shape, a._data.dtype, rg))
            elif self._bounds and self._bound(pos, a, diff):
                leaves.append((name, np.asarray(a, np.int32), False, None, pos))
                key.append("bound")
            else:
                flatten(a, name, diff, leaves, key, pos)
        for k, v in kwargs.items():
            key.append(("keyword", k))
            flatten(v, k, False, leaves, key, None)
        if argnums and max(argnums) >= len(args):
            raise TypeError(f"grad: argnums={argnums} counts positional arguments, but {self.__name__} was called "
                            f"with {len(args)}")
        return leaves, tuple(key)

    def _bound(self, pos, a, diff):
        """Is argument `a` at `pos` an int that bounds a loop, passed to the program (NOTE [loops])?"""
        return type(a) is int and pos in self._bounds and not diff and 0 <= a < 2 ** 31

    def _call(self, args, kwargs, argnums, value=True):
        """Forward results (argnums None), else (value?, *grads) as arrays or tensors."""
        if mode.tracer is not None:  # inside another trace: run the Python, the outer tracer records it
            return self._eager(args, kwargs, argnums, value)
        leaves, key = self._leaves(args, kwargs, argnums)
        failures = []
        for tr in list(self._traces.get(key, ())):
            try:
                result = self._run(tr, leaves, argnums, value)
            except (GuardFailed, Stale) as e:
                failures.append((tr, e))
                continue
            self.hits += 1
            if argnums is None and not kwargs:
                self._plan = _forward_plan(self, tr, args)
            return result
        return self._miss(args, kwargs, leaves, key, argnums, failures, value)

    def inputs(self, tr, leaves):
        """The arrays a trace's program takes: the leaves, then the tensors it reads from
        outside (checked, with the Python values it baked in: NOTE [sources]), the `.grad`
        tensors it reads and the random numbers it draws (NOTE [effects]); and the tensors
        of the captured and `.grad` inputs."""
        if tr.env and not sources.holds(self.fn, tr.env):
            raise Stale("; ".join(sources.changed(self.fn, tr.env)))
        captured = [c.get(self.fn, Tensor) for c in tr.captured]
        outside = captured + effects.grad_inputs(tr, leaves, captured) if tr.grad_guards else captured
        arrays = [leaf[1] for leaf in leaves] + [t._fresh() for t in outside]
        if tr.randoms:
            rng = generator()
            arrays += [draw(rng) for draw in tr.randoms]
        return arrays, outside

    def _run(self, tr, leaves, argnums, value=True, effects_on=True):
        arrays, captured = self.inputs(tr, leaves)
        if argnums is not None:
            fn = tr.joint_program(argnums, value, self.__name__)
        else:
            fn = tr.program(mode.grad_enabled)
        try:
            out = fn(*arrays)
        except GuardFailed as e:
            for i in range(e.index):  # the guards before it held: `Trace.describe_guards` counts them
                tr.guard_holds[i] += 1
            raise
        tr.hits += 1
        if argnums is not None:
            return owned(out, arrays)
        n_out, n_effects = tr.n_out, len(tr.effect_vars)
        outs = [new(a) for a in owned(out[:n_out], arrays)]
        if tr.effects and effects_on:
            effects.apply(tr, owned(out[n_out:n_out + n_effects], arrays), leaves, captured[:len(tr.captured)])
        if (tr.residuals or tr.freed) and mode.grad_enabled:
            inputs = (tuple(leaf[3] if leaf[3] is not None else new(leaf[1]) for leaf in leaves) + tuple(captured)
                      + tuple(new(a) for a in arrays[len(leaves) + len(captured):]))
            tr.record(outs, inputs, out[n_out + n_effects:], user_src())
        return unflatten_out(tr.out_tree, iter(outs))

    def _miss(self, args, kwargs, leaves, key, argnums, failures, value=True, effects_on=True):
        with self._lock:
            if self._size() >= self.cache_size:
                if not effects_on:  # only looking for a trace (f.code()): never run the function for it
                    return None
                self._warn_full()
                return self._eager(args, kwargs, argnums, value)
            decisions = {}
            fast = self.loops == "roll" and self.backend.name == "numpy"  # NOTE [fast forward]
            while True:
                rng = generator().bit_generator.state
                try:
                    with gc_paused():
                        tr = self._build(args, kwargs, leaves, key, argnums, decisions, fast)
                except _Guessed:  # the trace after a loop it ended early failed: trace it all
                    fast = False
                    continue
                finally:
                    generator().bit_generator.state = rng  # the program draws what the traced run drew
                try:
                    result = self._run(tr, leaves, argnums, value, effects_on)
                    break
                except GuardFailed as e:  # NOTE [decisions]: the program computed another decision
                    if tr.fast_forwarded:  # NOTE [fast forward]: the guess does not stand
                        fast, decisions = False, {}
                        continue
                    if e.index in decisions or len(decisions) >= MAX_REDECISIONS:
                        g = tr.guards[e.index]
                        raise TraceError(
                            f"{self.__name__}: the function took a different path on a second run with the same "
                            f"inputs ({g.describe()} decided {g.expected!r} when traced, {e.value!r} when its "
                            "generated code ran); transgrad needs it to be deterministic") from None
                    decisions[e.index] = (not tr.guards[e.index].expected) if e.value is None else e.value
            if failures:
                self.retraces += 1
                self._explain(failures, tr)
            else:
                self.misses += 1
            self._shared.add(key, tr, 4 * self.cache_size)
        return result

    def _eager(self, args, kwargs, argnums, value=True):
        if argnums is None:
            return self.fn(*args, **kwargs)
        out = eager_value_and_grad(self.fn, args, kwargs, argnums)
        if mode.tracer is None:  # as a generated program gives them: values, not graphs
            out = tuple(x.detach() for x in out)
        return out if value else out[1:]

    def _warn_full(self):
        if self._shared.warned:
            return
        self._shared.warned = True
        culprit = ""
        if self._shared.changing:
            (src, _), n = self._shared.changing.most_common(1)[0]
            culprit = f"; the guard at {src} keeps changing ({n} retraces)"
        warnings.warn(f"transgrad.compile: {self.__name__} reached cache_size={self.cache_size} traces{culprit}. "
                      "Calls that need a new trace now run eagerly.", RuntimeWarning, stacklevel=4)

    def _explain(self, failures, new_trace):
        """Why the cached traces did not apply, in the user's terms (`retrace_log`)."""
        guard_failures = [(tr, e) for tr, e in failures if isinstance(e, GuardFailed)]
        if not guard_failures:
            self.retrace_log.append(f"{self.__name__}: {failures[0][1].why}")
            return
        old, e = max(guard_failures, key=lambda f: f[1].index)
        index = e.index
        g = old.guards[index]
        self._shared.changing[(f"line {g.src.line}" if g.src else g.how, g.src and g.src.text)] += 1
        new_g = new_trace.guards[index] if index < len(new_trace.guards) else None  # the prefix before it is the same
        got = new_g.expected if new_g is not None and new_g.src == g.src else "another value"
        if g.how == "capacity":  # NOTE [loops]
            msg = (f"loop {g.describe()}: this input loops {old.capacity[index]} times or more, past the buffers "
                   "of the cached trace's rolled loop; the new trace has room for twice its count")
        elif g.how == "limit":
            msg = (f"loop {g.describe()}: this input loops {old.capacity[index]} times or more, as many iterations as "
                   "a trace may record; tracing it again")
        elif g.how == "range":  # NOTE [loops]: an argument that bounds a loop which did not roll
            msg = f"{g.describe()}: the cached trace looped {g.expected} times, this input loops {e.value} times"
            if g.src in old.unrolled:
                msg += f" (the loop is not rolled: {old.unrolled[g.src]})"
        elif g.src is not None and g.src.text.startswith("while") and isinstance(g.expected, bool):
            count_old = sum(1 for x in old.guards if x.src == g.src and x.expected is True)
            count_new = sum(1 for x in new_trace.guards if x.src == g.src and x.expected is True)
            msg = f"{g.describe()}: the cached trace looped {count_old} times, this input loops {count_new} times"
            if g.src in old.unrolled:
                msg += f" (the loop is not rolled: {old.unrolled[g.src]})"
        else:
            nth = sum(1 for x in old.guards[:index + 1] if x.src == g.src)
            many = sum(1 for x in old.guards if x.src == g.src) > 1
            which = f" (its decision number {nth} in the call)" if many else ""
            msg = f"{g.describe()}{which}: the cached trace took {g.expected!r}, this input takes {got!r}"
        self.retrace_log.append(msg)

    def _trace_for(self, args, kwargs, argnums, value=True):
        """The trace these inputs run (tracing them if none fits)."""
        leaves, key = self._leaves(args, kwargs, argnums)
        rng = generator().bit_generator.state
        try:  # the trace is found by running it, without its effects: nothing the caller sees changes
            for tr in self._traces.get(key, ()):
                try:
                    self._run(tr, leaves, argnums, value, effects_on=False)
                    return tr
                except (GuardFailed, Stale):
                    continue
            self._miss(args, kwargs, leaves, key, argnums, [], value, effects_on=False)
        finally:
            generator().bit_generator.state = rng
        if key not in self._traces:
            raise RuntimeError(f"{self.__name__}: the trace cache is full (cache_size={self.cache_size}); "
                               "these inputs run eagerly and have no generated code")
        return self._traces[key][0]

    # ---- tracing ----
    # NOTE [host tracing]: a trace for the JAX backend runs its eager operations on NumPy
    # copies of the arrays (mode.host): running them on JAX would compile one XLA program per
    # operation and shape on the side of the one program the trace becomes. Results take the
    # dtypes JAX without x64 gives them (float32, int32), and float64 is refused as on JAX
    # arrays. The values only decide guards: the first result comes from the program, which
    # re-decides any guard whose float rounding differs (NOTE [decisions]). With x64 on, the
    # trace runs on JAX (NumPy's promotion of int32 with float32 differs from JAX's), and so
    # does one under a JAX transformation (jax.vmap), whose arrays have no values to copy.
    def _build(self, args, kwargs, leaves, key, argnums, decisions=None, fast=False):
        if getattr(self.backend, "x64_enabled", None) is not None and not self.backend.x64_enabled():
            for leaf in leaves:
                if np.dtype(leaf[1].dtype) == np.float64:
                    raise TypeError(
                        f"{self.__name__}: argument `{leaf[0]}` is float64, but JAX runs float64 as float32 unless "
                        "jax_enable_x64 is on: call jax.config.update('jax_enable_x64', True) first, or pass float32")
        host = self.backend.name == "jax" and self.backend.traces_on_host(leaf[1] for leaf in leaves)
        tracer = ForwardTracer(decisions, fast_forward=fast and not decisions)
        traced = [tracer.arg(as_jax_computes(np.asarray(leaf[1])) if host and hasattr(leaf[1], "dtype") else leaf[1], leaf[2], leaf[0],
                             frozen=leaf[3] is None) for leaf in leaves]
        for leaf, t in zip(leaves, traced):  # `x.grad` of an argument is the caller's (NOTE [effects])
            if leaf[3] is not None:
                t._grad = leaf[3]._grad
        for leaf, t in zip(leaves, traced):
            if self._bound(leaf[4], args[leaf[4]] if leaf[4] is not None else None, False):  # the function gets the int, the program an input
                tracer.bounds.append(dict(name=leaf[0], var=tracer.vars[id(t)], value=args[leaf[4]], states={},
                                          file=self.fn.__code__.co_filename, lines=self._bounds[leaf[4]]))
        it = iter(traced)
        args = tuple(a if self._bound(i, a, argnums is not None and i in argnums) and next(it) is not None
                     else rebuild(a, it, argnums is not None and i in argnums) for i, a in enumerate(args))
        kwargs = {k: rebuild(v, it, False) for k, v in kwargs.items()}
        with tracing(tracer, grad=True), using(host=host):
            try:
                result = self.fn(*args, **kwargs)
            except Exception as e:
                if tracer.forced:  # NOTE [fast forward]: values after a loop ended early may fail
                    raise _Guessed from None
                if isinstance(e, TraceError):
                    raise
                raise _user_error(e, self.__name__) from None
            finally:
                tracer.restore()  # NOTE [effects]: tracing changed nothing the caller sees
        outs = []
        tree = flatten_out(result, outs)
        name_from_source(tracer.eqns)
        captures, env = _sources(self.fn, tracer.captured, self.__name__)
        tr = Trace(self._name, key, leaves, tracer, traced, outs, tree, captures, env, self.backend, self.device,
                   self.loops, self.checkpoint)
        tr.fast_forwarded = bool(tracer.forced)
        return tr


# NOTE [plans]: a call whose arguments are arrays or tensors of the same types, shapes, dtypes
# (and requires_grad) as the last call's runs that call's trace with nothing checked on the
# host but those: no signature tuple, no argument rebuild. Only a trace that reads nothing
# besides its arguments (no tensors from outside, .grad, random numbers, loop bounds or
# effects) has a plan; its guards still run in its program, and a call that does not fit,
# or whose guards fail, takes the general path.
def plan_signature(f, tr, args):
    """Per argument (type, shape, dtype, requires_grad, or None for an array), or None
    where trace `tr` of `f` cannot have a plan (NOTE [plans])."""
    if tr.env or tr.captured or tr.grad_guards or tr.randoms or tr.effects or f._bounds:
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
    return tuple(sig)


def plan_arrays(sig, args):
    """The arrays of `args` when they fit `sig`, else None."""
    if len(args) != len(sig):
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
    return arrays


def _forward_plan(f, tr, args):
    """The plan of a forward call (NOTE [plans]): outputs as tensors, recorded for autograd."""
    sig = plan_signature(f, tr, args)
    if sig is None or tr.fn is None:
        return None
    numpy, n_out, record = f.backend.name == "numpy", tr.n_out, bool(tr.residuals or tr.freed)

    def run(args):
        arrays = plan_arrays(sig, args)
        if arrays is None:
            return None
        grad = mode.grad_enabled
        try:
            out = tr.program(grad)(*arrays)
        except GuardFailed:
            return None
        tr.hits += 1
        f.hits += 1
        outs = [new(a) for a in (owned(out[:n_out], arrays) if numpy else out[:n_out])]
        if record and grad:
            inputs = tuple(a if type(a) is Tensor else new(x) for a, x in zip(args, arrays))
            tr.record(outs, inputs, out[n_out:], user_src())
        return unflatten_out(tr.out_tree, iter(outs))

    return run


class _Guessed(Exception):
    """Tracing after a loop that the tracer ended early failed (NOTE [fast forward])."""


def _sources(fn, captured, name):
    """The Captures of a trace and its guards on Python values (NOTE [sources])."""
    found, env = sources.search(fn, {id(t): t for _, t in captured}, lambda o: isinstance(o, Tensor))
    caps = [sources.Capture(v, found[id(t)], t) for v, t in captured]
    for c in caps:  # named as the code spells them: `model.fc1.weight` is model_fc1_weight
        if c.paths:
            c.var.hint = re.sub(r"\W+", "_", c.paths[0][1]).strip("_") or c.var.hint
    lost = [c for c in caps if not c.paths]
    if lost:
        warnings.warn(f"transgrad.compile: {name} reads {len(lost)} tensor(s) (shapes "
                      f"{', '.join(str(list(c.shape)) for c in lost)}) that are not reachable from its closure, "
                      "globals, defaults or the objects they hold; each call reads the same tensor object again "
                      "(in-place updates are seen) but not a new tensor bound in its place: pass it as an argument",
                      RuntimeWarning, stacklevel=5)
    return caps, env


def eager_value_and_grad(fn, args, kwargs, argnums):
    """(value, *grads) by running `fn` eagerly: the gradients flat, as a joint program gives them."""
    args, diff = list(args), []

    def leaf(a):
        if isinstance(a, Tensor):
            x = a if a._requires_grad else a.detach().requires_grad_()
        else:
            x = tensor(a).requires_grad_()
        diff.append(x)
        return x

    for p in argnums:
        args[p] = rebuild(args[p], (leaf(a) for a in tree_leaves(args[p])), True)
    with using(grad_enabled=True):
        value = fn(*args, **kwargs)
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise TypeError(f"grad: {getattr(fn, '__name__', 'f')} must return a scalar tensor")
        grads = autograd_grad(value, diff, create_graph=mode.tracer is not None, allow_unused=True)
    grads = tuple(zeros_like(x) if g is None else g for x, g in zip(diff, grads))
    return (value, *grads)


def _user_error(e, name):
    """Re-raise an error from the user's function with a note naming its source line, and
    with transgrad's own frames dropped from the traceback."""
    tb, frames = e.__traceback__, []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(PKG_DIR):
            frames.append(tb)
        tb = tb.tb_next
    if frames:
        last = frames[-1]
        line = linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno).strip()
        e.add_note(f"(while transgrad traced {name}: {last.tb_frame.f_code.co_filename}:{last.tb_lineno} `{line}`)")
        for a, b in zip(frames, frames[1:]):
            a.tb_next = b
        frames[-1].tb_next = None
        return e.with_traceback(frames[0])
    return e

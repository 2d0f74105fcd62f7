"""`@tg.compile`, `tg.grad`, `tg.value_and_grad`: guarded ahead-of-time traces.

The first call with a new input signature runs the function once on tracing tensors
(`trace.ForwardTracer`). What it did becomes a forward Graph, the VJP rules replayed on
its autograd nodes become backward Graphs, and both are generated as straight-line
Python. Every decision the run took on a tensor value is a guard that the generated code
re-checks (NOTE [guards]); a call whose inputs take another path raises `GuardFailed`
inside the generated code before any result escapes, and is retraced. A cache hit runs
only generated code.
"""
from __future__ import annotations

import collections
import functools
import inspect
import threading
import weakref
import warnings
from collections import Counter
from typing import NamedTuple

import numpy as np

from . import autodiff, sources
from . import tensor as T
from ._state import gc_paused, mode, show_code, user_src
from .autodiff import Node, _edge, _walk, check_saved, saved_checks, vjp_graph
from .backends import get_backend
from .codegen.emit import emit
from .interp import run_tensors
from .ir import Eqn, Graph, Var
from .passes import dce, optimize
from .trace import ForwardTracer, TraceError, name_from_source, tracing


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    retraces: int
    size: int


# ---- inputs: flatten arguments into dynamic leaves and a static signature -------------------------
_SCALARS = (bool, int, float)
_JAX_ARRAYS = set()


def _flatten(value, name, diff, leaves, key, pos=0):
    """Append `value`'s dynamic leaves (name, data, requires_grad, original tensor, argument
    position) and its signature."""
    if isinstance(value, T.Tensor):
        rg = value._rg or diff
        if diff and value.dtype.kind != "f":
            raise TypeError(f"grad: argument `{name}` has dtype {value.dtype}; only float arguments can be differentiated")
        leaves.append((name, value.array, rg, value, pos))
        key.append((value.shape, value.dtype, rg))
    elif isinstance(value, np.ndarray) or T.is_jax_array(value):
        a = value
        if type(a) is not np.ndarray and "Tracer" not in type(a).__name__:
            _JAX_ARRAYS.add(type(a))  # concrete JAX arrays take the fast path from now on
        if diff and a.dtype.kind != "f":
            raise TypeError(f"grad: argument `{name}` has dtype {a.dtype}; only float arguments can be differentiated")
        leaves.append((name, a, diff, None, pos))
        key.append(("array", a.shape, np.dtype(a.dtype), diff))
    elif type(value) in _SCALARS and diff:
        if type(value) is not float:
            raise TypeError(f"grad: argument `{name}` is a {type(value).__name__}; only floats can be differentiated")
        leaves.append((name, np.asarray(value, T.default_dtype), True, None, pos))
        key.append(("scalar", float))
    elif isinstance(value, (list, tuple)):
        key.append((type(value), len(value)))
        for i, v in enumerate(value):
            _flatten(v, f"{name}_{i}", diff, leaves, key, pos)
    elif isinstance(value, dict):
        key.append((dict, tuple(value)))
        for k, v in value.items():
            _flatten(v, f"{name}_{k}", diff, leaves, key, pos)
    else:
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"compile: argument `{name}` of type {type(value).__name__} is neither a tensor nor "
                            "hashable; pass tensors, arrays, scalars or tuples/lists/dicts of them") from None
        key.append(("static", type(value), value))


def _rebuild(value, it, diff):
    """`value` with its dynamic leaves replaced by the next items of `it`."""
    if isinstance(value, (T.Tensor, np.ndarray)) or T.is_jax_array(value):
        return next(it)
    if type(value) is float and diff:
        return next(it)
    if isinstance(value, (list, tuple)):
        items = [_rebuild(v, it, diff) for v in value]
        return type(value)(items) if type(value) in (list, tuple) else type(value)(*items)
    if isinstance(value, dict):
        return {k: _rebuild(v, it, diff) for k, v in value.items()}
    return value


def _flatten_out(value, leaves):
    """Outputs: tensors become leaves; the structure (with Python values) is the tree."""
    if isinstance(value, T.Tensor):
        leaves.append(value)
        return ("T",)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_flatten_out(v, leaves) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _flatten_out(v, leaves)) for k, v in value.items()))
    return ("const", value)


def _unflatten_out(tree, it):
    kind = tree[0]
    if kind == "T":
        return next(it)
    if kind == "const":
        return tree[1]
    if kind is dict:
        return {k: _unflatten_out(v, it) for k, v in tree[1]}
    items = [_unflatten_out(v, it) for v in tree[1]]
    return kind(items) if kind in (list, tuple) else kind(*items)


# ---- a trace: one control-flow path of the function, as generated code ---------------------------------
class _TraceOp:
    """Stands in for an op-table row in autograd: the VJP of output `k` of a trace runs that
    output's backward graph on tensors, so it is traced like any rule (NOTE [rules trace])."""

    custom = False
    opaque = True  # its backward carries the function's own source lines, not the caller's

    def __init__(self, trace, k):
        self.trace, self.k = trace, k
        self.name = trace.name
        self.grad_fn_name = f"{trace.name}Backward"

    def vjp(self, g, out, *saved):
        """`saved` is the trace's inputs, then the residuals this output's backward reads."""
        tr = self.trace
        bwd, seed = tr.bwd[self.k], tr.bwd_seed[self.k]
        residuals = iter(saved[tr.n_inputs:])
        grads = run_tensors(bwd, [g if v is seed else next(residuals) for v in bwd.inputs])
        out = [None] * len(saved)
        for i, gi in zip(tr.diff_inputs, grads):
            out[i] = gi
        return tuple(out)

    def saved_name(self, k):
        tr = self.trace
        if k < tr.n_inputs:
            return tr._fwd_inputs[k].hint
        seed = tr.bwd_seed[self.k]
        return [v for v in tr.bwd[self.k].inputs if v is not seed][k - tr.n_inputs].hint

    def differentiable_saved(self, node, k, memo):
        """Saved value k of `node` for a backward that is itself differentiated
        (create_graph=True): a residual is recomputed from the saved inputs by recorded
        operations, so that its dependence on them is part of the graph (the generated
        forward computed it without history). None for an input (it is the tensor itself)."""
        tr = self.trace
        if k < tr.n_inputs:
            return None
        res = memo.get(id(node))
        if res is None:
            consts = [T._new(tr.const_values[id(v)]) for v in tr._consts]
            with autodiff._grad_mode(True):
                outs = run_tensors(tr.graph, list(node.saved[:tr.n_inputs]) + consts)
            res = memo[id(node)] = [outs[tr.n_out + j] for j in tr.residuals[self.k]]
        return res[k - tr.n_inputs]


class Trace:
    """One cached path: its signature, guards, generated code and counters."""

    def __init__(self, name, signature, arg_names):
        self.name, self.signature, self.arg_names = name, signature, arg_names
        self.hits = 0
        self.guards = []
        self.guard_holds = []  # times each guard held in runs where a later guard failed
        self.joint = {}
        self.bwd = {}
        self.bwd_seed = {}
        self.bwd_sources = {}

    def __repr__(self):
        lines = [f"<Trace {self.name}({', '.join(self._describe_inputs())}) runs={self.hits}"]
        lines += ["  " + g for g in self.describe_guards()]
        return "\n".join(lines) + ">"

    def _describe_inputs(self):
        out = []
        for name, v in zip(self.arg_names, self.in_vars):
            out.append(f"{name}: {v.dtype}{list(v.shape)}")
        return out

    def describe_guards(self):
        """Guards in user terms, consecutive checks of one line grouped (a loop's test)."""
        out, i, gs = [], 0, self.guards
        while i < len(gs):
            j = i
            while j + 1 < len(gs) and gs[j + 1].src == gs[i].src:
                j += 1
            decisions = [g.expected for g in gs[i:j + 1]]
            held = self.hits + min(self.guard_holds[i:j + 1])
            if j > i and all(d is True for d in decisions[:-1]) and decisions[-1] is False:
                what = f"True {j - i} times, then False (looped {j - i} times)"
            else:
                what = ", ".join(map(repr, decisions))
            out.append(f"guard {gs[i].describe()}: {what}; held {held} times")
            i = j + 1
        return out


class GuardFailed(Exception):
    """A trace does not apply: args (guard index or -1/-2, the value the program computed there)."""

    def __init__(self, index, value=None):
        super().__init__(index, value)


MAX_REDECISIONS = 16  # NOTE [decisions]: traces of one call whose guards the program decided otherwise


class CompiledFunction:
    """A function compiled per control-flow path; see `tg.compile`."""

    def __init__(self, fn, backend="numpy", cache_size=16, device=None):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.backend = get_backend(backend)
        self.device = device
        self.cache_size = cache_size
        self._shared = _shared(fn, self.backend, device, cache_size)
        self._traces = self._shared.traces  # signature -> [Trace], newest first
        self._lock = self._shared.lock
        self._name, self._positional, self._varargs = self._shared.meta or _signature_meta(self._shared, fn)
        self.hits = self.misses = self.retraces = 0  # this wrapper's calls; the traces are the code's

    @property
    def __transgrad_fn__(self):
        return self.fn

    @property
    def retrace_log(self):
        """Why each retrace of this function's code happened, in the user's terms."""
        return self._shared.retrace_log

    # ---- public surface ----
    def __call__(self, *args, **kwargs):
        return self._call(args, kwargs, None)

    @property
    def traces(self):
        """Cached traces, each showing its guards."""
        with self._lock:
            return [t for ts in self._traces.values() for t in ts]

    def cache_info(self):
        with self._lock:
            return CacheInfo(self.hits, self.misses, self.retraces, self._size())

    def _size(self):
        """Traces that this function could run: those of its code whose baked-in objects are
        this closure's (`cache_size` bounds them; other closures of the code have their own)."""
        return sum(1 for ts in self._traces.values() for tr in ts if self._env_holds(tr))

    def _env_holds(self, tr):
        fn = self.fn
        for path, _, kind, seen in tr.env:
            v = _resolved(fn, path)
            if v is not seen if kind == "is" else not _same(v, seen):
                return False
        return True

    def code(self, *args, **kwargs):
        """Source of the generated forward and backward code for these inputs."""
        tr = self._trace_for(args, kwargs, None)
        if tr.fn is None:
            self._forward(tr)
        parts = [tr.source] + [tr.bwd_sources[k] for k in sorted(tr.bwd_sources)]
        return "\n\n".join(parts)

    # ---- calling ----
    def _leaves(self, args, kwargs, argnums):
        """The call's dynamic leaves (name, data, requires_grad, tensor, position) and its
        signature. `argnums` counts the call's positional arguments, as in JAX; keyword
        arguments are never differentiated."""
        leaves, key = [], []
        names, n = self._positional, len(self._positional)
        for pos, a in enumerate(args):
            diff = argnums is not None and pos in argnums
            name = names[pos] if pos < n else f"{self._varargs}_{pos - n}"
            ta = type(a)
            if (ta is np.ndarray or ta in _JAX_ARRAYS) and (not diff or a.dtype.kind == "f"):
                leaves.append((name, a, diff, None, pos))
                key.append(("array", a.shape, a.dtype, diff))
            elif ta is T.Tensor and (not diff or a._data.dtype.kind == "f"):
                rg = a._rg or diff
                leaves.append((name, a.array if a._base is not None else a._data, rg, a, pos))
                key.append((a._data.shape, a._data.dtype, rg))
            else:
                _flatten(a, name, diff, leaves, key, pos)
        for k, v in kwargs.items():
            key.append(("keyword", k))
            _flatten(v, k, False, leaves, key, None)
        if argnums and max(argnums) >= len(args):
            raise TypeError(f"grad: argnums={argnums} counts positional arguments, but {self.__name__} was called "
                            f"with {len(args)}")
        return args, kwargs, leaves, tuple(key)

    def _call(self, args, kwargs, argnums, value=True):
        """Forward results (argnums None), else (value?, *grads) as arrays or tensors."""
        if mode.tracer is not None:  # inside another trace: run the Python, the outer tracer records it
            return self._eager(args, kwargs, argnums, value)
        args, kwargs, leaves, key = self._leaves(args, kwargs, argnums)
        traces = self._traces.get(key)
        failures = []
        if traces:
            datas = [leaf[1] for leaf in leaves]
            for tr in list(traces):
                try:
                    result = self._run(tr, datas, leaves, argnums, value)
                except GuardFailed as e:
                    failures.append((tr, e.args[0]))
                    continue
                self.hits += 1
                return result
        return self._miss(args, kwargs, leaves, key, argnums, failures, value)

    def _run(self, tr, datas, leaves, argnums, value=True):
        captured = self._sources(tr)
        arrays = datas + [t.array for t in captured]
        if argnums is not None:
            fn = self._joint(tr, argnums, value)
            try:
                out = fn(*arrays)
            except self.backend.GuardFailed as e:
                self._guard_failed(tr, e.index)
                raise GuardFailed(e.index, e.value) from None
            tr.hits += 1
            return autodiff.owned(out, arrays)
        try:
            out = (tr.fn or self._forward_paused(tr))(*arrays)
        except self.backend.GuardFailed as e:
            self._guard_failed(tr, e.index)
            raise GuardFailed(e.index, e.value) from None
        tr.hits += 1
        return self._wrap(tr, autodiff.owned(out[:tr.n_out], arrays) + list(out[tr.n_out:]), leaves, captured)

    def _sources(self, tr):
        """Check what the trace baked in from outside its arguments, and read the tensors it
        reads from there, as they are now (NOTE [sources])."""
        if tr.env and not self._env_holds(tr):
            raise GuardFailed(-2)
        return [c.get(self.fn) for c in tr.captured]

    def _guard_failed(self, tr, index):
        for i in range(index):
            tr.guard_holds[i] += 1

    def _wrap(self, tr, out, leaves, captured):
        outs = [T._new(a) for a in out[:tr.n_out]]
        residuals = out[tr.n_out:]
        if tr.bwd and mode.grad_enabled:
            inputs = tuple(leaf[3] if leaf[3] is not None else T._new(leaf[1]) for leaf in leaves) + tuple(captured)
            src = user_src()
            for k, res_idx in tr.residuals.items():
                saved = inputs + tuple(T._new(residuals[j]) for j in res_idx)
                t = outs[k]
                t.grad_fn = Node(tr.ops[k], saved, {}, t._data, src)
                t._rg = True
        return _unflatten_out(tr.out_tree, iter(outs))

    def _miss(self, args, kwargs, leaves, key, argnums, failures, value=True):
        datas = [leaf[1] for leaf in leaves]
        with self._lock:
            if self._size() >= self.cache_size:
                self._warn_full()
                return self._eager(args, kwargs, argnums, value)
            decisions = {}
            while True:
                with gc_paused():
                    tr = self._build(args, kwargs, leaves, key, argnums, decisions)
                try:
                    result = self._run(tr, datas, leaves, argnums, value)
                    break
                except GuardFailed as e:  # NOTE [decisions]: the program computed another decision
                    index, got = e.args
                    if index < 0 or index in decisions or len(decisions) >= MAX_REDECISIONS:
                        g = tr.guards[index] if index >= 0 else None
                        raise TraceError(
                            f"{self.__name__}: the function took a different path on a second run with the same "
                            "inputs" + (f" ({g.describe()} decided {g.expected!r} when traced, {got!r} when its "
                                        "generated code ran)" if g else "") + "; transgrad needs it to be "
                            "deterministic") from None
                    decisions[index] = (not tr.guards[index].expected) if got is None else got
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
        out = _eager_value_and_grad(self.fn, args, kwargs, argnums)
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

    def _explain(self, failures, new):
        old, index = max(failures, key=lambda f: f[1])
        if index == -2:
            changed = [text for path, text, kind, seen in old.env
                       if (_resolved(self.fn, path) is not seen if kind == "is" else not _same(_resolved(self.fn, path), seen))]
            msg = (f"{self.__name__}: {', '.join(f'`{c}`' for c in changed)} changed since it was traced (a Python "
                   "value or object the trace baked in; pass values that change as arguments)")
        elif index < 0:
            why = [c.why(self.fn) for c in old.captured]
            msg = f"{self.__name__}: " + "; ".join(w for w in why if w)
        else:
            g = old.guards[index]
            self._shared.changing[(f"line {g.src.line}" if g.src else g.how, g.src and g.src.text)] += 1
            new_g = new.guards[index] if index < len(new.guards) else None  # the prefix before it is the same
            got = new_g.expected if new_g is not None and new_g.src == g.src else "another value"
            if g.src is not None and g.src.text.startswith("while") and isinstance(g.expected, bool):
                count_old = sum(1 for x in old.guards if x.src == g.src and x.expected is True)
                count_new = sum(1 for x in new.guards if x.src == g.src and x.expected is True)
                msg = f"{g.describe()}: the cached trace looped {count_old} times, this input loops {count_new} times"
            else:
                nth = sum(1 for x in old.guards[:index + 1] if x.src == g.src)
                many = sum(1 for x in old.guards if x.src == g.src) > 1
                which = f" (its decision number {nth} in the call)" if many else ""
                msg = f"{g.describe()}{which}: the cached trace took {g.expected!r}, this input takes {got!r}"
        self.retrace_log.append(msg)

    def _trace_for(self, args, kwargs, argnums, value=True):
        args, kwargs, leaves, key = self._leaves(args, kwargs, argnums)
        for tr in self._traces.get(key, ()):
            try:
                self._run(tr, [leaf[1] for leaf in leaves], leaves, argnums, value)
                return tr
            except GuardFailed:
                continue
        self._miss(args, kwargs, leaves, key, argnums, [], value)
        if key not in self._traces:
            raise RuntimeError(f"{self.__name__}: the trace cache is full (cache_size={self.cache_size}); "
                               "these inputs run eagerly and have no generated code")
        return self._traces[key][0]

    # ---- tracing ----
    def _build(self, args, kwargs, leaves, key, argnums, decisions=None):
        if getattr(self.backend, "x64_enabled", None) is not None and not self.backend.x64_enabled():
            for leaf in leaves:
                if np.dtype(leaf[1].dtype) == np.float64:
                    raise TypeError(
                        f"{self.__name__}: argument `{leaf[0]}` is float64, but JAX runs float64 as float32 unless "
                        "jax_enable_x64 is on: call jax.config.update('jax_enable_x64', True) first, or pass float32")
        tracer = ForwardTracer(decisions)
        traced = [tracer.arg(leaf[1], leaf[2], leaf[0]) for leaf in leaves]
        it = iter(traced)
        args = tuple(_rebuild(a, it, argnums is not None and i in argnums) for i, a in enumerate(args))
        kwargs = {k: _rebuild(v, it, False) for k, v in kwargs.items()}
        with tracing(tracer, grad=True):
            try:
                result = self.fn(*args, **kwargs)
            except TraceError:
                raise
            except Exception as e:
                raise _user_error(e, self.__name__) from None
        outs = []
        tree = _flatten_out(result, outs)
        out_vars = [tracer.var(t) for t in outs]
        name_from_source(tracer.eqns)
        tr = Trace(self._name, key, [leaf[0] for leaf in leaves])
        tr.leaf_args = [leaf[4] for leaf in leaves]
        tr.in_vars = [tracer.vars[id(t)] for t in traced]
        tr.captured, tr.env = _sources(self.fn, tracer.captured, self.__name__)
        tr.out_tree, tr.n_out = tree, len(outs)
        tr.guards = tracer.guards
        tr.guard_holds = [0] * len(tracer.guards)
        inputs = traced + [t for _, t in tracer.captured]
        tr.diff_inputs = [i for i, t in enumerate(inputs) if t._rg]
        fwd_eqns = tracer.eqns
        # one backward graph per output that depends on a differentiable input
        tr.residuals, tr.ops, bwd_raw = {}, {}, {}
        targets = [_edge(inputs[i]) for i in tr.diff_inputs]
        for k, t in enumerate(outs):
            if t._rg and t.dtype.kind == "f" and targets:
                bwd_raw[k] = _backward_graph(tracer, t, targets, f"{self._name}_backward")
        tr.const_values = {id(v): a for v, a in tracer.consts}
        tr._fwd_eqns, tr._out_vars = fwd_eqns, out_vars
        tr._fwd_inputs = tr.in_vars + [v for v, _ in tracer.captured]
        tr.n_inputs = len(tr._fwd_inputs)
        tr._consts = [v for v, _ in tracer.consts]
        tr._bwd_raw = bwd_raw
        tr.fn = None  # the forward program is generated on its first use (tg.grad needs only the joint one)
        return tr

    def _forward_paused(self, tr):
        with gc_paused():
            return self._forward(tr)

    def _forward(self, tr):
        """The forward program of a trace: its outputs, then the residuals that each output's
        backward graph reads (NOTE: only what the backward needs is saved)."""
        position = {}  # id(Var) -> its place among the residuals the forward returns
        for k, g in tr._bwd_raw.items():
            seed = g.inputs[-1]
            g = optimize(g)
            tr.bwd[k], tr.bwd_seed[k] = g, seed
            tr.ops[k] = _TraceOp(tr, k)
            tr.residuals[k] = [position.setdefault(id(v), len(position)) for v in g.inputs if v is not seed]
        residual_vars = [None] * len(position)
        for g in tr.bwd.values():
            for v in g.inputs:
                if id(v) in position:
                    residual_vars[position[id(v)]] = v
        fwd = Graph(tuple(tr._fwd_inputs + tr._consts), tuple(tr._fwd_eqns), tuple(tr._out_vars + residual_vars),
                    name=self._name)
        tr.graph = _keep_inputs(optimize(fwd), fwd.inputs)
        fn, tr.source = self._load(tr.graph, self._name + "_forward", tr._consts, tr.const_values)
        for k, g in tr.bwd.items():
            tr.bwd_sources[k] = emit(g, f"{self._name}_backward" + (f"_{k}" if k else ""), templates=self.backend.TEMPLATES)
        tr.fn = fn
        return fn

    def _load(self, graph, name, consts, values):
        if self.device is not None:
            fn, source = self.backend.build(graph, name, consts, values, device=self.device)
        else:
            fn, source = self.backend.build(graph, name, consts, values)
        show_code(source)
        return fn, source

    def _joint(self, tr, argnums, value=True):
        """The forward and the backward as one generated function returning ([value], *grads)."""
        fn = tr.joint.get((argnums, value))
        if fn is not None:
            return fn[0]
        with gc_paused():
            graph = self._joint_graph(tr, argnums, value=value)
            name = f"{self._name}_value_and_grad" if value else f"{self._name}_grad"
            fn, source = self._load(graph, name, tr._consts, tr.const_values)
        tr.joint[(argnums, value)] = (fn, source, graph)
        return fn

    def _joint_graph(self, tr, argnums, seed_input=False, value=True):
        """Forward + backward; the output's cotangent is 1, or the last input with `seed_input`.
        The gradients come in the order of `argnums`, each argument's leaves in order."""
        if tr.n_out != 1 or tr.out_tree != ("T",):
            raise TypeError(f"grad: {self.__name__} must return a single scalar tensor")
        out = tr._out_vars[0]
        if not seed_input and (int(np.prod(out.shape)) != 1 or out.dtype.kind != "f"):
            raise TypeError(f"grad: {self.__name__} must return a scalar float tensor, got {out.dtype}{list(out.shape)}")
        positions = [i for p in argnums for i, a in enumerate(tr.leaf_args) if a == p]
        missing = [tr.arg_names[i] for i in positions if i not in tr.diff_inputs]
        if missing:  # a trace made without these as inputs to differentiate: never answer zeros for them
            raise TypeError(f"grad: the trace of {self.__name__} does not differentiate {', '.join(missing)}")
        bwd = tr._bwd_raw.get(0)
        seed = bwd.inputs[-1] if bwd is not None else None
        eqns = list(tr._fwd_eqns)
        grads = []
        if seed_input and seed is None:
            seed = Var(out.shape, out.dtype, "g_" + out.hint)
        if bwd is not None:
            if not seed_input:
                eqns.append(Eqn("full", (), (("shape", seed.shape), ("value", 1.0), ("dtype", seed.dtype)), seed))
            eqns += bwd.eqns
        for p in positions:
            j = tr.diff_inputs.index(p)
            g = bwd.outputs[j] if bwd is not None else None
            if g is None:  # the value does not depend on this argument: its gradient is zero
                v = tr.in_vars[p]
                g = Var(v.shape, v.dtype, "g_" + v.hint)
                eqns.append(Eqn("full", (), (("shape", v.shape), ("value", 0.0), ("dtype", v.dtype)), g))
            grads.append(g)
        inputs = tuple(tr._fwd_inputs + tr._consts) + ((seed,) if seed_input else ())
        graph = Graph(inputs, tuple(eqns), (out, *grads) if value else tuple(grads), name=self._name)
        return _keep_inputs(optimize(graph), graph.inputs)

    def _forward_graph(self, tr):
        """The forward alone (no residuals), as export writes it."""
        graph = Graph(tuple(tr._fwd_inputs + tr._consts), tuple(tr._fwd_eqns), tuple(tr._out_vars), name=self._name)
        return _keep_inputs(optimize(graph), graph.inputs)


# ---- what a trace reads besides its arguments (NOTE [sources]) ------------------------------------
class _Shared:
    """The traces of one Python function, shared by every wrapper of every closure of its code
    (a `tg.value_and_grad(loss)` made anew inside a training loop finds the traces of the last)."""

    def __init__(self):
        self.traces = {}
        self.lock = threading.RLock()
        self.retrace_log = []
        self.changing = Counter()  # source of the guard behind each retrace
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


def _shared(fn, backend, device, cache_size):
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:  # another kind of callable: a cache of its own
        return _Shared()
    with _SHARED_LOCK:
        per_code = _SHARED.setdefault(code, {})
        return per_code.setdefault((backend.__name__, device, cache_size), _Shared())


def _signature_meta(shared, fn):
    """(name in generated code, positional parameter names, the *args name)."""
    sig = inspect.signature(fn)
    positional = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = next((p.name for p in sig.parameters.values() if p.kind == p.VAR_POSITIONAL), "arg")
    shared.meta = (_identifier(getattr(fn, "__name__", "f")), positional, varargs)
    return shared.meta


class Capture:
    """A tensor the traced function read from outside its arguments: an input of the trace
    that every call reads again, by the paths that lead to it from the function (or, when
    no path was found, as the same tensor object)."""

    __slots__ = ("var", "paths", "shape", "dtype", "rg", "ref")

    def __init__(self, var, paths, t):
        self.var, self.paths = var, paths
        self.shape, self.dtype, self.rg = t.shape, t.dtype, t._rg
        self.ref = None if paths else weakref.ref(t)

    def get(self, fn):
        t = self._find(fn)
        if type(t) is not T.Tensor or t.shape != self.shape or t.dtype != self.dtype or t._rg != self.rg:
            raise GuardFailed(-1)  # this trace no longer applies: retrace
        return t

    def _find(self, fn):
        if not self.paths:
            return self.ref()
        try:
            t = sources.resolve(fn, self.paths[0][0])
            for path, _ in self.paths[1:]:  # two names for one tensor: both must still name it
                if sources.resolve(fn, path) is not t:
                    return None
        except sources.Missing:
            return None
        return t

    def why(self, fn):
        """Why `get` fails, in the user's terms (None if it does not)."""
        name = f"`{self.paths[0][1]}`" if self.paths else f"a captured tensor of shape {self.shape}"
        t = self._find(fn)
        if t is None:
            return f"{name} is gone, or its names no longer lead to one tensor"
        if type(t) is not T.Tensor:
            return f"{name} is no longer a tensor ({type(t).__name__})"
        if t.shape != self.shape or t.dtype != self.dtype:
            return f"{name} changed from {self.dtype}{list(self.shape)} to {t.dtype}{list(t.shape)}"
        if t._rg != self.rg:
            return f"{name} changed requires_grad to {t._rg}"
        return None


def _sources(fn, captured, name):
    """The Captures of a trace and its guards on plain Python values (NOTE [sources])."""
    found, values = sources.search(fn, {id(t): t for _, t in captured}, lambda o: isinstance(o, T.Tensor))
    caps = [Capture(v, found[id(t)], t) for v, t in captured]
    lost = [c for c in caps if not c.paths]
    if lost:
        warnings.warn(f"transgrad.compile: {name} reads {len(lost)} tensor(s) (shapes "
                      f"{', '.join(str(list(c.shape)) for c in lost)}) that are not reachable from its closure, "
                      "globals, defaults or the objects they hold; each call reads the same tensor object again "
                      "(in-place updates are seen) but not a new tensor bound in its place: pass it as an argument",
                      RuntimeWarning, stacklevel=5)
    return caps, values


_GONE = object()


def _resolved(fn, path):
    try:
        return sources.resolve(fn, path)
    except sources.Missing:
        return _GONE


def _same(a, b):
    """Equal as the trace used it: same type and value (NaN equal to NaN), elementwise."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)


def _identifier(name):
    from .codegen.names import _base

    return _base(name.strip("<>"))


def _keep_inputs(graph, inputs):
    """Generated functions keep every input as a parameter, used or not, so that calls
    can pass arguments positionally."""
    return graph.replace(inputs=tuple(inputs))


def _backward_graph(tracer, out, targets, name):
    """The VJP of traced output `out` with respect to `targets` (autograd edges), as a
    Graph over forward Vars (its residuals) and a seed (its last input)."""
    root = _edge(out)
    stop = {id(t) for t in targets}
    order, index, _ = _walk([root], stop)
    names = []
    for n in order:
        v = tracer.node_out.get(id(n)) if type(n) is Node else tracer.vars.get(id(getattr(n, "variable", None)))
        names.append(v.hint if v is not None else "v")
    target_idx = tuple(index.get(id(t), -1) for t in targets)
    seed = np.ones(out.shape, out.dtype)
    raw, plan, readers = vjp_graph(order, index, (index[id(root)],), [seed], target_idx, names,
                                   const_name=lambda a: tracer.var(a).hint, stop_at_targets=True, inline_hooks=True)
    check_saved(order, saved_checks(dce(raw), readers))  # an in-place write inside the function, after a save
    sub, residuals, seed_var = {}, {}, None
    for v in raw.inputs:
        b = plan[id(v)]
        if b[0] == "seed":
            seed_var = v
            continue
        i, k = b
        n = order[i]
        if k < 0:
            fv = tracer.node_out[id(n)] if type(n) is Node else tracer.vars[id(n.variable)]
        else:
            fv = tracer.var(n.saved[k])
        sub[id(v)] = fv
        residuals.setdefault(id(fv), fv)
    eqns = tuple(e._replace(ins=tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in e.ins)) for e in raw.eqns)
    outputs = tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in raw.outputs)
    return Graph(tuple(residuals.values()) + (seed_var,), eqns, outputs, name=name)


def _eager_value_and_grad(fn, args, kwargs, argnums):
    """(value, *grads) by running `fn` eagerly: the gradients flat, as a joint program gives them."""
    args, diff = list(args), []

    def leaf(a):
        if isinstance(a, T.Tensor):
            x = a if a._rg else a.detach().requires_grad_()
        else:
            x = T.tensor(a).requires_grad_()
        diff.append(x)
        return x

    for p in argnums:
        args[p] = _rebuild(args[p], (leaf(a) for a in _tree_leaves(args[p])), True)
    with autodiff._grad_mode(True):
        value = fn(*args, **kwargs)
        if not isinstance(value, T.Tensor) or value.numel() != 1:
            raise TypeError(f"grad: {getattr(fn, '__name__', 'f')} must return a scalar tensor")
        grads = autodiff.grad(value, diff, create_graph=mode.tracer is not None, allow_unused=True)
    grads = tuple(T.zeros_like(x) if g is None else g for x, g in zip(diff, grads))
    return (value, *grads)


def _tree_leaves(value):
    """The leaves `_rebuild(value, it, diff=True)` replaces, in its order."""
    if isinstance(value, (T.Tensor, np.ndarray)) or type(value) is float or T.is_jax_array(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _tree_leaves(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _tree_leaves(v)]
    return []


def _user_error(e, name):
    """Re-raise an error from the user's function with a note naming its source line, and
    with transgrad's own frames dropped from the traceback."""
    from ._state import PKG_DIR

    tb, frames = e.__traceback__, []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(PKG_DIR):
            frames.append(tb)
        tb = tb.tb_next
    if frames:
        last = frames[-1]
        import linecache

        line = linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno).strip()
        e.add_note(f"(while transgrad traced {name}: {last.tb_frame.f_code.co_filename}:{last.tb_lineno} `{line}`)")
        for a, b in zip(frames, frames[1:]):
            a.tb_next = b
        frames[-1].tb_next = None
        return e.with_traceback(frames[0])
    return e


# ---- the public entry points -------------------------------------------------------------------
def compile(fn=None, *, backend="numpy", cache_size=16, device=None):
    """Compile `fn` per control-flow path into generated Python (NumPy) or XLA (JAX) code.

    The first call with a new signature (shapes, dtypes, requires_grad flags, values of
    non-tensor arguments) traces `fn`; Python decisions on tensor values become guards
    that later calls re-check. Results support `.backward()`. With `backend="jax"` each
    trace is one `jax.jit` program (`device=` places it) whose guards are checked on the
    host after the call.

    >>> import transgrad as tg
    >>> @tg.compile
    ... def double_until_big(x):
    ...     y = x * 2
    ...     while y.data.norm() < 1000:
    ...         y = y * 2
    ...     return y
    >>> x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = double_until_big(x)
    >>> y.backward(tg.ones(3)); x.grad
    tensor([512., 512., 512.])
    >>> double_until_big.cache_info()
    CacheInfo(hits=0, misses=1, retraces=0, size=1)
    """
    if fn is None:
        return functools.partial(compile, backend=backend, cache_size=cache_size, device=device)
    if isinstance(fn, CompiledFunction):
        return fn
    return CompiledFunction(fn, backend=backend, cache_size=cache_size, device=device)


class _GradFunction:
    def __init__(self, f, argnums, backend, with_value):
        self._f = f if isinstance(f, CompiledFunction) and backend is None else compile(
            getattr(f, "fn", f), backend=backend or "numpy")
        self.argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        self._single = isinstance(argnums, int)
        self._with_value = with_value
        self._joint_key = (self.argnums, with_value)
        functools.update_wrapper(self, self._f.fn)

    def __call__(self, *args, **kwargs):
        f, out = self._f, None
        if mode.tracer is None and not kwargs:  # fast path: the newest trace of this signature fits
            _, _, leaves, key = f._leaves(args, kwargs, self.argnums)
            traces = f._traces.get(key)
            if traces:
                tr = traces[0]
                joint = tr.joint.get(self._joint_key)
                if joint is not None:
                    try:
                        inputs = [leaf[1] for leaf in leaves] + [t.array for t in f._sources(tr)]
                        out = autodiff.owned(joint[0](*inputs), inputs)
                        tr.hits += 1
                        f.hits += 1
                    except (f.backend.GuardFailed, GuardFailed):
                        out = None  # the general path below retries, records and retraces
        if out is None:
            out = f._call(args, kwargs, self.argnums, self._with_value)
        out = [x if type(x) is T.Tensor else T._new(x) for x in out]
        value, grads = (out[0], out[1:]) if self._with_value else (None, out)
        it = iter(grads)  # each argument's gradient has the argument's structure (a list, a dict...)
        grads = [_rebuild(args[p], it, True) for p in self.argnums]
        grads = grads[0] if self._single else tuple(grads)
        return (value, grads) if self._with_value else grads

    def code(self, *args, **kwargs):
        tr = self._f._trace_for(args, kwargs, self.argnums, self._with_value)
        self._f._joint(tr, self.argnums, self._with_value)
        return tr.joint[(self.argnums, self._with_value)][1]

    @property
    def traces(self):
        return self._f.traces

    def cache_info(self):
        return self._f.cache_info()


def grad(f, argnums=0, *, backend=None):
    """The gradient of scalar-valued `f` with respect to argument(s) `argnums`, computed by
    one generated program per control-flow path (forward and backward together).

    >>> import transgrad as tg
    >>> df = tg.grad(lambda x: (x * x).sum())
    >>> df(tg.tensor([1.0, 2.0]))
    tensor([2., 4.])
    >>> tg.grad(lambda x: tg.grad(lambda y: (y ** 3).sum())(x).sum())(tg.tensor([2.0]))
    tensor([12.])
    """
    return _GradFunction(f, argnums, backend, with_value=False)


def value_and_grad(f, argnums=0, *, backend=None):
    """`(f(*args), grad(f, argnums)(*args))` from one generated program.

    >>> import transgrad as tg
    >>> tg.value_and_grad(lambda x, w: (x @ w).sum(), argnums=(0, 1))(tg.ones(2), tg.ones(2))
    (tensor(2.), (tensor([1., 1.]), tensor([1., 1.])))
    """
    return _GradFunction(f, argnums, backend, with_value=True)

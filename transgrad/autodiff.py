"""Reverse mode: the recorded graph of a run becomes generated backward code.

`backward()` walks the nodes reachable from the outputs, looks the graph's structure up
in a cache, and on a miss replays the VJP rules on tracing tensors (NOTE [rules trace]):
that records the backward as IR, which passes optimise and codegen prints and loads.
The generated function then runs on the saved arrays. A training loop whose graph keeps
its structure generates code once.
"""
from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict

import numpy as np

from . import tensor as T
from ._state import gc_paused, mode, show_code
from .backends import numpy as np_backend
from .ir import Eqn, Graph, Src, Var
from .ops import OPS
from .passes import optimize
from .trace import Tracer, assigned_name, tracing

_seq = itertools.count()


class Node:
    """A recorded operation: the grad_fn of the tensor it produced."""

    __slots__ = ("op", "saved", "params", "out_data", "src", "next", "seq", "_retained", "_hooks", "__weakref__")

    def __init__(self, op, args, params, out, src):
        self.op = op
        self.saved = args
        self.params = params
        self.out_data = out
        self.src = src
        edges = []
        for a in args:  # _edge inlined for the common case: this runs once per recorded op
            if isinstance(a, T.Tensor) and a._rg:
                edges.append(a.grad_fn if a.grad_fn is not None else _edge(a))
            else:
                edges.append(None)
        self.next = tuple(edges)
        self.seq = next(_seq)
        self._retained = None

    def name(self):
        return self.op.grad_fn_name

    @property
    def next_functions(self):
        return tuple((e, 0) for e in self.next)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The node that adds a cotangent into a leaf tensor's `.grad`."""

    __slots__ = ("variable", "seq", "__weakref__")
    next = ()
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable
        self.seq = -1

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def _edge(a):
    if not isinstance(a, T.Tensor) or not a._rg:
        return None
    if a.grad_fn is not None:
        return a.grad_fn
    acc = a._accum and a._accum()
    if acc is None:
        acc = AccumulateGrad(a)
        a._accum = weakref.ref(acc)
    return acc


# ---- the graph reachable from the roots ---------------------------------------------------------
def _walk(roots, stop=()):
    """Nodes reachable from `roots`, producers before consumers, with the graph's cache key.

    The key holds every node's op, params, source line and output shape, and its edges as
    positions in the order; constant inputs are numbered by identity so that sharing is
    part of the key. The walk is iterative: deep graphs must not hit the recursion limit.
    Nodes whose id is in `stop` are not expanded (their inputs lie outside the graph).
    """
    order, index, parts, consts = [], {}, [], {}
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        n, done = stack.pop()
        if done:
            index[id(n)] = len(order)
            order.append(n)
            parts.append(_part(n, index, consts) if id(n) not in stop else None)
        elif id(n) not in index:
            index[id(n)] = None  # visiting
            stack.append((n, True))
            if id(n) in stop:
                continue
            for e in n.next:
                if e is not None and id(e) not in index:
                    stack.append((e, False))
    return order, index, tuple(parts)


def _hooks_of(n):
    return getattr(n.variable if type(n) is AccumulateGrad else n, "_hooks", None)


def _part(n, index, consts):
    if type(n) is AccumulateGrad:
        v = n.variable
        hooks = getattr(v, "_hooks", None)
        return (v.shape, v.dtype, len(hooks)) if hooks else (v.shape, v.dtype)
    if n.saved is None:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (through {n.name()}); the saved "
            "values were freed by the first backward. Pass retain_graph=True to the first backward.")
    ins = []
    for e, a in zip(n.next, n.saved):
        if type(e) is Node:  # does it save the producer's result itself (or a snapshot of an older value)?
            ins.append((index[id(e)], a._data is e.out_data))
        elif e is not None:
            ins.append(index[id(e)])
        elif type(a) is T.Tensor:
            ins.append(("c", consts.setdefault(id(a), len(consts)), a.shape, a.dtype))
        else:
            ins.append((type(a), a))
    out = n.out_data
    hooks = getattr(n, "_hooks", None)
    src = None if getattr(n.op, "opaque", False) else n.src  # a compiled call's code is the same from any line
    if hooks:
        return n.op, tuple(n.params.items()), src, out.shape, tuple(ins), len(hooks)
    return n.op, tuple(n.params.items()), src, out.shape, tuple(ins)


def _line(src):
    import linecache

    return linecache.getline(*src).strip()


def _modified_error(n, vc):
    def where(src):
        return f"{src[0]}:{src[1]} `{_line(src)}`" if src else "an unknown line"

    raise RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"{n.name()} saved it at {where(n.src)}, and {vc.op} modified it afterwards at {where(vc.src)} "
        f"(its version is now {vc.count}). Use an out-of-place operation, or clone() before modifying.")


class Compiled:
    """A generated backward: the function, how to bind its arguments, its source, and its
    graph before (`raw`) and after the passes."""

    __slots__ = ("fn", "plan", "source", "graph", "raw", "raw_plan", "anomalies", "checks")

    def __init__(self, fn, plan, source, graph, raw, raw_plan, anomalies=None, checks=()):
        self.fn, self.plan, self.source, self.graph = fn, plan, source, graph
        self.raw, self.raw_plan, self.anomalies, self.checks = raw, raw_plan, anomalies, checks


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 512
stats = {"hits": 0, "misses": 0}


# ---- names -----------------------------------------------------------------------------------
def _forward_names(order):
    consumers = {}
    for n in order:
        for e in n.next:
            if e is not None:
                consumers.setdefault(id(e), []).append(n)
    names = []
    for n in order:
        if type(n) is AccumulateGrad:
            names.append(_leaf_name(n.variable, "x"))
            continue
        a = None if getattr(n.op, "opaque", False) else assigned_name(n.src)
        name = n.op.name
        if a is not None:
            inner = [c for c in consumers.get(id(n), ()) if c.src == n.src and 0 < c.seq - n.seq < a[1]]
            if not inner:
                name = a[0]
        names.append(name)
    return names


CONSTRUCTORS = {"Variable", "tensor", "Tensor", "FloatTensor", "DoubleTensor", "ones", "zeros", "full", "eye",
                "arange", "randn", "rand", "from_numpy", "ones_like", "zeros_like", "requires_grad_"}


def _leaf_name(t, default):
    """The variable a user tensor was assigned to, when its line is `name = constructor(...)`."""
    a = assigned_name(t._src)
    return a[0] if a and a[2] in CONSTRUCTORS else default


# ---- building the backward graph --------------------------------------------------------------
def vjp_graph(order, index, root_idx, seeds, target_idx, names, const_name=None, stop_at_targets=False,
              inline_hooks=False, anomalies=None):
    """Replay the VJP rules of `order` in reverse on tracing tensors (NOTE [rules trace]).

    Returns the backward Graph and its `plan`: for each input Var, where its value comes
    from: ("seed", j), or (i, k) for input k of node order[i], or (i, -1) for its output,
    or ("hook", i, j) for hook j of node i. `names[i]` names node i's value; its
    cotangent is called `g_<name>`. Hooks (NOTE [hooks]) become calls in the generated
    code, or with `inline_hooks` are traced into it (a compiled program: pure hooks only).
    With a list `anomalies`, every cotangent a rule makes is checked for NaN/inf by a
    guard whose index points to the message appended there (anomaly mode).
    """
    const_name = const_name or (lambda a: _leaf_name(a, "c"))
    target_set = set(target_idx)
    tr = Tracer()
    plan, phs, readers = {}, {}, {}

    def ph(key, data, hint, bind, reader=None):
        t = phs.get(key)
        if t is None:
            if type(data) is _Overwritten:
                data = data.dummy()
            t = phs[key] = tr.placeholder(data, hint)
            plan[id(tr.vars[id(t)])] = bind
        if reader is not None:
            readers.setdefault(id(tr.vars[id(t)]), []).append(reader)
        return t

    cots = {}
    with tracing(tr):
        for j, (i, s) in enumerate(zip(root_idx, seeds)):
            cots.setdefault(i, []).append(ph(("seed", j), s, "g_" + names[i], ("seed", j)))
        outputs = {}
        for i in range(len(order) - 1, -1, -1):
            gs = cots.pop(i, None)
            if gs is None:
                continue
            n = order[i]
            src = n.src if type(n) is not AccumulateGrad else n.variable._src
            tr.src = None if getattr(getattr(n, "op", None), "opaque", False) else src and Src(*src, grad=True)
            g = gs[0]
            for x in gs[1:]:
                g = g + x
            for j, fn in enumerate(_hooks_of(n) or ()):
                if inline_hooks:
                    r = fn(g)
                    g = g if r is None else _checked_hook_result(r, g, fn)
                else:
                    new = T._new(g._data)
                    tr.record(OPS["hook"], (g, ph(("hook", i, j), fn, "hook", ("hook", i, j))), {}, new)
                    g = new
            tr.vars[id(g)].hint = "g_" + names[i]
            if i in target_set:
                outputs[i] = g
                if stop_at_targets:
                    continue
            if type(n) is AccumulateGrad:
                continue
            args = []
            saved_name = getattr(n.op, "saved_name", None)  # a compiled call names what it saved
            for k, (e, a) in enumerate(zip(n.next, n.saved)):
                if not isinstance(a, T.Tensor):
                    args.append(a)
                elif type(e) is Node and a._data is e.out_data:  # the producer's result, one value for all readers
                    j = index[id(e)]
                    args.append(ph(("out", j), a._data, names[j], (j, -1), (i, k)))
                else:
                    hint = names[index[id(e)]] if e is not None else saved_name(k) if saved_name else const_name(a)
                    args.append(ph(("in", id(a)), a._data, hint, (i, k), (i, k)))
            out = ph(("out", i), n.out_data, names[i], (i, -1), (i, -1)) if getattr(n.op, "uses_out", True) else None
            grads = n.op.vjp(g, out, *args, **n.params)
            if anomalies is not None:
                _check_finite(tr, n, grads, anomalies)
            for e, gi, a in zip(n.next, grads, n.saved):
                if e is None or gi is None:
                    continue
                if gi.shape != a.shape:
                    raise AssertionError(f"VJP of {n.op.name} gave a cotangent of shape {gi.shape} for an input of shape {a.shape}")
                cots.setdefault(index[id(e)], []).append(gi)
    out_vars = tuple(tr.vars[id(outputs[i])] if i in outputs else None for i in target_idx)
    for i, v in zip(target_idx, out_vars):
        if v is not None and v not in tr.inputs:
            v.hint = "g_" + names[i]
    raw = Graph(tuple(tr.inputs), tuple(tr.eqns), out_vars, name=names[root_idx[0]] + "_backward")
    return raw, plan, readers


def saved_checks(graph, readers):
    """The (node, saved slot) pairs whose values `graph` reads (slot -1: the node's result)."""
    return tuple(dict.fromkeys(r for v in graph.inputs for r in readers.get(id(v), ())))


def check_saved(order, checks):
    """Raise if a value the backward reads was modified in place after it was saved (NOTE [versions])."""
    for i, k in checks:
        n = order[i]
        if k < 0:
            if type(n.out_data) is _Overwritten:
                _modified_error(n, n.out_data.vc)
        else:
            vc = n.saved[k]._vc
            if vc is not None and vc.clock > n.seq:
                _modified_error(n, vc)


def _check_finite(tr, n, grads, anomalies):
    import linecache

    where = f" (its forward was {n.src[0]}:{n.src[1]} `{linecache.getline(*n.src).strip()}`)" if n.src else ""
    for k, gi in enumerate(grads):
        if isinstance(gi, T.Tensor) and gi.dtype.kind == "f":
            ok = T.apply(OPS["all_finite"], gi)
            anomalies.append(f"Function '{n.name()}' returned nan or inf values in its {k}th output{where}")
            index = len(anomalies) - 1
            tr.eqns.append(Eqn("guard", (tr.vars[id(ok)],), (("expected", True), ("index", index)),
                               Var((), np.dtype(bool), "ok"), tr.src))


def _checked_hook_result(r, g, fn):
    if not isinstance(r, T.Tensor) or r.shape != g.shape:
        raise RuntimeError(f"hook {getattr(fn, '__name__', fn)!r} must return None or a tensor of shape {g.shape}, "
                           f"got {r.shape if isinstance(r, T.Tensor) else type(r).__name__}")
    return r if r.dtype == g.dtype else r.astype(g.dtype)


def _build(order, index, root_idx, seeds, target_idx, backend=None):
    anomalies = [] if mode.anomaly else None
    raw, plan, readers = vjp_graph(order, index, root_idx, seeds, target_idx, _forward_names(order),
                                   inline_hooks=backend is not None, anomalies=anomalies)
    graph = optimize(raw)
    if backend is None:
        fn, source = np_backend.build(graph, graph.name, as_tuple=False)
    else:  # saved values live on a JAX device: the backward is a jitted program of its own
        fn, source = backend.build(graph, graph.name)
        fn = _unpack_single(fn, len(graph.outputs))
    show_code(source)
    return Compiled(fn, tuple(plan[id(v)] for v in graph.inputs), source, graph, raw,
                    tuple(plan[id(v)] for v in raw.inputs), anomalies, saved_checks(graph, readers))


def _compiled(roots, seeds, targets):
    """(order, Compiled) for the graph reachable from root edges, cached by structure."""
    order, index, parts = _walk(roots)
    if targets is None:  # backward(): every leaf, and every non-leaf that retains its grad
        targets = [n for n in order if type(n) is AccumulateGrad or n._retained is not None]
    root_idx = tuple(index[id(r)] for r in roots)
    target_idx = tuple(index.get(id(t), -1) for t in targets)  # -1: not reached, no gradient
    backend = _backend_of(order, seeds)
    key = (parts, root_idx, target_idx, tuple((s.shape, s.dtype) for s in seeds), backend, mode.anomaly)
    if backend is not None:  # hooks are traced into a jitted backward: their identity is part of the key
        key += (tuple(tuple(_hooks_of(n) or ()) for n in order),)
    uncacheable = any(getattr(n.op, "custom", False) for n in order if type(n) is Node)
    c = None if uncacheable else _cache.get(key)
    if c is None:
        stats["misses"] += 1
        with gc_paused():
            c = _build(order, index, root_idx, seeds, target_idx, backend)
        if not uncacheable:
            with _cache_lock:
                _cache[key] = c
                if len(_cache) > CACHE_SIZE:
                    _cache.popitem(last=False)
    else:
        stats["hits"] += 1
    return order, c, targets


def _run(roots, seeds, targets, retain_graph, create_graph):
    """Cotangents of `targets` (edges) given `seeds` at `roots` (edges)."""
    seed_arrays = [s._data for s in seeds]
    order, c, targets = _compiled(roots, seed_arrays, targets)
    check_saved(order, c.checks)
    if create_graph or mode.tracer is not None:  # a tracer must see the backward's operations
        from .interp import run_tensors

        memo = {}
        args = [seeds[b[1]] if b[0] == "seed" else _hooks_of(order[b[1]])[b[2]] if b[0] == "hook" else
                _saved_tensor(order[b[0]], b[1], memo) for b in c.plan]
        with _grad_mode(True):
            try:
                grads = run_tensors(c.graph, args)
            except np_backend.GuardFailed as e:
                raise RuntimeError(c.anomalies[e.index]) from None
    else:
        args = [seed_arrays[b[1]] if b[0] == "seed" else _hooks_of(order[b[1]])[b[2]] if b[0] == "hook" else
                (order[b[0]].out_data if b[1] < 0 else order[b[0]].saved[b[1]]._data) for b in c.plan]
        try:
            out = c.fn(*args)
        except np_backend.GuardFailed as e:  # only anomaly mode puts checks into backward code
            raise RuntimeError(c.anomalies[e.index]) from None
        grads = [None if a is None else T._new(a) for a in owned(out if len(c.graph.outputs) > 1 else (out,), args)]
    if not retain_graph:
        for n in order:
            if type(n) is Node:
                n.saved = n.out_data = None
    return targets, grads


def owned(arrays, inputs):
    """Arrays that the generated code returned, each made an array of its own where it is
    not: a read-only broadcast, a view, one of the function's inputs, or returned twice. A
    gradient is an owned, writable tensor, as in PyTorch (`x.grad.zero_()` must not zero
    another tensor's gradient or the caller's seed)."""
    taken = {id(a) for a in inputs}
    out = []
    for a in arrays:
        if type(a) is np.ndarray and (not a.flags.writeable or a.base is not None or id(a) in taken):
            a = a.copy()
        taken.add(id(a))
        out.append(a)
    return out


def _saved_tensor(node, k, memo):
    """A saved value as a tensor whose history reaches the inputs (create_graph=True)."""
    if k < 0:
        return T._new(node.out_data, requires_grad=True, grad_fn=node)
    differentiable = getattr(node.op, "differentiable_saved", None)  # a compiled call's residuals
    t = differentiable(node, k, memo) if differentiable is not None else None
    return node.saved[k] if t is None else t


def _backend_of(order, seeds):
    """The JAX backend when the values live in JAX arrays, else None (NumPy)."""
    last = order[-1] if order else None
    for s in list(seeds) + [getattr(last, "out_data", None)]:
        if T.is_jax_array(s):
            from .backends import jax

            return jax
    return None


def _unpack_single(fn, n):
    return (lambda *a: fn(*a)[0]) if n == 1 else fn


class _grad_mode:
    def __init__(self, on):
        self.on = on

    def __enter__(self):
        self.prev, mode.grad_enabled = mode.grad_enabled, self.on

    def __exit__(self, *exc):
        mode.grad_enabled = self.prev


def _roots_and_seeds(tensors, grad_tensors, where):
    roots, seeds = [], []
    grad_tensors = grad_tensors or [None] * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"{where}: got {len(tensors)} outputs but {len(grad_tensors)} gradients")
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not isinstance(t, T.Tensor):
            raise TypeError(f"{where}: expected a Tensor, got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got shape {t.shape})")
            g = T._new(np.ones(t.shape, t.dtype))
            if mode.tracer is not None:
                mode.tracer.constant(g)
        elif not isinstance(g, T.Tensor):
            g = T.tensor(T._to_array(g, t.dtype))
        if g.shape != t.shape:
            if g.numel() == t.numel() == 1:  # the tutorial's out.backward(tg.Tensor([1.0]))
                g = g.reshape(t.shape)
            else:
                raise RuntimeError(f"{where}: mismatch in shape: gradient has shape {g.shape} and output has shape {t.shape}")
        if g.dtype != t.dtype:
            g = g.astype(t.dtype)
        roots.append(_edge(t))
        seeds.append(g)
    return roots, seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of `tensors` into the `.grad` of the leaves they depend on."""
    if mode.tracer is not None and hasattr(mode.tracer, "guards"):
        raise RuntimeError(
            "backward() inside a compiled function: `.grad` updates would not reach your tensors. "
            "Use tg.grad / tg.value_and_grad, or tg.autograd.grad inside the function")
    roots, seeds = _roots_and_seeds(tensors, grad_tensors, "backward")
    targets = None if inputs is None else [_edge(t) for t in inputs]
    targets, grads = _run(roots, seeds, targets, create_graph if retain_graph is None else retain_graph, create_graph)
    for t, g in zip(targets, grads):
        if g is None:
            continue
        dest = t.variable if type(t) is AccumulateGrad else t._retained
        if dest is None:
            continue
        if g.dtype != dest.dtype:
            g = g.astype(dest.dtype)
        if dest.grad is None:
            dest.grad = g if create_graph else _detached(g)
        else:
            dest.grad = dest.grad + g if create_graph else _accumulated(dest.grad, g)


def _detached(g):
    if g.grad_fn is None:
        return g
    out = T._new(g._data)
    if mode.tracer is not None:
        mode.tracer.alias(out, g)
    return out


def _accumulated(old, g):
    """`.grad += g`, in place where the memory allows (as PyTorch), else a new value."""
    a = old._data
    if type(a) is np.ndarray and a.flags.writeable and a.shape == g.shape:
        np.add(a, g._data, out=a, casting="unsafe")
    else:
        old._data = a + g._data  # JAX, or a 0-d NumPy scalar
    version_cell(old).count += 1  # aliases of the gradient (`w.grad.data`) see the new value
    return old


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None):
    """Gradients of `outputs` with respect to `inputs`, returned (not accumulated in .grad).

    >>> import transgrad as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> (gx,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    >>> gx                       # 3 x^2
    tensor([ 3., 12.], grad_fn=<MulBackward0>)
    >>> tg.autograd.grad(gx.sum(), x)[0]   # 6 x
    tensor([ 6., 12.])
    """
    outputs = [outputs] if isinstance(outputs, T.Tensor) else list(outputs)
    single = isinstance(inputs, T.Tensor)
    inputs = [inputs] if single else list(inputs)
    if isinstance(grad_outputs, T.Tensor):
        grad_outputs = [grad_outputs]
    roots, seeds = _roots_and_seeds(outputs, grad_outputs, "grad")
    for i, t in enumerate(inputs):
        if not isinstance(t, T.Tensor) or not t._rg:
            raise RuntimeError(f"grad: input {i} does not require grad")
    targets = [_edge(t) for t in inputs]
    _, grads = _run(roots, seeds, targets, create_graph if retain_graph is None else retain_graph, create_graph)
    for i, g in enumerate(grads):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} was not used in the graph; pass allow_unused=True to get None for it")
    return tuple(g if create_graph or g is None else _detached(g) for g in grads)


def backward_code(out, gradient=None):
    """Source of the generated backward function that `out.backward(gradient)` runs.

    >>> import transgrad as tg
    >>> x = tg.ones(3, requires_grad=True)
    >>> print(tg.backward_code((x * x).sum()))  # doctest: +ELLIPSIS
    def ..._backward(g_..., x):
    ...
    """
    roots, seeds = _roots_and_seeds([out], None if gradient is None else [gradient], "backward_code")
    return _compiled(roots, [s._data for s in seeds], None)[1].source


class VersionCell:
    """Shared by a tensor and its aliases (`.data`, `.detach()`, views): how often their
    storage was modified in place, and when and where last (NOTE [versions])."""

    __slots__ = ("count", "clock", "op", "src")

    def __init__(self):
        self.count, self.clock, self.op, self.src = 0, -1, None, None


class _Overwritten:
    """Stands for a node's output that an in-place operation overwrote."""

    __slots__ = ("shape", "dtype", "vc")

    def __init__(self, data, vc):
        self.shape, self.dtype, self.vc = np.shape(data), data.dtype, vc

    def dummy(self):
        """Zeros in its place, for tracing rules: a backward that reads it raises first."""
        return np.zeros(self.shape, self.dtype)


def version_cell(t):
    vc = t._vc
    if vc is None:
        vc = t._vc = VersionCell()
    return vc


# NOTE [versions]: a node saves tensors by reference. An in-place write stamps the
# storage's VersionCell with the global sequence number and marks the node whose result
# was overwritten (`_Overwritten`). The generated backward knows which saved values it
# reads (`Compiled.checks`); before it runs, each of those is checked: a value modified
# after the node that reads it was recorded is an error that names both source lines,
# raised exactly when the backward would have read a changed value (as PyTorch's saved
# variable versions), never for a value it does not read (`y[0] += 1`, `z = y.exp(); y.add_(1)`).
def inplace(t, name, compute):
    """Apply `compute(t)` (out-of-place) and write the result into `t`'s storage, as
    PyTorch's `t.op_()`: t's version is bumped and, with grad recording on, t takes the
    new node as its grad_fn. A write through a view is a write into its base (NOTE [views])."""
    tracer = mode.tracer
    src = T.user_src()
    _check_inplace(t, name, src, tracer)
    if t._base is not None and t._vc.count != t._base[4]:
        T._refresh(t)
    out = compute(t)
    if out.shape != t.shape:
        if np.broadcast_shapes(out.shape, t.shape) != t.shape:
            raise T.OpError(f"{name}{_at(src)}: the result has shape {out.shape}, which does not fit in the "
                            f"tensor's shape {t.shape}")
        out = out.expand(*t.shape)
    if out.dtype != t.dtype:
        if not np.can_cast(out.dtype, t.dtype, "same_kind"):
            raise RuntimeError(f"{name}{_at(src)}: result type {out.dtype} can't be cast to the desired output "
                               f"type {t.dtype}")
        out = out.astype(t.dtype)
    node = out.grad_fn if mode.grad_enabled else None
    writes = tracer is None and type(t._data) is np.ndarray and t._data.flags.writeable
    if node is not None:  # the new node may read t's old values: keep them (a copy if memory is overwritten)
        old = T._new(t._data.copy() if writes else t._data)
        if tracer is not None:
            tracer.alias(old, t)
        node.saved = tuple(old if a is t else a for a in node.saved)
    base = t._base
    if base is not None and base[1] is not None and (
            tracer is not None or not writes or (mode.grad_enabled and (out._rg or _root(t)._rg))):
        # a write through a view: the base takes the new values and records how (NOTE [views])
        b, op, arrays, params, _ = base
        inplace(b, name, lambda bt: _written_back(bt, op, arrays, params, out))
        T._refresh(t)
        return t
    vc = version_cell(t)
    vc.count += 1
    vc.clock, vc.op, vc.src = next(_seq), name, src
    _mark_overwritten(t, vc)
    _store(t, out)
    if node is not None:
        t.grad_fn, t._rg = node, True
        node.out_data = t._data
    if base is not None:
        t._base = base[:4] + (vc.count,)
    return t


def _at(src):
    return f" at {src[0]}:{src[1]} `{_line(src)}`" if src else ""


def _root(t):
    while t._base is not None:
        t = t._base[0]
    return t


def _check_inplace(t, name, src, tracer):
    """Refuse, before anything changes, the in-place writes PyTorch refuses (and writes that
    could not reach the caller's tensor from inside a compiled function)."""
    v, alias = t, False
    while v._base is not None:
        op = v._base[1]
        if op is not None and op.name == "expand":
            raise RuntimeError(f"{name}{_at(src)}: this tensor is an expanded view (expand() or broadcasting made "
                               "several of its elements share one memory location); clone() it before writing in place")
        alias = alias or op is None  # `.data` / `.detach()`: writes through it are outside autograd
        v = v._base[0]
    if mode.grad_enabled and v._rg and v.grad_fn is None and not alias:
        what = "a leaf Variable" if v is t else "a view of a leaf Variable"
        raise RuntimeError(f"{name}{_at(src)}: {what} that requires grad is being used in an in-place operation "
                           "(wrap it in `with tg.no_grad():` to update it as data)")
    if tracer is not None and hasattr(tracer, "guards") and id(v) in tracer.vars and tracer.vars[id(v)] in (
            list(tracer.inputs) + [c[0] for c in tracer.captured]):
        raise RuntimeError(f"{name}{_at(src)}: modifying an input of a compiled function in place would not reach "
                           "the caller's tensor; use the out-of-place form")


def _written_back(b, op, arrays, params, v):
    """The base `b` with its view (`op[params]`) replaced by the values of `v`: how an
    in-place write through a view changes the base, as differentiable operations."""
    if op.name == "getitem":
        return T.apply(OPS["setitem"], b, v, *arrays, index=params["index"])
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
        with _grad_mode(False):
            _store(b, out if op is None else _written_back(b, op, arrays, params, out))
    new = out._data
    # outside a trace, t owns its NumPy memory: later writes into it must not reach `out`'s
    t._data = np.array(new) if mode.tracer is None and type(new) is np.ndarray else new
    if mode.tracer is not None:
        mode.tracer.alias(t, out)


def _mark_overwritten(t, vc):
    """The nodes whose results lived in the storage being written (t's, its bases') can no
    longer give them to a backward that reads them (NOTE [versions])."""
    while t is not None:
        n = t.grad_fn
        if type(n) is Node and type(n.out_data) is not _Overwritten:
            n.out_data = _Overwritten(n.out_data, vc)
        t = t._base[0] if t._base is not None else None


class RemovableHandle:
    """What `register_hook` returns: `.remove()` unregisters the hook."""

    def __init__(self, hooks, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


# NOTE [hooks]: a hook lives on the node whose output it watches (a leaf's on the tensor).
# The structure key counts hooks, and the generated NumPy backward calls each hook through
# `run_hook(hook, g)` with the hook passed in as an argument, so a training loop that
# registers a new lambda every step still reuses its code, and every call runs the hook.
def register_hook(t, fn):
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    owner = t.grad_fn if t.grad_fn is not None else t
    hooks = getattr(owner, "_hooks", None)
    if hooks is None:
        hooks = owner._hooks = []
    hooks.append(fn)
    return RemovableHandle(hooks, fn)

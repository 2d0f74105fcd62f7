"""Generated backwards: built once per graph structure, cached, run; and the PyTorch-style
entry points `backward()` and `grad()` that use them."""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .._state import gc_paused, mode, show_code, using
from ..backends import numpy as numpy_backend
from ..backends.helpers import GuardFailed
from ..interp import run as interpret
from ..passes import optimize
from ..tensor import Tensor, apply, is_jax_array, new, tensor, to_array
from ..tensor.records import AccumulateGrad, Node, edge, version_cell
from .graph import value_names, walk
from .replay import backward_graph, check_saved, checked_hook_result, saved_checks


class Backward:
    """A generated backward: its function and source, the Source of each argument, the
    saved values it reads (checked before each run), and its graph before (`raw`) and after
    the passes."""

    __slots__ = ("fn", "sources", "source", "graph", "raw", "raw_sources", "anomalies", "checks")

    def __init__(self, fn, sources, source, graph, raw, raw_sources, anomalies, checks):
        self.fn, self.sources, self.source, self.graph = fn, sources, source, graph
        self.raw, self.raw_sources, self.anomalies, self.checks = raw, raw_sources, anomalies, checks

    def arguments(self, order, seeds, raw=False):
        """The arrays the generated function (or, with `raw`, its unoptimised graph) takes."""
        return [seeds[s.node] if s.kind == "seed" else _array_hook(order[s.node]._hooks[s.slot]) if s.kind == "hook"
                else order[s.node].out_data if s.kind == "result" else order[s.node].saved[s.slot]._data
                for s in (self.raw_sources if raw else self.sources)]


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 512
stats = {"hits": 0, "misses": 0}


def _build(order, index, root_idx, seeds, target_idx, backend):
    anomalies = [] if mode.anomaly else None
    raw, sources, readers = backward_graph(order, index, root_idx, seeds, target_idx, value_names(order),
                                           inline_hooks=backend is not numpy_backend, anomalies=anomalies)
    graph = optimize(raw)
    if any(e.op == "call" and e.kw["fn"].name == graph.name for e in graph.eqns):
        graph = graph.replace(name="backward")  # a compiled call's backward is the callee's name
    if backend is numpy_backend:
        fn, source = backend.build(graph, graph.name, as_tuple=False)
    else:  # saved values live on a JAX device: the backward is a jitted program of its own
        fn, source = backend.build(graph, graph.name)
        if len(graph.outputs) == 1:
            fn = (lambda f: lambda *a: f(*a)[0])(fn)
    show_code(source)
    # what the eager rules of a compiled call's backward would read (NOTE [watched])
    watched = tuple(s._replace(node=i) for i, n in enumerate(order) for s in getattr(getattr(n, "op", None), "watched", ()))
    return Backward(fn, tuple(sources[id(v)] for v in graph.inputs), source, graph, raw,
                    tuple(sources[id(v)] for v in raw.inputs), anomalies, saved_checks(graph, readers) + watched)


def compiled_backward(roots, seeds, targets):
    """(order, Backward, targets) for the graph reachable from root edges, cached by structure."""
    order, index, parts = walk(roots)
    if targets is None:  # backward(): every leaf, and every non-leaf that retains its grad
        targets = [n for n in order if type(n) is AccumulateGrad or n.retained is not None]
    root_idx = tuple(index[id(r)] for r in roots)
    target_idx = tuple(index.get(id(t), -1) for t in targets)  # -1: not reached, no gradient
    backend = _backend_of(order, seeds)
    key = (parts, root_idx, target_idx, tuple((s.shape, s.dtype) for s in seeds), backend.name, mode.anomaly)
    if backend is not numpy_backend:  # hooks are traced into a jitted backward: their identity is part of the key
        key += (tuple(tuple(n._hooks or ()) for n in order),)
    uncacheable = any(getattr(n.op, "custom", False) for n in order if isinstance(n, Node))
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


def prepare(outputs, grad_outputs, inputs):
    """(order, Backward, seed arrays) of the gradients of `outputs` with respect to `inputs`:
    what `grad()` would run, for tests and tools that run it themselves."""
    roots, seeds = _roots_and_seeds(outputs, grad_outputs, "prepare")
    seed_arrays = [s._data for s in seeds]
    order, c, _ = compiled_backward(roots, seed_arrays, [edge(t) for t in inputs])
    return order, c, seed_arrays


# NOTE [shown is run]: the backward of a compiled call is the trace's own generated backward
# function, the one `f.code()` prints and `tg.export` writes. A rule (TraceOp.vjp) that
# `call`s it records one `call` equation, printed `g_x = tutorial_backward(g_out, y)` with
# the function bound as a global of the engine's generated code, so the engine's code for
# the eager operations around a compiled call calls it by name (on JAX the engine's code is
# then not jitted again). A backward that is itself differentiated runs the callee's graph
# on tensors instead (interp), so that its operations are recorded.
def call(callee, *args):
    """Run generated function `callee` on tensors `args`; the results are tensors. A tracer
    watching records the call instead, with zeros for its results (what a rule computes
    from them is recorded, never decided by their values): the call runs once, in the
    code that is generated."""
    if mode.tracer is not None:
        outs = [new(np.zeros(v.shape, v.dtype)) for v in callee.graph.outputs]
        mode.tracer.record_call(callee, args, outs)
        return outs
    results = callee.fn(*[a._data if isinstance(a, Tensor) else a for a in args])
    return [new(r) for r in (results if len(callee.graph.outputs) > 1 else (results,))]


def run_tensors(graph, args):
    """Evaluate `graph` on tensors, recording autograd nodes (and, for a tracer watching,
    each equation with its own source line)."""
    def call(op, ins, kw, src):
        tracer = mode.tracer
        if tracer is None or src is None:
            return apply(op, *ins, **kw)
        prev, tracer.src = tracer.src, src
        try:
            return apply(op, *ins, **kw)
        finally:
            tracer.src = prev

    return interpret(graph, args, call)


def _run(roots, seeds, targets, retain_graph, create_graph):
    """Cotangents of `targets` (edges) given `seeds` at `roots` (edges)."""
    seed_arrays = [s._data for s in seeds]
    order, c, targets = compiled_backward(roots, seed_arrays, targets)
    check_saved(order, c.checks)
    if create_graph or mode.tracer is not None:  # a tracer must see the backward's operations
        memo = {}
        args = [seeds[s.node] if s.kind == "seed" else order[s.node]._hooks[s.slot] if s.kind == "hook" else
                _saved_tensor(order[s.node], s, memo) for s in c.sources]
        with using(grad_enabled=True):
            try:
                grads = run_tensors(c.graph, args)
            except GuardFailed as e:
                raise RuntimeError(c.anomalies[e.index]) from None
    else:
        args = c.arguments(order, seed_arrays)
        try:
            out = c.fn(*args)
        except GuardFailed as e:  # only anomaly mode puts checks into backward code
            raise RuntimeError(c.anomalies[e.index]) from None
        grads = [None if a is None else new(a) for a in owned(out if len(c.graph.outputs) > 1 else (out,), args)]
    if not retain_graph:
        for n in order:
            if isinstance(n, Node):
                n.saved = n.out_data = None
    return targets, grads


def _array_hook(fn):
    """A tensor hook as generated NumPy code calls it: on arrays (NOTE [hooks])."""
    def hook(g):
        t = new(g)
        r = fn(t)  # None: t as the hook left it (`g.mul_(2)` gives t new memory where g is read-only)
        return t._data if r is None else np.asarray(checked_hook_result(getattr(r, "array", r), g.shape, g.dtype, fn))

    return hook


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


def _saved_tensor(node, s, memo):
    """A saved value as a tensor whose history reaches the inputs (create_graph=True)."""
    if s.kind == "result":
        return new(node.out_data, requires_grad=True, grad_fn=node)
    differentiable = getattr(node.op, "differentiable_saved", None)  # a compiled call's residuals
    t = differentiable(node, s.slot, memo) if differentiable is not None else None
    return node.saved[s.slot] if t is None else t


def _backend_of(order, seeds):
    """The JAX backend when the values live in JAX arrays, else NumPy's."""
    last = order[-1] if order else None
    for s in list(seeds) + [getattr(last, "out_data", None)]:
        if is_jax_array(s):
            from ..backends import jax

            return jax
    return numpy_backend


def _ones(shape, dtype):
    return np.array(1, dtype) if shape == () else np.ones(shape, dtype)  # np.ones costs 1.5 us, np.array 0.2


def _roots_and_seeds(tensors, grad_tensors, where):
    roots, seeds = [], []
    grad_tensors = grad_tensors or [None] * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"{where}: got {len(tensors)} outputs but {len(grad_tensors)} gradients")
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}: expected a Tensor, got {type(t).__name__}")
        if not t._requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got shape {t.shape})")
            g = new(_ones(t.shape, t.dtype))
            if mode.tracer is not None:
                mode.tracer.constant(g)
        elif not isinstance(g, Tensor):
            g = tensor(to_array(g, t.dtype))
        if g.shape != t.shape:
            if g.numel() == t.numel() == 1:  # the tutorial's out.backward(tg.Tensor([1.0]))
                g = g.reshape(t.shape)
            else:
                raise RuntimeError(f"{where}: mismatch in shape: gradient has shape {g.shape} and output has shape "
                                   f"{t.shape}")
        if g.dtype != t.dtype:
            g = g.astype(t.dtype)
        roots.append(edge(t))
        seeds.append(g)
    return roots, seeds


# NOTE [one call]: `loss = f(x, w); loss.backward()` with `f` compiled is a graph of one
# node, the call, whose inputs are leaves. Its backward is the trace's generated backward,
# called as it is on the seed and the saved residuals (TraceOp.arrays_vjp): no walk, no
# structural key, no engine code around it. A graph with anything more (a hook, a retained
# gradient, an input that is not a leaf, a leaf passed twice), anomaly mode, create_graph,
# `inputs=` or a tracer watching takes the general path, which computes the same numbers.
def _one_call(t, gradient, retain_graph):
    """Run `t.backward(gradient)` by NOTE [one call]; False where it does not apply."""
    n = t.grad_fn
    run = getattr(getattr(n, "op", None), "arrays_vjp", None)
    if run is None or n._hooks or n.retained is not None or n.saved is None:
        return False
    leaves = [e for e in n.edges if e is not None]
    if any(type(e) is not AccumulateGrad or e.variable._hooks for e in leaves) or len(set(map(id, leaves))) < len(leaves):
        return False
    if gradient is None:
        shape = t._data.shape
        if shape != () and t.numel() != 1:
            return False  # the general path says why
        seed = _ones(shape, t.dtype)
    else:
        seed = _roots_and_seeds([t], gradient, "backward")[1][0]._data
    grads = run(n, seed)
    if not retain_graph:
        n.saved = n.out_data = None
    for e, g in zip(n.edges, grads):
        if e is not None and g is not None:
            _deposit(e.variable, new(g), False)
    return True


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate gradients of `tensors` (a tensor or a sequence of them) into the `.grad` of
    the leaves they depend on (of `inputs` alone, where given).

    >>> import transgrad as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> tg.autograd.backward((x * x).sum())
    >>> x.grad
    tensor([2., 4.])
    """
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    if (len(tensors) == 1 and inputs is None and not create_graph and mode.tracer is None and not mode.anomaly
            and type(tensors[0]) is Tensor and _one_call(tensors[0], grad_tensors, retain_graph)):
        return
    roots, seeds = _roots_and_seeds(tensors, grad_tensors, "backward")
    targets = None if inputs is None else [edge(t) for t in inputs]
    targets, grads = _run(roots, seeds, targets, create_graph if retain_graph is None else retain_graph, create_graph)
    tracer = mode.tracer if mode.tracer is not None and mode.tracer.compiling else None
    for k, (t, g) in enumerate(zip(targets, grads)):
        if g is None:
            continue
        # `inputs=` names the tensors that take a .grad: a non-leaf among them too, as in PyTorch
        dest = inputs[k] if inputs is not None else t.variable if type(t) is AccumulateGrad else t.retained
        if dest is None:
            continue
        if tracer is not None:  # inside a compiled function: .grad is the tracer's (NOTE [effects])
            tracer.add_grad(dest, g if g.dtype == dest.dtype else g.astype(dest.dtype), create_graph)
        else:
            _deposit(dest, g, create_graph)


def _deposit(dest, g, create_graph):
    """`dest.grad = g`, or `dest.grad += g` where it has one."""
    if g.dtype != dest.dtype:
        g = g.astype(dest.dtype)
    if dest._grad is None:
        dest._grad = g if create_graph else _detached(g)
    else:
        dest._grad = dest._grad + g if create_graph else _accumulated(dest._grad, g)


def _detached(g):
    if g.grad_fn is None:
        return g
    out = new(g._data)
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


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None) -> tuple:
    """Gradients of `outputs` with respect to `inputs`, returned (not accumulated in .grad).

    >>> import transgrad as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> (gx,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    >>> gx                       # 3 x^2
    tensor([ 3., 12.], grad_fn=<MulBackward0>)
    >>> tg.autograd.grad(gx.sum(), x)[0]   # 6 x
    tensor([ 6., 12.])
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    roots, seeds = _roots_and_seeds(outputs, grad_outputs, "grad")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    targets = [edge(t) for t in inputs]
    _, grads = _run(roots, seeds, targets, create_graph if retain_graph is None else retain_graph, create_graph)
    for i, g in enumerate(grads):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} was not used in the graph; pass allow_unused=True to get None for it")
    return tuple(g if create_graph or g is None else _detached(g) for g in grads)


def backward_code(out: Tensor, gradient=None) -> str:
    """Source of the generated backward function that `out.backward(gradient)` runs.

    >>> import transgrad as tg
    >>> x = tg.ones(3, requires_grad=True)
    >>> print(tg.backward_code((x * x).sum()))  # doctest: +ELLIPSIS
    def ..._backward(g_..., x):
    ...
    """
    roots, seeds = _roots_and_seeds([out], None if gradient is None else [gradient], "backward_code")
    return compiled_backward(roots, [s._data for s in seeds], None)[1].source

"""What autograd records about a run: a node per operation, version counters of storage,
hooks. The engine (transgrad.engine) reads them at `backward()`."""
from __future__ import annotations

import functools
import itertools
import weakref

import numpy as np

sequence = itertools.count()  # one clock for nodes and in-place writes (NOTE [versions])


class Node:
    """A recorded operation: the grad_fn of the tensor it produced. `saved` are its inputs
    (tensors, by reference), `edges` the nodes their gradients flow to."""

    __slots__ = ("op", "saved", "params", "out_data", "src", "edges", "seq", "retained", "_hooks", "__weakref__")

    def __init__(self, op, saved, params, out, src, edges):
        self.op = op
        self.saved = saved
        self.params = params
        self.out_data = out
        self.src = src
        self.edges = edges
        self.seq = next(sequence)
        self.retained = None  # the non-leaf tensor whose gradient retain_grad() keeps
        self._hooks = None

    def name(self):
        return type(self).__name__ if type(self) is not Node else self.op.grad_fn_name

    @property
    def next_functions(self):
        return tuple((e, 0) for e in self.edges)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


_NODE_TYPES = {}


def node_type(name):
    """The Node subclass named as PyTorch names the grad_fn (`AddBackward0`), made once."""
    cls = _NODE_TYPES.get(name)
    if cls is None:
        cls = _NODE_TYPES[name] = type(name, (Node,), {"__slots__": (), "__module__": "transgrad.autograd.graph"})
    return cls


def named(grad_fn):
    """Decorates a composition of rows: the grad_fn of its result is called as PyTorch calls
    the one operation it is there (`var()` gives VarBackward0, not its last row's DivBackward0)."""
    def wrap(fn):
        @functools.wraps(fn)
        def composed(*args, **kwargs):
            since = next(sequence)
            return renamed(fn(*args, **kwargs), grad_fn, since)
        return composed
    return wrap


def renamed(out, grad_fn, since):
    """`out` (a tensor, or a tuple of them) with the grad_fn made after `since` called `grad_fn`."""
    for t in (out if isinstance(out, tuple) else (out,)):
        n = getattr(t, "grad_fn", None)
        if isinstance(n, Node) and n.seq > since:
            n.__class__ = node_type(grad_fn)
    return out


class AccumulateGrad:
    """The node that adds a cotangent into a leaf tensor's `.grad`."""

    __slots__ = ("variable", "seq", "__weakref__")
    edges = ()
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable
        self.seq = -1

    @property
    def _hooks(self):
        return self.variable._hooks

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def edge(t):
    """The node a gradient for tensor `t` flows to: its grad_fn, or its leaf's AccumulateGrad
    (one per leaf while it lives), or None when `t` does not require grad."""
    if not getattr(t, "_requires_grad", False):
        return None
    fn = t.grad_fn
    if fn is not None:
        return fn
    acc = t._accumulator and t._accumulator()
    if acc is None:
        acc = AccumulateGrad(t)
        t._accumulator = weakref.ref(acc)
    return acc


# NOTE [versions]: a node saves tensors by reference. An in-place write stamps the
# storage's VersionCell with the global sequence number and marks the node whose result
# was overwritten (`Overwritten`). The generated backward knows which saved values it
# reads (engine: `Backward.checks`); before it runs, each of those is checked: a value
# modified after the node that reads it was recorded is an error that names both source
# lines, raised exactly when the backward would read a changed value (rules read what
# PyTorch's formulas save), never for a value it does not read (`y[0] += 1`).
class VersionCell:
    """Shared by a tensor and its aliases and views: how often their storage was modified
    in place, and when and where last."""

    __slots__ = ("count", "clock", "op", "src")

    def __init__(self):
        self.count, self.clock, self.op, self.src = 0, -1, None, None

    def stamp(self, op, src):
        self.count += 1
        self.clock, self.op, self.src = next(sequence), op, src


def version_cell(t):
    vc = t._version_cell
    if vc is None:
        vc = t._version_cell = VersionCell()
    return vc


class Overwritten:
    """Stands for a node's result that an in-place operation overwrote."""

    __slots__ = ("shape", "dtype", "vc")

    def __init__(self, data, vc):
        self.shape, self.dtype, self.vc = np.shape(data), data.dtype, vc

    def dummy(self):
        """Zeros in its place, for tracing rules: a backward that reads it raises first."""
        return np.zeros(self.shape, self.dtype)


def modified_error(n, vc):
    from linecache import getline

    def where(src):
        return f"{src[0]}:{src[1]} `{getline(*src).strip()}`" if src else "an unknown line"

    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"{n.name()} saved it at {where(n.src)}, and {vc.op} modified it afterwards at {where(vc.src)} "
        f"(its version is now {vc.count}). Use an out-of-place operation, or clone() before modifying.")


# NOTE [hooks]: a hook lives on the node whose output it watches (a leaf's on the tensor).
# The structure key counts hooks; the generated NumPy backward calls each hook, passed in
# as an argument, so a training loop that registers a new lambda every step still reuses
# its code, and every call runs the hook. JAX programs and compiled traces trace the hook
# into their code (a hook there must be a pure function of the gradient).
class RemovableHandle:
    """What `register_hook` returns: `.remove()` unregisters the hook."""

    def __init__(self, hooks, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


def register_hook(t, fn):
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    check_not_passed_by(t, "register_hook()")
    owner = t.grad_fn if t.grad_fn is not None else t
    if owner._hooks is None:
        owner._hooks = []
    owner._hooks.append(fn)
    return RemovableHandle(owner._hooks, fn)


def check_not_passed_by(t, what):
    """Raise for a hook or retained gradient on an output of a compiled call that another of its
    outputs is computed from: that output's backward goes straight to the call's inputs, so the
    hook would not see its gradient (a loss and the logits it came from, both returned)."""
    op = getattr(t.grad_fn, "op", None)
    tr = getattr(op, "trace", None)
    if tr is not None and op.k in tr.upstream:
        raise RuntimeError(f"{what} on output {op.k} of compiled {tr.name}, which another of its outputs is computed "
                           "from: that output's gradient does not pass through it. Compute that output outside "
                           "the compiled function, or call it uncompiled")

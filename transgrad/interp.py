"""Reference interpreter for Graphs: the oracle that generated code is tested against.

It evaluates equations one by one with each primitive's eager form and frees values at
the points `last_uses` gives (NOTE [liveness]), as generated code does. Given another
`call` (the engine passes the tensor front end's `apply`), the values are Tensors and the
run is itself recorded by autograd: that is how `create_graph=True` makes gradients
differentiable.
"""
import numpy as np

from .backends import numpy as numpy_backend
from .backends.helpers import guard
from .ir import Graph, Var
from .ops import OPS
from .passes import last_uses


class _Exit(Exception):
    """A while body's `exit` test was false (NOTE [loops])."""


def _eager(op, ins, kw, src):
    return numpy_backend.impl(op)(*ins, **kw)


def run(graph: Graph, args, call=_eager):
    """Evaluate `graph` on `args` with `call(row, inputs, params, src)` per equation: the
    NumPy eager forms of the primitives by default.

    >>> from transgrad.ir import Var, Eqn, Graph, Lit
    >>> x = Var((), "float32", "x"); y = Var((), "float32", "y")
    >>> run(Graph((x,), (Eqn("mul", (x, Lit(3.0)), (), y),), (y,)), [2.0])
    [6.0]
    """
    env = {id(v): a for v, a in zip(graph.inputs, args)}
    dels = last_uses(graph)
    for i, e in enumerate(graph.eqns):
        ins = [env[id(x)] if isinstance(x, Var) else x.value for x in e.ins]
        if e.op == "hook" and hasattr(ins[0], "_data"):  # NOTE [hooks]: on tensors, the hook sees them
            r = ins[1](ins[0])
            env[id(e.out)] = ins[0] if r is None else r
            continue
        if e.op == "call":  # NOTE [shown is run]: tensors run the callee's graph, so that it is recorded
            callee = e.kw["fn"]
            if hasattr(ins[0], "_data"):
                results = run(callee.graph, ins, call)
            else:
                results = callee.fn(*ins)
                results = results if len(callee.graph.outputs) > 1 else (results,)
            for o, r in zip(e.outs, results):
                env[id(o)] = r
        elif e.op == "while":  # NOTE [loops]
            for o, r in zip(e.outs, _while(e, ins, call)):
                env[id(o)] = r
        elif e.op == "for_reversed":
            for o, r in zip(e.outs, _for_reversed(e, ins, call)):
                env[id(o)] = r
        elif e.op == "detach":  # where the run's gradient stopped (compiled/program.py `_with_stops`)
            env[id(e.out)] = ins[0].detach() if hasattr(ins[0], "_data") else ins[0]
        elif e.op == "exit":
            if bool(ins[0]) == e.kw["stop"]:
                raise _Exit
        elif e.op == "guard":  # NOTE [guards]
            kw = e.kw
            v = ins[0]
            guard(v._data if hasattr(v, "_data") else v, kw["expected"], kw["index"])
            if hasattr(v, "_data"):
                bool(v) if isinstance(kw["expected"], bool) else v.item()  # re-record in an outer trace
        else:
            kw = e.kw
            kw.pop("into", None)  # buffer reuse is a NumPy codegen detail; the values are the same
            env[id(e.out)] = call(OPS[e.op], ins, kw, e.src)
        for v in dels.get(i, ()):
            del env[id(v)]
    return [env[id(x)] if isinstance(x, Var) else (None if x is None else x.value) for x in graph.outputs]


def _while(e, ins, call):
    body, k = e.kw["body"], e.kw["carried"]
    carried, invariants = list(ins[:k]), list(ins[k:])
    saved = [[] for _ in body.outputs[k:]]
    n, cap, every = 0, e.kw.get("capacity") or e.kw.get("limit"), e.kw.get("every") or 1
    while cap is None or n < cap:
        try:
            outs = run(body, carried + invariants, call)
        except _Exit:
            break
        carried = outs[:k]
        if n % every == 0:  # checkpoints: the state of every k-th iteration only
            for s, v in zip(saved, outs[k:]):
                s.append(v)
        n += 1
    stacks = [_stack(s, v, call) for s, v in zip(saved, e.outs[k + 1:])]
    return carried + [np.asarray(n, np.int64)] + stacks


def _stack(values, var, call):
    """The rows saved by a loop; a buffer of fixed capacity has zero rows after them."""
    rows = var.shape[0] - len(values) if var.shape[0] else 0
    if rows:
        values = values + [call(OPS["full"], [], {"shape": var.shape[1:], "value": 0, "dtype": var.dtype}, None)] * rows
    if not values:  # no iteration: an empty stack
        return call(OPS["full"], [], {"shape": var.shape, "value": 0, "dtype": var.dtype}, None)
    return call(OPS["stack"], values, {"axis": 0}, None)


def _for_reversed(e, ins, call):
    body, k, s = e.kw["body"], e.kw["carried"], e.kw["stacked"]
    n, carried, stacks, invariants = int(ins[0]), list(ins[1:1 + k]), ins[1 + k:1 + k + s], list(ins[1 + k + s:])
    every = e.kw.get("every")
    if every:  # segments of `every` iterations from the last: rows are their first states, then their length
        for start in reversed(range(0, n, every)):
            m = np.asarray(min(every, n - start), np.int32)
            carried = run(body, carried + [st[start // every] for st in stacks] + [m] + invariants, call)
        return carried
    for i in range(n - 1, -1, -1):
        carried = run(body, carried + [st[i] for st in stacks] + invariants, call)
    return carried

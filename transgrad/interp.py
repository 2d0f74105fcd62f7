"""Reference interpreter for Graphs: the oracle that generated code is tested against.

It evaluates equations one by one with each primitive's eager form and frees values at
the points `last_uses` gives (NOTE [liveness]), as generated code does. With
`run_tensors` the values are Tensors, so the run is itself recorded by autograd: that is
how `create_graph=True` makes gradients differentiable.
"""
from .backends.numpy import guard
from .ir import Graph, Var
from .ops import OPS
from .passes import last_uses


def _run(graph: Graph, args, call):
    env = {id(v): a for v, a in zip(graph.inputs, args)}
    dels = last_uses(graph)
    for i, e in enumerate(graph.eqns):
        ins = [env[id(x)] if isinstance(x, Var) else x.value for x in e.ins]
        if e.op == "hook" and hasattr(ins[0], "_data"):  # NOTE [hooks]: on tensors, the hook sees them
            r = ins[1](ins[0])
            env[id(e.out)] = ins[0] if r is None else r
            continue
        if e.op == "guard":  # NOTE [guards]
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


def run(graph: Graph, args):
    """Evaluate `graph` on arrays with the NumPy eager forms of its primitives.

    >>> from transgrad.ir import Var, Eqn, Graph, Lit
    >>> x = Var((), "float32", "x"); y = Var((), "float32", "y")
    >>> run(Graph((x,), (Eqn("mul", (x, Lit(3.0)), (), y),), (y,)), [2.0])
    [6.0]
    """
    return _run(graph, args, lambda op, ins, kw, src: op.impl(*ins, **kw))


def run_tensors(graph: Graph, args):
    """Evaluate `graph` on Tensors through `apply`, recording autograd nodes. A tracer that
    records the run keeps each equation's own source line."""
    from ._state import mode
    from .tensor import apply

    def call(op, ins, kw, src):
        tracer = mode.tracer
        if tracer is None or src is None:
            return apply(op, *ins, **kw)
        prev, tracer.src = tracer.src, src
        try:
            return apply(op, *ins, **kw)
        finally:
            tracer.src = prev

    return _run(graph, args, call)

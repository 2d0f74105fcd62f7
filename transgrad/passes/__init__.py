"""Graph -> Graph passes, each small and independent, composed in `optimize`."""
from ..ir import LOOPS
from .cse import cse
from .dce import dce
from .hoist import hoist
from .liveness import last_uses
from .simplify import simplify


def optimize(graph):
    """The pipeline codegen runs: dead code (so use counts are exact), algebraic
    simplification, common subexpressions, then dead code again.

    >>> from transgrad.ir import Graph
    >>> optimize(Graph((), (), ())).eqns
    ()
    """
    graph = dce(cse(simplify(dce(graph))))
    if not any(e.op in LOOPS for e in graph.eqns):
        return graph
    eqns = []
    for e in graph.eqns:  # a loop's body too, its inputs and outputs as they are (NOTE [loops])
        if e.op in LOOPS:
            body = e.kw["body"]
            e = e._replace(params=tuple((k, optimize(body).replace(inputs=body.inputs) if k == "body" else v)
                                        for k, v in e.params))
        eqns.append(e)
    graph = graph.replace(eqns=tuple(eqns))
    hoisted = hoist(graph)
    return graph if hoisted is graph else dce(cse(hoisted))


__all__ = ["cse", "dce", "hoist", "last_uses", "optimize", "simplify"]

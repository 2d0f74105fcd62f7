"""Graph -> Graph passes, each small and independent, composed in `optimize`."""
from .cse import cse
from .dce import dce
from .liveness import last_uses
from .simplify import simplify


def optimize(graph):
    """The pipeline codegen runs: dead code (so use counts are exact), algebraic
    simplification, common subexpressions, then dead code again.

    >>> from transgrad.ir import Graph
    >>> optimize(Graph((), (), ())).eqns
    ()
    """
    return dce(cse(simplify(dce(graph))))


__all__ = ["cse", "dce", "last_uses", "optimize", "simplify"]

"""Graph -> Graph passes, each small and independent, composed in `optimize`."""
from .cse import cse
from .dce import dce
from .liveness import last_uses


def optimize(graph):
    """The pipeline codegen runs: common subexpressions first, then dead code.

    >>> from transgrad.ir import Graph
    >>> optimize(Graph((), (), ())).eqns
    ()
    """
    return dce(cse(graph))


__all__ = ["cse", "dce", "last_uses", "optimize"]

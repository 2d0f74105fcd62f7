"""The autograd engine (layer 6): `backward()` walks the nodes reachable from the outputs,
looks the graph's structure up in a cache, and on a miss replays the VJP rules on tracing
tensors (NOTE [rules trace]), which records the backward as IR; passes optimise it,
codegen prints it, and the generated function runs on the saved arrays. A training loop
whose graph keeps its structure generates code once.

    graph.py   the graph reachable from the roots: order, structure key, value names
    replay.py  the rules replayed into a backward Graph, and what it reads (Source)
    run.py     the cache of generated backwards, running them, backward() and grad()
"""
import sys

from .. import _state
from .run import backward, backward_code, call, grad, owned, run_tensors, stats

_state.engine = sys.modules[__name__]  # Tensor.backward calls up to here

__all__ = ["backward", "backward_code", "call", "grad", "owned", "run_tensors", "stats"]

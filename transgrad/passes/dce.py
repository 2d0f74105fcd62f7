from ..ir import Graph, Var


def dce(g: Graph) -> Graph:
    """Drop equations whose result no output needs, and inputs nothing reads.

    Every primitive is pure, so an unused equation can always go.
    """
    live = {id(x) for x in g.outputs if isinstance(x, Var)}
    kept = []
    for e in reversed(g.eqns):
        if e.op in ("guard", "exit") or any(id(o) in live for o in e.outs):  # NOTE [guards]: kept for its check
            kept.append(e)
            live.update(id(x) for x in e.ins if isinstance(x, Var))
    inputs = tuple(v for v in g.inputs if id(v) in live)
    return g.replace(inputs=inputs, eqns=tuple(reversed(kept)))

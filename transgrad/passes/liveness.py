from ..ir import Graph, Var


def last_uses(g: Graph) -> dict:
    """{eqn index: Vars read for the last time there} (NOTE [liveness]).

    Outputs are never freed. Codegen turns each entry into `; del a, b` on the
    equation's line; the reference interpreter drops the same values at the same point,
    so both hold the same set of arrays at every step.
    """
    keep = {id(x) for x in g.outputs if isinstance(x, Var)}
    seen, out = set(), {}
    for i in range(len(g.eqns) - 1, -1, -1):
        dying = []
        for x in g.eqns[i].ins:
            if isinstance(x, Var) and id(x) not in seen and id(x) not in keep:
                seen.add(id(x))
                dying.append(x)
        if dying:
            out[i] = tuple(dying)
    return out

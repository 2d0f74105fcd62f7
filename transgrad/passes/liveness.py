from ..ir import Graph, Var


def last_uses(g: Graph) -> dict:
    """{eqn index: Vars read for the last time there}.

    NOTE [liveness]: a value is freed right after its last use, so that a long program holds
    only what is still needed. Outputs are never freed. Codegen turns each entry into
    `;  del a, b` on the equation's line (except for parameters, which the caller holds,
    0-d values, and the last line, before the return frees everything); the reference
    interpreter drops the same values at the same point.
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

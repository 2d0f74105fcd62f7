from ..ir import Eqn, Graph, Var


def _key(x, sub):
    if isinstance(x, Var):
        return sub.get(id(x), x).id
    return (type(x.value), x.value)  # 1, 1.0 and True stay distinct


def cse(g: Graph) -> Graph:
    """Reuse the first of several equations with the same op, inputs and params.

    `g*y + g*y` (the cotangent of `y * y`) computes `g*y` once.
    """
    seen, sub, eqns = {}, {}, []
    for e in g.eqns:
        key = (e.op, tuple(_key(x, sub) for x in e.ins), e.params)
        prev = seen.get(key)
        if prev is not None:
            sub.update((id(o), p) for o, p in zip(e.outs, prev))
            continue
        if any(isinstance(x, Var) and id(x) in sub for x in e.ins):
            e = Eqn(e.op, tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in e.ins), e.params, e.out, e.src)
        seen[key] = e.outs
        eqns.append(e)
    if not sub:
        return g
    outputs = tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in g.outputs)
    return g.replace(eqns=tuple(eqns), outputs=outputs)

from ..ir import Graph


def guards_as_outputs(g: Graph):
    """Move every guard out of the code and into the outputs (NOTE [guards]).

    A program compiled by XLA cannot raise on a value, so its guards' values are returned
    after the ordinary outputs and the host checks them. Returns the new graph and the
    `(index, expected)` of each guard output, in order.
    """
    eqns, checks, values = [], [], []
    for e in g.eqns:
        if e.op == "guard":
            kw = e.kw
            checks.append((kw["index"], kw["expected"]))
            values.append(e.ins[0])
        else:
            eqns.append(e)
    return g.replace(eqns=tuple(eqns), outputs=tuple(g.outputs) + tuple(values)), checks

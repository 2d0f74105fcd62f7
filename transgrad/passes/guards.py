from ..ir import Eqn, Graph, Var


def guards_as_outputs(g: Graph):
    """Move every guard out of the code and into the outputs (NOTE [guards]).

    A program compiled by XLA cannot raise on a value, so its guards' values are returned
    after the ordinary outputs and the host checks them. Values of one dtype are stacked
    into one array, so that the host fetches one small array per dtype, not one per guard.
    Returns the new graph and, per stacked output, the `(index, expected)` of its guards.
    """
    eqns, groups = [], {}
    for e in g.eqns:
        if e.op == "guard":
            kw = e.kw
            v = e.ins[0]
            if v.shape != ():
                flat = Var((), v.dtype, v.hint)
                eqns.append(Eqn("reshape", (v,), (("shape", ()),), flat, e.src))
                v = flat
            groups.setdefault(v.dtype, []).append((v, (kw["index"], kw["expected"])))
        else:
            eqns.append(e)
    outputs, checks = list(g.outputs), []
    for dtype, items in groups.items():
        stacked = Var((len(items),), dtype, "guards")
        eqns.append(Eqn("stack", tuple(v for v, _ in items), (("axis", 0),), stacked))
        outputs.append(stacked)
        checks.append([c for _, c in items])
    return g.replace(eqns=tuple(eqns), outputs=tuple(outputs)), checks

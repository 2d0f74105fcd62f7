"""Loop-invariant code motion: what a loop body computes from values that do not change
between iterations runs once, before the loop (NOTE [loops])."""
from __future__ import annotations

from ..ir import LOOPS, Eqn, Graph, Var

_STAYS = ("guard", "exit") + LOOPS


def hoist(g: Graph) -> Graph:
    """`g` with the invariant equations of its loops' bodies moved before the loops.

    A body's invariants are its last inputs (after the carried values, and in
    `for_reversed` the stacks' rows). An equation that reads only invariants, literals and other
    hoisted values computes the same value in every iteration; hoisted, its result is one
    more invariant of the loop. Everything is pure, so running it once even when the loop
    runs no iteration changes no result.
    """
    if not any(e.op in LOOPS for e in g.eqns):
        return g
    eqns = []
    for e in g.eqns:
        eqns += _hoisted(e) if e.op in LOOPS else [e]
    return g if len(eqns) == len(g.eqns) else g.replace(eqns=tuple(eqns))


def _hoisted(e):
    body = e.kw["body"]
    ins = e.ins[1:] if e.op == "for_reversed" else e.ins
    invariants = ins[e.kw["carried"] + e.kw.get("stacked", 0):]  # the body's last inputs
    outer = {id(v): x for v, x in zip(body.inputs[len(body.inputs) - len(invariants):], invariants)}
    moved, kept = [], []
    for q in body.eqns:
        if q.op not in _STAYS and all(not isinstance(x, Var) or id(x) in outer for x in q.ins):
            moved.append(q._replace(ins=tuple(outer.get(id(x), x) if isinstance(x, Var) else x for x in q.ins)))
            for o in q.outs:
                outer[id(o)] = o  # read in the body as an invariant of the same name
        else:
            kept.append(q)
    if not moved:
        return [e]
    made = {id(o): Var(o.shape, o.dtype, o.hint) for q in moved for o in q.outs}
    used = {id(x) for q in kept for x in q.ins if isinstance(x, Var)} | {id(x) for x in body.outputs
                                                                        if isinstance(x, Var)}
    new_in = [(o, made[id(o)]) for q in moved for o in q.outs if id(o) in used]
    sub = {id(o): v for o, v in new_in}
    kept = [q._replace(ins=tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in q.ins)) for q in kept]
    outputs = tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in body.outputs)
    body = body.replace(inputs=body.inputs + tuple(v for _, v in new_in), eqns=tuple(kept), outputs=outputs)
    params = tuple((k, body if k == "body" else v) for k, v in e.params)
    return moved + [Eqn(e.op, e.ins + tuple(o for o, _ in new_in), params, e.outs, e.src)]

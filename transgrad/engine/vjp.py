"""Reverse mode over IR: the VJP of a Graph is a Graph (NOTE [rules trace], NOTE [loops]).

The rules of the op table are replayed backwards over a graph's equations, on tracing
tensors that stand for the forward values they read. A `while` equation's VJP is a
`for_reversed` equation whose body is the VJP of the while's body, run once per iteration
in reverse on the values each iteration saved: the forward loop stacks them (`Stacks`).
Gradients flow where the run's autograd sent them (`flows`): a `.detach()`, a `no_grad`
block or an integer input stops them here exactly as it did on the tape.
"""
from __future__ import annotations

import numpy as np

from ..ir import Eqn, Graph, Src, Var
from ..ops import OPS
from ..passes import dce
from ..passes.roll import counter
from ..tensor import apply, new
from ..trace import Tracer, tracing


class Stacks:
    """The body values each forward `while` must save per iteration for the backward. With
    a `capacity`, each stack is a buffer of that many rows (XLA needs static shapes) and
    the loop runs at most `capacity` times; without, a stack grows with the loop."""

    def __init__(self, capacity=None, every=None):
        self.capacity, self.every = capacity, every  # every: checkpoint the state of every k-th iteration
        self.wanted = {}  # id(body Graph) -> {id(body Var): (body Var, stack Var)}

    def of(self, body, v):
        """The stack of body value `v` over the iterations (a Var of the forward graph)."""
        table = self.wanted.setdefault(id(body), {})
        if id(v) not in table:
            rows = -(-self.capacity // (self.every or 1)) if self.capacity else 0
            table[id(v)] = (v, Var((rows,) + v.shape, v.dtype, v.hint + "_saved"))
        return table[id(v)][1]

    def save(self, g: Graph) -> Graph:
        """`g` whose while equations output the stacks asked for."""
        eqns = []
        for e in g.eqns:
            table = self.wanted.get(id(e.kw["body"])) if e.op == "while" else None
            if table:
                body = e.kw["body"]
                body = body.replace(outputs=body.outputs + tuple(v for v, _ in table.values()))
                cap = ((("capacity", self.capacity),) if self.capacity else ()) + (
                    (("every", self.every),) if self.every else ())
                e = Eqn("while", e.ins, (("body", body),) + tuple(p for p in e.params if p[0] != "body") + cap,
                        e.outs + tuple(s for _, s in table.values()), e.src)
                self.wanted[id(body)] = table
            eqns.append(e)
        return g.replace(eqns=tuple(eqns))


def vjp(graph: Graph, wrt, seeds, flows, stacks=None):
    """The backward of `graph`: Graph((cotangents of outputs `seeds`) + (forward values it
    reads), (eqns), (cotangent of each input in `wrt`, None where none flows)).

    `flows` maps id(out Var) of an equation to the inputs its gradient flows to (equations
    absent from it are not differentiated). Loops need `stacks`.
    """
    tr = Tracer(src=False)
    placeholders, forward_of = {}, {}  # id(forward Var) -> tensor; id(placeholder Var) -> forward Var

    def value(v):
        t = placeholders.get(id(v))
        if t is None:
            t = placeholders[id(v)] = tr.placeholder(np.zeros(v.shape, v.dtype), v.hint)
            forward_of[id(tr.vars[id(t)])] = v
        return t

    cot = {}
    with tracing(tr), np.errstate(all="ignore"):  # rules run on zeros: only what they record matters
        seed_vars = []
        for k in seeds:
            o = graph.outputs[k]
            t = tr.placeholder(np.zeros(o.shape, o.dtype), "g_" + o.hint)
            seed_vars.append(tr.vars[id(t)])
            cot.setdefault(id(o), []).append(t)
        for e in reversed(graph.eqns):
            if e.op == "while":
                _while_vjp(tr, e, cot, value, flows, stacks)
                continue
            flow = flows.get(id(e.out)) if type(e.out) is Var else None
            gs = cot.pop(id(e.out), None) if flow is not None else None
            if not gs or not any(flow):
                continue
            row = OPS[e.op]
            tr.src = Src(e.src.file, e.src.line, grad=True) if e.src else False
            g = _sum(gs)
            kw = e.kw
            kw.pop("into", None)
            args = [value(x) if type(x) is Var else x.value for x in e.ins]
            grads = row.vjp(g, value(e.out) if row.uses_out else None, *args, **kw)
            for x, gi, f in zip(e.ins, grads, flow):
                if f and gi is not None and type(x) is Var:
                    cot.setdefault(id(x), []).append(gi)
        outs = [_sum(cot[id(graph.inputs[i])]) if cot.get(id(graph.inputs[i])) else None for i in wrt]
    out_vars = tuple(None if t is None else tr.vars[id(t)] for t in outs)
    g = dce(Graph(tuple(tr.inputs), tuple(tr.eqns), out_vars))
    residual_ph = [v for v in g.inputs if id(v) in forward_of]
    sub = {id(v): forward_of[id(v)] for v in residual_ph}
    eqns = tuple(e._replace(ins=tuple(sub.get(id(x), x) if type(x) is Var else x for x in e.ins)) for e in g.eqns)
    outputs = tuple(sub.get(id(x), x) if type(x) is Var else x for x in g.outputs)
    for i, v in zip(wrt, outputs):
        if v is not None and id(v) not in {id(s) for s in seed_vars} and id(v) not in sub:
            v.hint = "g_" + graph.inputs[i].hint
    return Graph(tuple(seed_vars) + tuple(sub[id(v)] for v in residual_ph), eqns, outputs, name=graph.name + "_backward")


def _sum(gs):
    g = gs[0]
    for x in gs[1:]:
        g = g + x
    return g


def _zeros(v):
    return apply(OPS["full"], shape=v.shape, value=0.0, dtype=v.dtype)


def _while_vjp(tr, e, cot, value, flows, stacks):
    """A while's VJP: a `for_reversed` over the iterations, each the VJP of the body."""
    body, k = e.kw["body"], e.kw["carried"]
    seeded = [c for c in range(k) if body.outputs[c].dtype.kind == "f"]
    finals = {c: cot.pop(id(e.outs[c]), None) for c in seeded}
    if not any(finals.values()):
        return
    if stacks.every:
        return _checkpointed_vjp(tr, e, cot, value, flows, stacks, seeded, finals)
    step = body.replace(eqns=tuple(q for q in body.eqns if q.op != "exit"))
    wrt = [i for i, v in enumerate(body.inputs) if v.dtype.kind == "f"]
    back = vjp(step, wrt, seeded, flows)
    grads = dict(zip(wrt, back.outputs))
    residuals = back.inputs[len(seeded):]
    invariant_at = {id(v): k + j for j, v in enumerate(body.inputs[k:])}
    # the reverse loop's carried values: the cotangent of each state, then each invariant's sum
    sums = [i for i in wrt if i >= k and grads[i] is not None]
    g_in = [Var(body.outputs[c].shape, body.outputs[c].dtype, "g_" + body.outputs[c].hint) for c in seeded]
    acc_in = [Var(body.inputs[i].shape, body.inputs[i].dtype, "g_" + body.inputs[i].hint) for i in sums]
    stacked = [v for v in residuals if id(v) not in invariant_at]
    rows = [Var(v.shape, v.dtype, v.hint) for v in stacked]
    fixed = [v for v in residuals if id(v) in invariant_at]
    fixed_in = [Var(v.shape, v.dtype, v.hint) for v in fixed]
    sub = {id(s): g for s, g in zip(back.inputs[:len(seeded)], g_in)}
    sub.update({id(v): r for v, r in zip(stacked, rows)})
    sub.update({id(v): f for v, f in zip(fixed, fixed_in)})
    eqns = [q._replace(ins=tuple(sub.get(id(x), x) if type(x) is Var else x for x in q.ins)) for q in back.eqns]
    outs = _carried_back(eqns, e, seeded, g_in, grads, sums, acc_in, sub)
    rbody = Graph(tuple(g_in + acc_in + rows + fixed_in), tuple(eqns), outs, name="body_backward")
    stack_args = [value(stacks.of(body, v)) for v in stacked]
    fixed_args = [value(e.ins[invariant_at[id(v)]]) for v in fixed]
    _reverse_loop(tr, e, cot, value, seeded, finals, sums, rbody, stack_args, fixed_args, ())


def _checkpointed_vjp(tr, e, cot, value, flows, stacks, seeded, finals):
    """A while's VJP that reads the state of every `every`-th iteration only: a
    `for_reversed` over segments of `every` iterations, each running its segment forward
    again from the saved state (saving what its own VJP reads), then that VJP."""
    body, k, every = e.kw["body"], e.kw["carried"], stacks.every
    # the segment: m iterations from a saved state, counted by j instead of the loop's test
    state = [Var(v.shape, v.dtype, v.hint) for v in body.inputs[:k]]
    m = Var((), np.dtype("int32"), "m")
    inv = [Var(v.shape, v.dtype, v.hint) for v in body.inputs[k:]]
    init, j, test, step = counter(m)
    inner = body.replace(inputs=body.inputs[:k] + (j,) + body.inputs[k:] + (m,),
                         eqns=test + tuple(q for q in body.eqns if q.op != "exit") + (step,),
                         outputs=body.outputs[:k] + (step.out,))
    ends = [Var(v.shape, v.dtype, v.hint) for v in body.outputs[:k]]
    run = Eqn("while", tuple(state) + (init.out,) + tuple(inv) + (m,), (("body", inner), ("carried", k + 1)),
              tuple(ends) + (Var((), np.dtype("int32"), "j"), Var((), np.dtype("int64"), "trips")), e.src)
    seg = Graph(tuple(state) + (m,) + tuple(inv), (init, run), tuple(ends))
    wrt = [i for i, v in enumerate(seg.inputs) if v.dtype.kind == "f"]
    inner_stacks = Stacks(every if stacks.capacity else None)
    back = vjp(seg, wrt, seeded, flows, inner_stacks)
    forward = inner_stacks.save(seg)
    grads = dict(zip(wrt, back.outputs))
    sums = [i for i in wrt if i > k and grads[i] is not None]
    g_in = [Var(body.outputs[c].shape, body.outputs[c].dtype, "g_" + body.outputs[c].hint) for c in seeded]
    acc_in = [Var(seg.inputs[i].shape, seg.inputs[i].dtype, "g_" + seg.inputs[i].hint) for i in sums]
    sub = {id(s): g for s, g in zip(back.inputs[:len(seeded)], g_in)}
    eqns = list(forward.eqns) + [q._replace(ins=tuple(sub.get(id(x), x) if type(x) is Var else x for x in q.ins))
                                 for q in back.eqns]
    outs = _carried_back(eqns, e, seeded, g_in, grads, sums, acc_in, sub)
    rbody = Graph(tuple(g_in + acc_in) + tuple(state) + (m,) + tuple(inv), tuple(eqns), outs, name="segment_backward")
    stack_args = [value(stacks.of(body, v)) for v in body.inputs[:k]]  # the saved states
    fixed_args = [value(x) for x in e.ins[k:]]
    _reverse_loop(tr, e, cot, value, seeded, finals, [i - 1 for i in sums], rbody, stack_args, fixed_args,
                  (("every", every),))


def _carried_back(eqns, e, seeded, g_in, grads, sums, acc_in, sub):
    """What a reverse loop's body hands the next step (appending the equations to `eqns`):
    each state's cotangent (zeros where the next state does not depend on it), then each
    invariant's running sum. `sub` renames the backward's seeds to the body's inputs."""
    out = []
    for c, gv in zip(seeded, g_in):
        g = grads.get(c)
        if g is None:
            g = Var(gv.shape, gv.dtype, gv.hint)
            eqns.append(Eqn("full", (), (("shape", gv.shape), ("value", 0.0), ("dtype", gv.dtype)), g))
        out.append(sub.get(id(g), g))
    for i, a in zip(sums, acc_in):
        total = Var(a.shape, a.dtype, a.hint)
        eqns.append(Eqn("add", (a, sub.get(id(grads[i]), grads[i])), (), total, e.src and Src(e.src.file, e.src.line, True)))
        out.append(total)
    return tuple(out)


def _reverse_loop(tr, e, cot, value, seeded, finals, sums, rbody, stack_args, fixed_args, params):
    """Record the `for_reversed` of while `e` with body `rbody`, and send the cotangents it
    computes to the while's inputs: its states', then the sums of its invariants'
    (`sums`: their places among the body's inputs)."""
    body, k = e.kw["body"], e.kw["carried"]
    tr.src = Src(e.src.file, e.src.line, grad=True) if e.src else False
    count = value(e.outs[k])
    starts = [_sum(finals[c]) if finals[c] else _zeros(body.outputs[c]) for c in seeded]
    starts += [_zeros(body.inputs[i]) for i in sums]
    carried = rbody.inputs[:len(starts)]
    for t, v in zip(starts, carried):
        tr.vars[id(t)].hint = v.hint
    outs = [new(np.zeros(v.shape, v.dtype)) for v in carried]
    tr.record_many("for_reversed", [count] + starts + stack_args + fixed_args,
                   (("body", rbody), ("carried", len(starts)), ("stacked", len(stack_args))) + params, outs,
                   [v.hint for v in carried])
    for c, t in zip(seeded, outs):
        x = e.ins[c]
        if type(x) is Var and x.dtype.kind == "f":
            cot.setdefault(id(x), []).append(t)
    for i, t in zip(sums, outs[len(seeded):]):
        cot.setdefault(id(e.ins[i]), []).append(t)

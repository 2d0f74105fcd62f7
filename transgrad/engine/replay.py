"""Reverse mode as tracing: the VJP rules of a recorded graph, replayed on tracing tensors,
record the backward as IR (NOTE [rules trace]).

NOTE [rules trace]: a rule (ops.py) is written with Tensor methods, so running it on
tensors that a `Tracer` watches records the equations of the gradient, like any user code.
The engine replays the rules of the nodes reachable from the roots in reverse order,
summing the cotangents that reach each node; the Graph it records is optimised by the
passes and printed by codegen. Its inputs are placeholders whose values come, at every
run, from the seed, the saved tensors and the hooks of the recorded graph (`Source`):
generated code is a function of the graph's structure, cached by it (`graph.walk`).
"""
from __future__ import annotations

from linecache import getline
from typing import NamedTuple

import numpy as np

from ..ir import Eqn, Graph, Src, Var
from ..ops import OPS
from ..passes import dce
from ..tensor import Tensor, apply, new
from ..tensor.records import AccumulateGrad, Node, Overwritten, modified_error
from ..trace import Tracer, leaf_name, tracing


class Source(NamedTuple):
    """Where an input of a generated backward comes from (its binding): the j-th seed
    (`node` = j), input `slot` saved by node `node`, that node's `result`, or its hook `slot`."""

    kind: str  # "seed" | "saved" | "result" | "hook"
    node: int
    slot: int = 0


def backward_graph(order, index, root_idx, seeds, target_idx, names, const_name=None, stop_at_targets=False,
                   inline_hooks=False, anomalies=None):
    """Replay the VJP rules of `order` in reverse on tracing tensors (NOTE [rules trace]).

    Returns the backward Graph, the `Source` of each of its inputs, and for each input the
    saved values it stands for (which `check_saved` checks before a run). `names[i]`
    names node i's value; its cotangent is called `g_<name>`. Hooks (NOTE [hooks]) become
    calls in the generated code, or with `inline_hooks` are traced into it (a compiled
    program: pure hooks only). With a list `anomalies`, every cotangent a rule makes is
    checked for NaN/inf by a guard whose index points to the message appended there.
    """
    const_name = const_name or (lambda a: leaf_name(a, "c"))
    targets = set(target_idx)
    tr = Tracer()
    # user code that runs here (a custom Function's backward, a hook traced in) may read values
    custom = any(getattr(getattr(n, "op", None), "custom", False) for n in order)
    tr.abstract = not (custom or inline_hooks and any(n._hooks for n in order))
    tr.live = custom and not stop_at_targets  # eager, with a custom Function: recorded for this run only (run.py)
    sources, placeholders, readers = {}, {}, {}

    def placeholder(key, data, hint, source, reader=None):
        t = placeholders.get(key)
        if t is None:
            if type(data) is Overwritten:
                data = data.dummy()
            t = placeholders[key] = tr.placeholder(data, hint)
            sources[id(tr.vars[id(t)])] = source
        if reader is not None:
            readers.setdefault(id(tr.vars[id(t)]), []).append(reader)
        return t

    cotangents = {}
    with tracing(tr):
        for j, (i, s) in enumerate(zip(root_idx, seeds)):
            cotangents.setdefault(i, []).append(placeholder(("seed", j), s, "g_" + names[i], Source("seed", j)))
        outputs = {}
        for i in range(len(order) - 1, -1, -1):
            gs = cotangents.pop(i, None)
            if gs is None:
                continue
            n = order[i]
            src = n.src if type(n) is not AccumulateGrad else n.variable._source
            # the equations of this node's gradient cite its line (False: no line, not the caller's)
            opaque = getattr(getattr(n, "op", None), "opaque", False)
            tr.src = Src(src[0], src[1], grad=True) if src and not opaque else False
            g = gs[0]
            for x in gs[1:]:
                g = g + x
            for j, fn in enumerate(n._hooks or ()):
                if inline_hooks:
                    r = fn(g)
                    g = g if r is None else checked_hook_result(r, g.shape, g.dtype, fn)
                else:
                    out = new(g._data)
                    hook = placeholder(("hook", i, j), fn, "hook", Source("hook", i, j))
                    tr.record(OPS["hook"], (g, hook), {}, out)
                    g = out
            tr.vars[id(g)].hint = "g_" + names[i]
            if i in targets:
                outputs[i] = g
                if stop_at_targets:
                    continue
            if type(n) is AccumulateGrad:
                continue
            args = []
            saved_name = getattr(n.op, "saved_name", None)  # a compiled call names what it saved
            for k, (e, a) in enumerate(zip(n.edges, n.saved)):
                if not isinstance(a, Tensor):
                    args.append(a)
                elif isinstance(e, Node) and a._data is e.out_data:  # the producer's result, one value for all readers
                    j = index[id(e)]
                    args.append(placeholder(("result", j), a._data, names[j], Source("result", j), Source("saved", i, k)))
                else:
                    hint = names[index[id(e)]] if e is not None else saved_name(k) if saved_name else const_name(a)
                    args.append(placeholder(("saved", id(a)), a._data, hint, Source("saved", i, k), Source("saved", i, k)))
            uses_out = getattr(n.op, "uses_out", True)
            out = placeholder(("result", i), n.out_data, names[i], Source("result", i), Source("result", i)) if uses_out else None
            grads = n.op.vjp(g, out, *args, **n.params)
            if anomalies is not None:
                _check_finite(tr, n, grads, anomalies)
            for e, gi, a in zip(n.edges, grads, n.saved):
                if e is None or gi is None:
                    continue
                if gi.shape != a.shape:
                    raise AssertionError(f"VJP of {n.op.name} gave a cotangent of shape {gi.shape} for an input of "
                                         f"shape {a.shape}")
                cotangents.setdefault(index[id(e)], []).append(gi)
    out_vars = tuple(tr.vars[id(outputs[i])] if i in outputs else None for i in target_idx)
    for i, v in zip(target_idx, out_vars):
        if v is not None and v not in tr.inputs:
            v.hint = "g_" + names[i]
    _cotangent_names(tr.eqns, [tr.vars[id(placeholders[("seed", j)])] for j in range(len(seeds))])
    graph = Graph(tuple(tr.inputs), tuple(tr.eqns), out_vars, name=names[root_idx[0]] + "_backward")
    return graph, sources, readers


def _cotangent_names(eqns, seeds):
    """Every value computed from a cotangent is one (a partial sum, a rule's product): its
    name starts with `g_`, so that generated code never reads one as a forward value."""
    flowing = {id(v) for v in seeds}
    for e in eqns:
        if any(type(x) is Var and id(x) in flowing for x in e.ins):
            for o in e.outs:
                flowing.add(id(o))
                if not o.hint.startswith("g_"):
                    o.hint = "g_" + o.hint


def saved_checks(graph, readers):
    """The saved values (Sources) that `graph` reads: those checked before each run."""
    return tuple(dict.fromkeys(r for v in graph.inputs for r in readers.get(id(v), ())))


def check_saved(order, checks):
    """Raise if a value the backward reads was modified in place after it was saved (NOTE [versions])."""
    for s in checks:
        n = order[s.node]
        if s.kind == "result":
            if type(n.out_data) is Overwritten:
                raise modified_error(n, n.out_data.vc)
        else:
            vc = n.saved[s.slot]._version_cell
            if vc is not None and vc.clock > n.seq:
                raise modified_error(n, vc)


def _check_finite(tr, n, grads, anomalies):
    where = f" (its forward was {n.src[0]}:{n.src[1]} `{getline(*n.src).strip()}`)" if n.src else ""
    for k, gi in enumerate(grads):
        if isinstance(gi, Tensor) and gi.dtype.kind == "f":
            ok = apply(OPS["all_finite"], gi)
            anomalies.append(f"Function '{n.name()}' returned nan or inf values in its {k}th output{where}")
            index = len(anomalies) - 1
            tr.eqns.append(Eqn("guard", (tr.vars[id(ok)],), (("expected", True), ("index", index)),
                               Var((), np.dtype(bool), "ok"), tr.src or None))


def checked_hook_result(r, shape, dtype, fn):
    """What a hook returned, as the gradient it replaces (a tensor or array of its shape)."""
    if getattr(r, "shape", None) != shape:
        raise RuntimeError(f"hook {getattr(fn, '__name__', fn)!r} must return None or a tensor of shape {shape}, "
                           f"got {getattr(r, 'shape', type(r).__name__)}")
    return r if r.dtype == dtype else r.astype(dtype)


def rule_reads(n, cache):
    """The saved slots of node `n` that its rule reads (-1: its result) for the edges a
    gradient takes, by its rule replayed alone; cached per op and signature (NOTE [watched])."""
    key = (n.op, tuple(e is None for e in n.edges), tuple((a.shape, a.dtype) if isinstance(a, Tensor) else a
                                                          for a in n.saved), tuple(sorted(n.params.items())))
    try:
        return cache[key]
    except (KeyError, TypeError) as e:  # TypeError: an unhashable parameter, replayed every time
        key = key if type(e) is KeyError else None
    tr = Tracer(src=False)  # its tape is intact: no value was overwritten (`_plain_tape`)
    with tracing(tr), np.errstate(all="ignore"):
        g = tr.placeholder(np.zeros_like(n.out_data), "g")
        args = [tr.placeholder(a._data, "s") if isinstance(a, Tensor) else a for a in n.saved]
        out = tr.placeholder(n.out_data, "out") if n.op.uses_out else None
        grads = n.op.vjp(g, out, *args, **n.params)
    live = tuple(tr.var(gi) for e, gi in zip(n.edges, grads) if e is not None and isinstance(gi, Tensor))
    read = {id(v) for v in dce(Graph(tuple(tr.inputs), tuple(tr.eqns), live)).inputs}
    slots = tuple(k for k, a in enumerate(args) if isinstance(a, Tensor) and id(tr.vars[id(a)]) in read)
    slots += (-1,) if out is not None and id(tr.vars[id(out)]) in read else ()
    if key is not None:
        cache[key] = slots
    return slots

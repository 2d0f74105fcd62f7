"""The recorded graph reachable from a backward's roots: its nodes in order, its structure
(the cache key of generated code), and the names its values get in that code."""
from __future__ import annotations

import operator

from ..tensor import Tensor
from ..tensor.records import AccumulateGrad
from ..trace import assigned_name, leaf_name


def walk(roots, stop=()):
    """Nodes reachable from `roots`, producers before consumers, with the graph's cache key.

    The key holds every node's op, params, source line and output shape, and its edges as
    positions in the order; constant inputs are numbered by identity so that sharing is
    part of the key. The order is the order of creation (a node's inputs are always older
    than it; leaves first, as found), so the walk needs no recursion and no second visit.
    Nodes whose id is in `stop` are not expanded (their inputs lie outside the graph).
    """
    seen, stack = {}, list(roots)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        if id(n) in stop:
            continue
        for e in n.edges:
            if e is not None and id(e) not in seen:
                stack.append(e)
    order = sorted(seen.values(), key=_seq)
    index, parts, consts = {}, [], {}
    for n in order:
        index[id(n)] = len(parts)
        parts.append(_part(n, index, consts) if id(n) not in stop else None)
    return order, index, tuple(parts)


_seq = operator.attrgetter("seq")


def _part(n, index, consts):
    """What the generated code of node `n` depends on (NOTE [rules trace])."""
    if type(n) is AccumulateGrad:
        v = n.variable
        hooks = v._hooks
        return (v.shape, v.dtype, len(hooks)) if hooks else (v.shape, v.dtype)
    if n.saved is None:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (through {n.name()}); the saved "
            "values were freed by the first backward. Pass retain_graph=True to the first backward.")
    ins = []
    for e, a in zip(n.edges, n.saved):
        if e is None:
            if isinstance(a, Tensor):
                ins.append(("c", consts.setdefault(id(a), len(consts)), a.shape, a.dtype))
            else:
                ins.append((type(a), a))
        elif type(e) is AccumulateGrad:
            ins.append(index[id(e)])
        else:  # does it save the producer's result itself (or a snapshot of an older value)?
            ins.append((index[id(e)], a._data is e.out_data))
    op, params = n.op, n.params
    src = None if getattr(op, "opaque", False) else n.src  # a compiled call's code is the same from any line
    key = (op, tuple(params.items()) if params else (), src, n.out_data.shape, tuple(ins))
    return key + (len(n._hooks),) if n._hooks else key


def value_names(order):
    """A name for each node's value in generated code: the user's variable when the node's
    line assigns one (`z = y * y * 3` names its last multiply `z`), else the op's name."""
    consumers = {}
    for n in order:
        for e in n.edges:
            if e is not None:
                consumers.setdefault(id(e), []).append(n)
    names = []
    for n in order:
        if type(n) is AccumulateGrad:
            names.append(leaf_name(n.variable, "x"))
            continue
        a = None if getattr(n.op, "opaque", False) else assigned_name(n.src)
        name = n.op.name
        if a is not None:
            inner = [c for c in consumers.get(id(n), ()) if c.src == n.src and 0 < c.seq - n.seq < a[1]]
            if not inner:
                name = a[0]
        names.append(name)
    return names

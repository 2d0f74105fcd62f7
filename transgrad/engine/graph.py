"""The recorded graph reachable from a backward's roots: its nodes in order, its structure
(the cache key of generated code), and the names its values get in that code."""
from __future__ import annotations

from ..tensor import Tensor
from ..tensor.records import AccumulateGrad, Node
from ..trace import assigned_name, leaf_name


def walk(roots, stop=()):
    """Nodes reachable from `roots`, producers before consumers, with the graph's cache key.

    The key holds every node's op, params, source line and output shape, and its edges as
    positions in the order; constant inputs are numbered by identity so that sharing is
    part of the key. The walk is iterative: deep graphs must not hit the recursion limit.
    Nodes whose id is in `stop` are not expanded (their inputs lie outside the graph).
    """
    order, index, parts, consts = [], {}, [], {}
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        n, done = stack.pop()
        if done:
            index[id(n)] = len(order)
            order.append(n)
            parts.append(_part(n, index, consts) if id(n) not in stop else None)
        elif id(n) not in index:
            index[id(n)] = None  # visiting
            stack.append((n, True))
            if id(n) in stop:
                continue
            for e in n.edges:
                if e is not None and id(e) not in index:
                    stack.append((e, False))
    return order, index, tuple(parts)


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
        if isinstance(e, Node):  # does it save the producer's result itself (or a snapshot of an older value)?
            ins.append((index[id(e)], a._data is e.out_data))
        elif e is not None:
            ins.append(index[id(e)])
        elif isinstance(a, Tensor):
            ins.append(("c", consts.setdefault(id(a), len(consts)), a.shape, a.dtype))
        else:
            ins.append((type(a), a))
    src = None if getattr(n.op, "opaque", False) else n.src  # a compiled call's code is the same from any line
    key = (n.op, tuple(n.params.items()), src, n.out_data.shape, tuple(ins))
    return key + (len(n._hooks),) if n._hooks else key


def hooks_of(n):
    return n._hooks


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

"""Names from the user's source: a value is named after the variable its statement assigns
(`z = y * y * 3`), a leaf after the constructor call that made it (`w = tg.randn(3)`)."""
from __future__ import annotations

import ast
import functools

from ..ir import Var

_OPERATIONS = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Subscript)


@functools.lru_cache(maxsize=4096)
def _assignment(file, line):
    import linecache

    text = linecache.getline(file, line).strip()
    if not text:
        return None
    try:
        body = ast.parse(text).body
    except Exception:  # a line of a longer statement, or not Python: fall back to op names
        return None
    if len(body) != 1:
        return None
    node = body[0]
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        target, value = node.target, node.value
    else:
        return None
    if not isinstance(target, ast.Name) or value is None:
        return None
    count = sum(isinstance(n, _OPERATIONS) for n in ast.walk(value))
    callee = value.func if isinstance(value, ast.Call) else None
    callee = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", None)
    return target.id, max(count, 1), callee


CONSTRUCTORS = {"Variable", "tensor", "Tensor", "FloatTensor", "DoubleTensor", "ones", "zeros", "full", "eye",
                "arange", "randn", "rand", "from_numpy", "ones_like", "zeros_like", "requires_grad_"}


def leaf_name(t, default):
    """The variable a user tensor was assigned to, when its line is `name = constructor(...)`."""
    a = assigned_name(t._source)
    return a[0] if a and a[2] in CONSTRUCTORS else default


def assigned_name(src):
    """(target name, operations in the statement, outermost callee) of the user's line
    `src` when it is a one-line assignment `name = ...`; else None. Each line is parsed
    once."""
    if src is None:
        return None
    return _assignment(src[0], src[1])


def name_from_source(eqns):
    """Name each value after the user variable its statement assigns (`z = y * y * 3`
    names the second multiply `z`); values inside a statement keep their op names. A run of
    consecutive equations from one line is one execution of it: the values that no later
    equation of the run reads are what the line assigns."""
    i = 0
    while i < len(eqns):
        src = eqns[i].src
        j = i + 1
        while j < len(eqns) and eqns[j].src == src:
            j += 1
        a = assigned_name(src and (src.file, src.line))
        if a is not None and not src.grad:  # a gradient is not the value the line assigns
            read = {id(x) for e in eqns[i + 1:j] for x in e.ins if isinstance(x, Var)}
            for e in eqns[i:j]:
                if e.op != "guard" and isinstance(e.out, Var) and id(e.out) not in read:
                    e.out.hint = a[0]
        i = j

"""Names from the user's source: a value is named after the variable its statement assigns
(`z = y * y * 3`), a leaf after the constructor call that made it (`w = tg.randn(3)`)."""
from __future__ import annotations

import ast
import functools

from .. import _state
from ..ir import Var

_OPERATIONS = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Subscript)


@functools.lru_cache(maxsize=4096)
def _statement(file, line):
    """(the one statement of the user's line, its indentation), or None."""
    import linecache

    text = linecache.getline(file, line)
    try:
        (node,) = ast.parse(text.strip()).body
    except Exception:  # a line of a longer statement, or not Python: fall back to op names
        return None
    return node, len(text) - len(text.lstrip())


@functools.lru_cache(maxsize=4096)
def _assignment(file, line):
    node = (_statement(file, line) or (None,))[0]
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        target, value = node.target, node.value
    else:
        return None
    if not isinstance(target, ast.Name) or value is None:
        return None
    count = sum(isinstance(n, _OPERATIONS) for n in ast.walk(value))
    return target.id, max(count, 1), _callee(value)


def _callee(value):
    f = value.func if isinstance(value, ast.Call) else None
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)


@functools.lru_cache(maxsize=4096)
def _unpacked(file, line):
    """((name, first column, end column, callee), ...) of the values of a line
    `w, b = tg.randn(3), tg.zeros(3)`, in the line's columns; else None."""
    node, indent = _statement(file, line) or (None, 0)
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple)
            and isinstance(node.value, ast.Tuple) and len(node.targets[0].elts) == len(node.value.elts)
            and all(isinstance(t, ast.Name) for t in node.targets[0].elts)):
        return None
    return tuple((t.id, indent + v.col_offset, indent + v.end_col_offset, _callee(v))
                 for t, v in zip(node.targets[0].elts, node.value.elts))


CONSTRUCTORS = {"Variable", "tensor", "Tensor", "FloatTensor", "DoubleTensor", "ones", "zeros", "full", "eye",
                "arange", "randn", "rand", "from_numpy", "ones_like", "zeros_like", "requires_grad_"}


def leaf_name(t, default):
    """The variable a user tensor was assigned to, when its line is `name = constructor(...)`
    or `a, b = constructor(...), constructor(...)` (the column of the call that made it,
    in its `_source`, tells which)."""
    src = t._source
    a = assigned_name(src)
    if a is not None:
        return a[0] if a[2] in CONSTRUCTORS else default
    parts = _unpacked(src[0], src[1]) if src is not None and len(src) == 3 else None
    for name, start, end, callee in parts or ():
        if start <= src[2] < end and callee in CONSTRUCTORS:
            return name
    return default


_state.unpacking = lambda file, line: _unpacked(file, line) is not None


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

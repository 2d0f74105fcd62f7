"""Which guards end a loop alone, read from the user's source (NOTE [loops]).

A trace sees the tensor decisions of a loop but not its Python state: a counter in
`while x.norm() < 10 and i < 3:`, the count of a `for _ in range(5):` around an `if`, a
`break` under `if i > 10:`. Rolling such a loop would let it run past where Python ends it,
so only two shapes of loop roll: `while <test>:` and `while True: ... if <test>: break`,
whose test is one tensor decision (no `and`, `or`, `... if ... else ...`, chained
comparison) and whose body has no other `break`, `return` or `raise`. And the iterations
must not change the Python state of the function's frame (a counter `i += 1` could decide
something after the iterations the trace saw: `h * 2 if i < 4 else h * 3`): the tracer
notes it at each decision (`python_state`) and a loop whose state changes stays unrolled.
"""
from __future__ import annotations

import ast
import functools
import linecache

import numpy as np

from ..tensor import Tensor

_VALUES = (int, float, bool, str, bytes, complex, type(None))
_SIZED = (list, dict, set)


def python_state(frame):
    """What the iterations of a loop in `frame` could hand each other outside the trace: its
    locals other than tensors, as values (numbers, strings; tuples of them), lengths and
    identities (lists, dicts, sets) or identities (anything else). Equal at every decision
    of a loop: its iterations changed no local Python state.

    >>> import sys
    >>> def at(i, xs):
    ...     return python_state(sys._getframe())
    >>> at(1, []) == at(1, []), at(1, []) == at(2, [])
    (True, False)
    """
    if frame is None:
        return ()
    return tuple((k, _state(v)) for k, v in frame.f_locals.items())


def _state(v):
    t = type(v)
    if t in _VALUES or isinstance(v, np.generic):
        return v
    if t is tuple:
        return tuple(_state(x) for x in v)
    if isinstance(v, Tensor):
        return None  # the trace follows tensors
    return (id(v), len(v)) if t in _SIZED else id(v)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def ends_loop_alone(src) -> bool:
    """Is the guard at `src` (an ir.Src) the only way out of the loop around it?

    >>> import os, tempfile
    >>> def check(code, line):
    ...     with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
    ...         f.write(code)
    ...     from transgrad.ir import Src
    ...     try:
    ...         return ends_loop_alone(Src(f.name, line))
    ...     finally:
    ...         os.unlink(f.name)
    >>> check("while y.norm() < 1000:\\n    y = y * 2\\n", 1)
    True
    >>> check("while y.norm() < 1000 and i < 3:\\n    y = y * 2\\n", 1)
    False
    >>> check("while True:\\n    y = y * 2\\n    if y.norm() > 9:\\n        break\\n", 3)
    True
    >>> check("for i in range(5):\\n    if y.norm() > 9:\\n        break\\n    y = y * 2\\n", 2)
    False
    >>> check("while True:\\n    y = y * 2\\n    if i > 3:\\n        if y.norm() > 9:\\n            break\\n", 4)
    False
    """
    if src is None:
        return False
    text = "".join(linecache.getlines(src.file))
    return bool(text) and _ends_alone(src.file, text, src.line)


@functools.lru_cache(maxsize=128)
def _parsed(file, text):
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    parent = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parent[child] = node
    return tree, parent


@functools.lru_cache(maxsize=1024)
def _ends_alone(file, text, line):
    parsed = _parsed(file, text)
    if parsed is None:
        return False
    tree, parent = parsed
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if not isinstance(node, (ast.While, ast.If)) or not test.lineno <= line <= test.end_lineno:
            continue
        if not _one_decision(test):
            return False
        if isinstance(node, ast.While):
            return not node.orelse and not _exits(node.body, None)
        # `if <test>: break` directly in a `while True:` (not under another `if`: a Python
        # condition there would decide whether the test is made at all)
        loop = parent.get(node)
        return (len(node.body) == 1 and isinstance(node.body[0], ast.Break) and not node.orelse
                and isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value is True
                and not loop.orelse and not _exits(loop.body, node.body[0]))
    return False


def _one_decision(test):
    return not any(isinstance(n, (ast.BoolOp, ast.IfExp)) or (isinstance(n, ast.Compare) and len(n.ops) > 1)
                   for n in ast.walk(test))


def _exits(body, allowed):
    """Does `body` hold a way out of its loop other than `allowed`: a `break` of this loop,
    a `return` or a `raise` (nested functions aside)?"""
    stack = [(n, False) for n in body]
    while stack:
        n, nested = stack.pop()
        if isinstance(n, _SCOPES):
            continue
        if isinstance(n, (ast.Return, ast.Raise)) or (isinstance(n, ast.Break) and not nested and n is not allowed):
            return True
        inner = nested or isinstance(n, _LOOPS)
        stack.extend((c, inner) for c in ast.iter_child_nodes(n))
    return False


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


# Python that decides, ends early or keeps state out of the trace's sight, in a loop body
_DECIDES = (ast.If, ast.IfExp, ast.BoolOp, ast.While, ast.For, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp,
            ast.GeneratorExp, ast.Try, ast.Match, ast.Break, ast.Continue, ast.Return, ast.Raise, ast.Assert,
            ast.Yield, ast.YieldFrom, ast.Await, ast.Delete, ast.Global, ast.Nonlocal, ast.Lambda, ast.FunctionDef,
            ast.AsyncFunctionDef, ast.ClassDef, ast.Attribute, ast.Subscript)
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
def _tree(file, text):
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


@functools.lru_cache(maxsize=128)
def _parsed(file, text):
    tree = _tree(file, text)
    if tree is None:
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


def range_bounds(fn) -> dict:
    """{parameter: (line of the `for`, first and last line of its body, its target, the names
    it indexes)} for the parameters of `fn` that only bound a loop, so that the loop may run
    any number of times in one program (NOTE [loops]): `for t in range(n):` directly in fn's
    body, n read nowhere else and never assigned, t read only as an index of a name (`xs[t]`;
    the tracer checks that xs is a tensor, not a list) and only in the loop, and a body
    without Python decisions, early exits or stores into objects (attributes, items).

    >>> def rnn(xs, h, n):
    ...     for t in range(n):
    ...         h = (xs[t] + h).tanh()
    ...     return h
    >>> def scaled(h, n):
    ...     for i in range(n):
    ...         h = h * i
    ...     return h
    >>> [list(range_bounds(f)) for f in (rnn, scaled)]
    [['n'], []]
    """
    code = getattr(fn, "__code__", None)
    if code is None or "range" not in code.co_names:  # no `range(...)` in it: nothing to read
        return {}
    text = "".join(linecache.getlines(code.co_filename))
    return dict(_bounds(code.co_filename, text, code.co_firstlineno, code.co_name)) if text else {}


@functools.lru_cache(maxsize=128)
def _bounds(file, text, first, name):
    tree = _tree(file, text)
    fn = tree and next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                          and n.name == name and min([n.lineno] + [d.lineno for d in n.decorator_list]) == first), None)
    if fn is None:
        return ()
    params = {a.arg for a in fn.args.posonlyargs + fn.args.args}
    names = [x for x in ast.walk(fn) if isinstance(x, ast.Name)]
    out = []
    for loop in fn.body:
        it = getattr(loop, "iter", None)
        if not (isinstance(loop, ast.For) and not loop.orelse and isinstance(loop.target, ast.Name)
                and isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and len(it.args) == 1 and not it.keywords and isinstance(it.args[0], ast.Name)
                and it.args[0].id in params):
            continue
        n, t = it.args[0].id, loop.target.id
        inside = {id(x) for s in loop.body for x in ast.walk(s)}
        subs = [sub for s in loop.body for sub in ast.walk(s) if isinstance(sub, ast.Subscript)
                and isinstance(sub.ctx, ast.Load) and any(isinstance(x, ast.Name) and x.id == t
                                                          for x in ast.walk(sub.slice))]
        indexes = {id(x) for sub in subs for x in ast.walk(sub.slice)}
        indexed = tuple(sorted({sub.value.id for sub in subs if isinstance(sub.value, ast.Name)}))
        if (sum(x.id == n for x in names) == 1 and all(id(x) in indexes for x in names if x.id == t and x is not loop.target)
                and not any(isinstance(x, _DECIDES) and not (isinstance(x, (ast.Attribute, ast.Subscript))
                                                             and isinstance(x.ctx, ast.Load))
                            for s in loop.body for x in ast.walk(s))
                and all(id(x) in inside or x is loop.target for x in names if x.id == t)
                and all(isinstance(sub.value, ast.Name) for sub in subs)):
            out.append((n, (loop.lineno, loop.body[0].lineno, loop.end_lineno, t, indexed)))
    return tuple(out)

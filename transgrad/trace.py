"""The tracer: records every primitive a run executes as IR, with the user's source lines.

Values stay concrete while tracing (each op also runs), so shapes, dtypes and the
decisions of data-dependent Python control flow are known exactly.
"""
from __future__ import annotations

import contextlib
import functools

import libcst as cst

from . import tensor as T
from ._state import mode, user_src
from .ir import Eqn, Lit, Src, Var


class TraceError(RuntimeError):
    pass


class Tracer:
    def __init__(self, src=None):
        self.eqns = []
        self.inputs = []
        self.vars = {}  # id(Tensor) -> Var
        self.keep = []  # traced tensors stay alive so that their ids stay unique
        self.src = src  # fixed source for every eqn; None = the user's current line

    def placeholder(self, data, hint):
        t = T._new(data)
        v = Var(t.shape, t.dtype, hint)
        self.inputs.append(v)
        self.vars[id(t)] = v
        self.keep.append(t)
        return t

    def var(self, t):
        v = self.vars.get(id(t))
        if v is None:
            v = self.capture(t)
        return v

    def capture(self, t):
        raise TraceError(
            f"a tensor of shape {t.shape} that is not an input of this trace was used; "
            "backward rules may only use their arguments")

    def record(self, op, args, params, out):
        vars_ = self.vars
        ins = []
        for a in args:
            if isinstance(a, T.Tensor):
                v = vars_.get(id(a))
                ins.append(v if v is not None else self.capture(a))
            else:
                ins.append(Lit(a))
        v = Var(out.shape, out.dtype, op.name)
        self.vars[id(out)] = v
        self.keep.append(out)
        src = self.src
        if src is None:
            s = user_src()
            src = s and Src(*s)
        self.eqns.append(Eqn(op.name, tuple(ins), tuple(params.items()), v, src))

    def alias(self, new, old):
        v = self.vars.get(id(old))
        if v is not None:
            self.vars[id(new)] = v
            self.keep.append(new)

    def constant(self, t):
        pass

    def concretize(self, t, how):
        raise TraceError(f"{how}() of a traced value: backward rules may not branch on tensor values")


@contextlib.contextmanager
def tracing(tracer):
    prev, mode.tracer = mode.tracer, tracer
    prev_grad, mode.grad_enabled = mode.grad_enabled, False
    try:
        yield tracer
    finally:
        mode.tracer, mode.grad_enabled = prev, prev_grad


# ---- names from the user's source -----------------------------------------------------------
class _Assignments(cst.CSTVisitor):
    """line -> (target name, operations in the assigned expression, outermost callee)."""

    METADATA_DEPENDENCIES = (cst.metadata.PositionProvider,)

    def __init__(self):
        self.lines = {}

    def _record(self, node, target, value):
        if isinstance(target, cst.Name) and value is not None:
            pos = self.get_metadata(cst.metadata.PositionProvider, node)
            counter = _OpCounter()
            value.visit(counter)
            callee = value.func if isinstance(value, cst.Call) else None
            callee = callee.attr.value if isinstance(callee, cst.Attribute) else getattr(callee, "value", None)
            for line in range(pos.start.line, pos.end.line + 1):
                self.lines[line] = (target.value, max(counter.n, 1), callee)

    def visit_Assign(self, node):
        if len(node.targets) == 1:
            self._record(node, node.targets[0].target, node.value)

    def visit_AnnAssign(self, node):
        self._record(node, node.target, node.value)

    def visit_AugAssign(self, node):
        self._record(node, node.target, node.value)


class _OpCounter(cst.CSTVisitor):
    def __init__(self):
        self.n = 0

    def visit_BinaryOperation(self, node):
        self.n += 1

    def visit_UnaryOperation(self, node):
        self.n += 1

    def visit_Call(self, node):
        self.n += 1

    def visit_Subscript(self, node):
        self.n += 1


@functools.lru_cache(maxsize=64)
def _assignments(filename):
    import linecache

    text = "".join(linecache.getlines(filename))
    if not text:
        return {}
    try:
        wrapper = cst.MetadataWrapper(cst.parse_module(text))
    except Exception:  # not parseable (e.g. an interactive session): fall back to op names
        return {}
    visitor = _Assignments()
    wrapper.visit(visitor)
    return visitor.lines


def assigned_name(src):
    """(name, ops in the statement, outermost callee) assigned on the user's line `src`."""
    if src is None:
        return None
    return _assignments(src[0]).get(src[1])

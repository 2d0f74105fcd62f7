"""Graph -> Python source, built from LibCST nodes only (NOTE [templates]).

Each equation becomes one statement `out = <template filled with names>`, followed on
the same line by `del` of the values it read for the last time. A group of equations
that came from one user source line gets a comment naming that line.
"""
from __future__ import annotations

import libcst as cst

from ..index import Arr, Sl
from ..ir import Graph, Lit, Var
from ..ops import OPS
from ..backends.numpy import HELPERS
from ..passes import last_uses
from .names import Namespace
from .template import literal

HELPER_NAMES = tuple(HELPERS)
_SEMI = cst.Semicolon(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("  "))


def _index_elements(spec, args):
    def el(i):
        if type(i) is Sl:
            return cst.Slice(*(None if x is None else literal(x) for x in i))
        if type(i) is Arr:
            return cst.Index(args[i.k])
        return cst.Index(cst.Ellipsis() if i is Ellipsis else literal(i))

    if not spec:
        return cst.Tuple([])
    return [cst.SubscriptElement(el(i)) for i in spec]


def expression(op, args, params, xp="xp"):
    """The filled template of primitive `op` on argument nodes `args`."""
    row = OPS[op]
    fixed = row.inputs[:-1] if row.variadic else row.inputs
    subs = dict(zip(fixed, args))
    rest = args[len(fixed):]
    if row.variadic:
        subs[row.inputs[-1]] = cst.List([cst.Element(a) for a in rest])
    for k, v in params.items():
        subs[k] = _index_elements(v, rest) if k == "index" else literal(v, xp)
    return row.tpl.fill(subs)


def _comment(text):
    return cst.EmptyLine(comment=cst.Comment("# " + "".join(c if c.isprintable() else " " for c in text)))


def emit(graph: Graph, name: str, comment: str = "grad of", names: dict | None = None) -> str:
    """Source text of `def name(<inputs>): ...` computing `graph` with `xp` ops.

    >>> from transgrad.ir import Var, Eqn, Graph, Lit
    >>> x = Var((2,), "float32", "x"); y = Var((2,), "float32", "y")
    >>> print(emit(Graph((x,), (Eqn("mul", (x, Lit(2)), (), y),), (y,)), "double"), end="")
    def double(x):
        y = x * 2;  del x
        return y
    """
    ns = Namespace(reserved=HELPER_NAMES)
    nm = {} if names is None else names
    for v in graph.inputs:
        nm[id(v)] = ns.create(v.hint)

    def node(x):
        if isinstance(x, Var):
            return cst.Name(nm[id(x)])
        return literal(x.value)

    dels = last_uses(graph)
    body, prev_src = [], object()
    for i, e in enumerate(graph.eqns):
        expr = expression(e.op, [node(x) for x in e.ins], e.kw)
        nm[id(e.out)] = ns.create(e.out.hint)
        small = [cst.Assign([cst.AssignTarget(cst.Name(nm[id(e.out)]))], expr, semicolon=_SEMI if i in dels else cst.MaybeSentinel.DEFAULT)]
        if i in dels:
            targets = [cst.Name(nm[id(v)]) for v in dels[i]]
            small.append(cst.Del(targets[0] if len(targets) == 1 else cst.Tuple([cst.Element(t) for t in targets], lpar=[], rpar=[])))
        lead = []
        if e.src is not None and e.src != prev_src:
            text = e.src.text
            lead = [_comment(f"{comment}: {text}  [{e.src}]" if text else f"{comment}: [{e.src}]")]
        prev_src = e.src
        body.append(cst.SimpleStatementLine(small, leading_lines=lead))
    outs = [cst.Name("None") if x is None else node(x) for x in graph.outputs]
    ret = outs[0] if len(outs) == 1 else cst.Tuple([cst.Element(o) for o in outs])
    body.append(cst.SimpleStatementLine([cst.Return(ret)]))
    params = cst.Parameters([cst.Param(cst.Name(nm[id(v)])) for v in graph.inputs])
    fn = cst.FunctionDef(cst.Name(name), params, cst.IndentedBlock(body))
    return cst.Module([fn]).code


def impl_source(op) -> str:
    """`def add_impl(a, b): return a + b`: the eager form of a primitive, from its template."""
    args = {n: cst.Name(n) for n in op.inputs + op.params}
    star = op.inputs[-1] if op.variadic else None
    pos = [cst.Param(cst.Name(n)) for n in op.inputs if n != star]
    params = cst.Parameters(
        pos,
        star_arg=cst.Param(cst.Name(star)) if star else (cst.ParamStar() if op.params else cst.MaybeSentinel.DEFAULT),
        kwonly_params=[cst.Param(cst.Name(n)) for n in op.params],
    )
    body = cst.IndentedBlock([cst.SimpleStatementLine([cst.Return(op.tpl.fill(args))])])
    return cst.Module([cst.FunctionDef(cst.Name(op.name + "_impl"), params, body)]).code


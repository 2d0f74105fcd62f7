"""Graph -> Python source, built from LibCST nodes only (NOTE [templates]).

Each equation becomes one statement `out = <template filled with names>`, followed on
the same line by `del` of the values it read for the last time. A group of equations
that came from one user source line gets a comment naming that line (`# grad of: ...`
for the equations of its gradient).
"""
from __future__ import annotations

import functools
import re

import libcst as cst

from ..index import Arr, Mask, Sl, mask_counts
from ..ir import Graph, Src, Var
from ..ops import OPS
from ..passes import last_uses
from .names import Namespace
from .template import literal, parsed

_SEMI = cst.Semicolon(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("  "))


def _index_elements(spec, args):
    def el(i):
        if type(i) is Sl:
            return cst.Slice(*(None if x is None else literal(x) for x in i))
        if type(i) in (Arr, Mask):
            return cst.Index(args[i.k])
        return cst.Index(cst.Ellipsis() if i is Ellipsis else literal(i))

    if not spec:
        return cst.Tuple([])
    return [cst.SubscriptElement(el(i)) for i in spec]


def expression(op, args, params, spelling="numpy"):
    """The filled template of primitive `op` on argument nodes `args`, in a backend's
    `spelling` of it (the row's `numpy=` or `jax=` form where it has one)."""
    row = OPS[op]
    if "into" in params:  # NOTE [buffer reuse]: xp.<ufunc>(*args, out=<the dying input>)
        tight = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
        call_args = [cst.Arg(a) for a in args] + [cst.Arg(args[params["into"]], keyword=cst.Name("out"), equal=tight)]
        return cst.Call(cst.Attribute(cst.Name("xp"), cst.Name(row.ufunc)), call_args)
    tpl = parsed(row.spellings[spelling])
    fixed = row.inputs[:-1] if row.variadic else row.inputs
    subs = dict(zip(fixed, args))
    rest = args[len(fixed):]
    if row.variadic:
        subs[row.inputs[-1]] = cst.List([cst.Element(a) for a in rest])
    for k, v in params.items():
        subs[k] = _index_elements(v, rest) if k == "index" else literal(v)
        if k == "index" and "mask_counts" in tpl.names:  # XLA needs the masks' static sizes
            subs["mask_counts"] = literal(mask_counts(v))
    return tpl.fill(subs)


@functools.lru_cache(maxsize=4096)
def _comment(src):
    """`# [grad of: ]<the user's line>  [file:line]`, printed by LibCST once per source line;
    one such line for each line whose operations a pass folded into the next statement."""
    out = []
    for s, n in src.parts():
        text = s.text
        lead = "grad of: " if s.grad else ""
        note = f"{lead}{text}  [{s}]" if text else f"{lead}[{s}]"
        if n > 1:
            note += f"  ({n} times, folded)"
        node = cst.EmptyLine(comment=cst.Comment("# " + "".join(c if c.isprintable() else " " for c in note)))
        out.append("    " + _MODULE.code_for_node(node))
    return "".join(out)


# NOTE [printing]: LibCST prints each distinct statement *shape* once (op, params, literal
# arguments, number of freed values), with sentinel names `__tg_<k>__`; statements of the
# same shape reuse that text with their own names put in the sentinels' places. Names come
# from `Namespace` (valid, non-reserved identifiers) and literals are part of the shape,
# so all code structure is LibCST's, while a 10,000-statement function prints in
# milliseconds instead of seconds.
_SENTINEL = re.compile(r"__tg_(\d+)__")
_printed: dict = {}


def _sentinel(k):
    return cst.Name(f"__tg_{k}__")


def _shape_args(ins):
    """The shape signature of an equation's inputs (literals count, Var names do not), and
    the argument nodes: sentinels 1, 2, ... for the Vars, literal nodes for the rest."""
    argsig = tuple(None if isinstance(x, Var) else (type(x.value), repr(x.value)) for x in ins)
    k = iter(range(1, len(ins) + 1))
    return argsig, [_sentinel(next(k)) if isinstance(x, Var) else literal(x.value) for x in ins]


def _del(first, n):
    """`del` of the n sentinels from number `first` on."""
    targets = [_sentinel(first + j) for j in range(n)]
    return cst.Del(targets[0] if n == 1 else cst.Tuple([cst.Element(t) for t in targets], lpar=[], rpar=[]))


def _guard_text(test, kw, first_del, ndel):
    """A guard's check (NOTE [guards]), then its `del` on a line of its own."""
    code = _MODULE.code_for_node(_guard_statement(test, kw["expected"], kw["index"]))
    if ndel:
        code += "    " + _MODULE.code_for_node(cst.SimpleStatementLine([_del(first_del, ndel)]))
    return _format(code)


def _statement_shape(e, ndel, spelling):
    argsig, args = _shape_args(e.ins)
    key = (spelling, e.op, e.params, argsig, ndel)
    text = _printed.get(key)
    if text is None:
        first_del = 1 + sum(a is None for a in argsig)
        if e.op == "guard":  # `if not lt: raise GuardFailed(0)`
            text = _printed[key] = _guard_text(args[0], e.kw, first_del, ndel)
            return text
        semi = _SEMI if ndel else cst.MaybeSentinel.DEFAULT
        small = [cst.Assign([cst.AssignTarget(_sentinel(0))], expression(e.op, args, e.kw, spelling), semicolon=semi)]
        if ndel:
            small.append(_del(first_del, ndel))
        text = _printed[key] = _format(_MODULE.code_for_node(cst.SimpleStatementLine(small)))
    return text


def _format(code):
    """Printed code with sentinels -> a str.format pattern whose fields are the sentinels."""
    parts = _SENTINEL.split(code)  # literal text at even positions, sentinel numbers at odd
    return "".join(p.replace("{", "{{").replace("}", "}}") if i % 2 == 0 else "{" + p + "}"
                   for i, p in enumerate(parts))


def _fused_guard_shape(cmp, guard, ndel, spelling):
    """`if not norm < 1000: raise GuardFailed(0)`: a comparison only its guard reads, inlined."""
    argsig, args = _shape_args(cmp.ins)
    key = ("fused", spelling, cmp.op, cmp.params, argsig, guard.params, ndel)
    text = _printed.get(key)
    if text is None:
        test = expression(cmp.op, args, cmp.kw, spelling)
        text = _printed[key] = _guard_text(test, guard.kw, 1 + sum(a is None for a in argsig), ndel)
    return text


def _guard_statement(value, expected, index):
    """The inline check of a guard: a test on the traced value that raises GuardFailed."""
    if isinstance(expected, bool):
        test = cst.UnaryOperation(cst.Not(), value) if expected else value
    else:
        item = cst.Call(cst.Attribute(value, cst.Name("item")))
        if expected != expected:  # NaN: the value must be NaN again
            test = cst.Comparison(item, [cst.ComparisonTarget(cst.Equal(), item)])
        else:
            got = cst.Call(cst.Name("int"), [cst.Arg(item)]) if isinstance(expected, int) else item
            test = cst.Comparison(got, [cst.ComparisonTarget(cst.NotEqual(), literal(expected))])
    # a value guard reports what the program computed (NOTE [decisions]); a bool's is the other one
    got = [] if isinstance(expected, bool) else [cst.Arg(item)]
    fail = cst.Raise(cst.Call(cst.Name("GuardFailed"), [cst.Arg(literal(index))] + got))
    return cst.If(test, cst.SimpleStatementSuite([fail]))


_MODULE = cst.Module([])


def _call_statement(e, name_of, ns, dying, bound):
    """`g_x, g_w = tutorial_backward(g_out, y)`: a call of another generated function, bound
    as a global of this one (NOTE [shown is run])."""
    callee = e.kw["fn"]
    fname = next((n for n, v in bound.items() if v is callee), None) or ns.create(callee.name)
    bound[fname] = callee
    for o in e.outs:
        name_of[id(o)] = ns.create(o.hint)
    targets = [cst.Name(name_of[id(o)]) for o in e.outs]
    target = targets[0] if len(targets) == 1 else cst.Tuple([cst.Element(t) for t in targets], lpar=[], rpar=[])
    call = cst.Call(cst.Name(fname), [cst.Arg(cst.Name(name_of[id(x)]) if type(x) is Var else literal(x.value))
                                      for x in e.ins])
    small = [cst.Assign([cst.AssignTarget(target)], call, semicolon=_SEMI if dying else cst.MaybeSentinel.DEFAULT)]
    if dying:
        names = [cst.Name(name_of[id(v)]) for v in dying]
        small.append(cst.Del(names[0] if len(names) == 1 else cst.Tuple([cst.Element(n) for n in names], lpar=[], rpar=[])))
    return "    " + _MODULE.code_for_node(cst.SimpleStatementLine(small))


def emit(graph: Graph, name: str, spelling="numpy", reserved=(), constants=(), bound=None,
         as_tuple=False) -> str:
    """Source text of `def name(<inputs>): ...` computing `graph` with `xp` ops, in a
    backend's `spelling` of the op table; `reserved` are names the code must not take (the
    backend's helpers).

    Inputs listed in `constants` are not parameters: they are read as module globals, and
    `bound` (a dict) receives each one's name, as it does each called function's (Callee)
    (FX's "source plus globals").

    >>> from transgrad.ir import Var, Eqn, Graph, Lit
    >>> x, y, z, w = (Var((2,), "float32", n) for n in "xyzw")
    >>> g = Graph((x,), (Eqn("mul", (x, Lit(2)), (), y), Eqn("sin", (y,), (), z), Eqn("mul", (z, z), (), w)), (w,))
    >>> print(emit(g, "f"), end="")
    def f(x):
        y = x * 2
        z = xp.sin(y);  del y
        w = z * z
        return w
    """
    ns = Namespace(reserved=reserved)
    name_of = {id(v): ns.create(v.hint) for v in graph.inputs}
    consts = {id(v) for v in constants}
    params = {id(v) for v in graph.inputs}
    outputs = {id(x) for x in graph.outputs if isinstance(x, Var)}
    bound = {} if bound is None else bound
    bound.update({name_of[id(v)]: v for v in graph.inputs if id(v) in consts})
    dels = last_uses(graph)
    uses = {}
    for e in graph.eqns:
        for x in e.ins:
            if type(x) is Var:
                uses[id(x)] = uses.get(id(x), 0) + 1
    lines, prev_src, eqns, skip = [], object(), graph.eqns, False
    for i, e in enumerate(eqns):
        if skip:  # the guard was emitted with its comparison
            skip = False
            continue
        if e.src is not None and e.src != prev_src:
            # a line just named above is not named again (a folded statement ends with it)
            same = prev_src is not None and type(prev_src) is Src and prev_src.parts()[-1][0] == e.src
            if not same:
                lines.append(_comment(e.src))
        prev_src = e.src
        nxt = eqns[i + 1] if i + 1 < len(eqns) else None
        fused = (e.op not in ("guard", "call") and OPS[e.op].comparison and nxt is not None and nxt.op == "guard"
                 and nxt.ins[0] is e.out and uses[id(e.out)] == 1 and e.out.shape == () and id(e.out) not in outputs)
        last = i == len(eqns) - (2 if fused else 1)
        # `del` frees what this function holds (NOTE [liveness])
        dying = [v for v in dels.get(i, ()) + (dels.get(i + 1, ()) if fused else ())
                 if id(v) not in params and v.shape != () and v not in e.outs and not last]
        names = [name_of[id(x)] for x in e.ins if type(x) is Var]
        if fused:
            skip = True
            names += [name_of[id(v)] for v in dying]
            lines.append("    " + _fused_guard_shape(e, nxt, len(dying), spelling).format("", *names))
            continue
        if e.op == "call":
            lines.append(_call_statement(e, name_of, ns, dying, bound))
            continue
        reuse = None
        if e.op != "guard":  # `y = y * 2`: a value dying here hands its name to a result of its name
            reuse = next((v for v in dels.get(i, ()) if v.hint == e.out.hint and id(v) not in consts
                          and v is not e.out), None)
            if reuse is not None:
                dying = [v for v in dying if v is not reuse]
                name_of[id(e.out)] = name_of[id(reuse)]
        names += [name_of[id(v)] for v in dying]
        if e.op != "guard" and reuse is None:
            name_of[id(e.out)] = ns.create(e.out.hint)
        names.insert(0, name_of.get(id(e.out), ""))
        lines.append("    " + _statement_shape(e, len(dying), spelling).format(*names))
    outs = [cst.Name("None") if x is None else (cst.Name(name_of[id(x)]) if isinstance(x, Var) else literal(x.value))
            for x in graph.outputs]
    single = len(outs) == 1 and not as_tuple
    ret = cst.SimpleStatementLine([cst.Return(outs[0] if single else cst.Tuple([cst.Element(o) for o in outs]))])
    params = cst.Parameters([cst.Param(cst.Name(name_of[id(v)])) for v in graph.inputs if id(v) not in consts])
    header, tail = _MODULE.code_for_node(cst.FunctionDef(cst.Name(name), params, cst.IndentedBlock([ret]))).split("\n", 1)
    return header + "\n" + "".join(lines) + tail


def impl_source(op, spelling="numpy") -> str:
    """`def add_impl(a, b): return a + b`: the eager form of a primitive, from its template."""
    args = {n: cst.Name(n) for n in op.inputs + op.params}
    star = op.inputs[-1] if op.variadic else None
    pos = [cst.Param(cst.Name(n)) for n in op.inputs if n != star]
    params = cst.Parameters(
        pos,
        star_arg=cst.Param(cst.Name(star)) if star else (cst.ParamStar() if op.params else cst.MaybeSentinel.DEFAULT),
        kwonly_params=[cst.Param(cst.Name(n)) for n in op.params],
    )
    tpl = parsed(op.spellings[spelling])
    body = cst.IndentedBlock([cst.SimpleStatementLine([cst.Return(tpl.fill(args))])])
    return cst.Module([cst.FunctionDef(cst.Name(op.name + "_impl"), params, body)]).code


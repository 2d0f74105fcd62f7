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
from ..ir import LOOPS, Graph, Src, Var
from ..ops import OPS
from ..passes import dce, last_uses
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
    """The shape signature of an equation's inputs: literals count, Var names do not."""
    return tuple(None if type(x) is Var else (type(x.value), repr(x.value)) for x in ins)


def _arg_nodes(ins):
    """The argument nodes of a shape being printed: sentinels 1, 2, ... for the Vars,
    literal nodes for the rest."""
    k = iter(range(1, len(ins) + 1))
    return [_sentinel(next(k)) if type(x) is Var else literal(x.value) for x in ins]


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
    argsig = _shape_args(e.ins)
    key = (spelling, e.op, e.params, argsig, ndel)
    text = _printed.get(key)
    if text is None:
        args = _arg_nodes(e.ins)
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
    argsig = _shape_args(cmp.ins)
    key = ("fused", spelling, cmp.op, cmp.params, argsig, guard.params, ndel)
    text = _printed.get(key)
    if text is None:
        test = expression(cmp.op, _arg_nodes(cmp.ins), cmp.kw, spelling)
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
    bound = {} if bound is None else bound
    bound.update({name_of[id(v)]: v for v in graph.inputs if id(v) in consts})
    block = _Block(name_of, ns, bound, spelling)
    lines = block.statements(graph, kept={id(v) for v in graph.inputs}, fixed=consts, indent="    ", last_del=False)
    outs = [cst.Name("None") if x is None else (cst.Name(name_of[id(x)]) if isinstance(x, Var) else literal(x.value))
            for x in graph.outputs]
    counts = {id(e.outs[e.kw["carried"]]) for e in graph.eqns if e.op == "while"}
    outs = [cst.Call(cst.Attribute(cst.Name("xp"), cst.Name("asarray")), [cst.Arg(o)]) if id(x) in counts else o
            for o, x in zip(outs, graph.outputs)]  # a loop's trip count leaves as an array
    single = len(outs) == 1 and not as_tuple
    ret = cst.SimpleStatementLine([cst.Return(outs[0] if single else cst.Tuple([cst.Element(o) for o in outs]))])
    params = cst.Parameters([cst.Param(cst.Name(name_of[id(v)])) for v in graph.inputs if id(v) not in consts])
    header, tail = _MODULE.code_for_node(cst.FunctionDef(cst.Name(name), params, cst.IndentedBlock([ret]))).split("\n", 1)
    return header + "\n" + "".join(lines) + tail


class _Block:
    """Prints a graph's equations as statements (a function's, or a loop body's): the names
    of one function, the globals it binds and the backend's spelling are shared."""

    def __init__(self, name_of, ns, bound, spelling):
        self.name_of, self.ns, self.bound, self.spelling = name_of, ns, bound, spelling

    def statements(self, graph, kept, fixed, indent, last_del=True, src=None):
        """Lines of `graph`'s equations. Values in `kept` are never deleted (parameters; a
        loop body's inputs), names in `fixed` never taken over by a result (constants; a
        body's invariants, whose names the next iteration reads)."""
        name_of, ns = self.name_of, self.ns
        outputs = {id(x) for x in graph.outputs if isinstance(x, Var)}
        dels = last_uses(graph)
        uses = {}
        for e in graph.eqns:
            for x in e.ins:
                if type(x) is Var:
                    uses[id(x)] = uses.get(id(x), 0) + 1
        lines, prev_src, eqns, skip = [], src or object(), graph.eqns, False
        for i, e in enumerate(eqns):
            if skip:  # the guard was emitted with its comparison
                skip = False
                continue
            if e.src is not None and e.src != prev_src:
                # a line just named above is not named again (a folded statement ends with it)
                same = prev_src is not None and type(prev_src) is Src and prev_src.parts()[-1][0] == e.src
                if not same:
                    lines.append(_indented(_comment(e.src), indent))
            prev_src = e.src
            nxt = eqns[i + 1] if i + 1 < len(eqns) else None
            fused = (e.op in OPS and OPS[e.op].comparison and nxt is not None and nxt.op in ("guard", "exit")
                     and nxt.ins[0] is e.out and uses[id(e.out)] == 1 and e.out.shape == () and id(e.out) not in outputs)
            last = not last_del and i == len(eqns) - (2 if fused else 1)
            # `del` frees what this function holds (NOTE [liveness])
            dying = [v for v in dels.get(i, ()) + (dels.get(i + 1, ()) if fused else ())
                     if id(v) not in kept and v.shape != () and v not in e.outs and not last]
            names = [name_of[id(x)] for x in e.ins if type(x) is Var]
            if fused:
                skip = True
                names += [name_of[id(v)] for v in dying]
                text = (_fused_guard_shape(e, nxt, len(dying), self.spelling) if nxt.op == "guard"
                        else _exit_shape(e, nxt.kw["stop"], len(dying), self.spelling))
                lines.append(indent + text.format("", *names))
                continue
            if e.op == "call":
                lines.append(_indented(_call_statement(e, name_of, ns, dying, self.bound), indent))
                continue
            if e.op in LOOPS:
                lines += _loop_lines(self, e, [v for v in dels.get(i, ()) if id(v) not in kept], fixed, indent)
                continue
            if e.op == "exit":
                lines.append(indent + _exit_shape(None, e.kw["stop"], len(dying), self.spelling).format(
                    "", *names, *[name_of[id(v)] for v in dying]))
                continue
            reuse = None
            if e.op != "guard":  # `y = y * 2`: a value dying here hands its name to a result of its name
                reuse = next((v for v in dels.get(i, ()) if v.hint == e.out.hint and id(v) not in fixed
                              and v is not e.out), None)
                if reuse is not None:
                    dying = [v for v in dying if v is not reuse]
                    name_of[id(e.out)] = name_of[id(reuse)]
            names += [name_of[id(v)] for v in dying]
            if e.op != "guard" and reuse is None:
                name_of[id(e.out)] = ns.create(e.out.hint)
            names.insert(0, name_of.get(id(e.out), ""))
            lines.append(indent + _statement_shape(e, len(dying), self.spelling).format(*names))
        return lines


def _indented(text, indent):
    """Lines printed at the top level of a function (4 spaces), moved to `indent`."""
    return "".join(indent + line[4:] if line.startswith("    ") else line for line in text.splitlines(keepends=True))


def _exit_shape(cmp, stop, ndel, spelling):
    """`if not lt: break` (with its comparison `cmp` inlined, when only the test reads it)."""
    if cmp is None:
        key = ("exit", stop, ndel)
        first_del = 2
    else:
        argsig = _shape_args(cmp.ins)
        key = ("exit", stop, spelling, cmp.op, cmp.params, argsig, ndel)
        first_del = 1 + sum(a is None for a in argsig)
    text = _printed.get(key)
    if text is None:
        test = _sentinel(1) if cmp is None else expression(cmp.op, _arg_nodes(cmp.ins), cmp.kw, spelling)
        test = test if stop else cst.UnaryOperation(cst.Not(), test)
        code = _MODULE.code_for_node(cst.If(test, cst.SimpleStatementSuite([cst.Break()])))
        if ndel:
            code += "    " + _MODULE.code_for_node(cst.SimpleStatementLine([_del(first_del, ndel)]))
        text = _printed[key] = _format(code)
    return text


def _line(node, indent):
    """One statement built from LibCST nodes, printed at `indent`."""
    return indent + _MODULE.code_for_node(node)


def _assign(targets, values, indent):
    """`a, b = c, d` (nothing where every name is already its value's)."""
    pairs = [(t, v) for t, v in zip(targets, values) if t != v]
    if not pairs:
        return []
    return [_stmt(cst.Assign([cst.AssignTarget(_tuple([t for t, _ in pairs]))], _tuple([v for _, v in pairs])), indent)]


def _tuple(names):
    """`a, b` (or `a`)."""
    if len(names) == 1:
        return cst.Name(names[0])
    return cst.Tuple([cst.Element(cst.Name(n)) for n in names], lpar=[], rpar=[])


def _op(a, op, b):
    """`a <op> b`, an int `b` written as a literal."""
    return cst.BinaryOperation(a, op, cst.Integer(str(b)) if isinstance(b, int) else b)


def _pack(nodes):
    """`(a, b)` (or `a`): a loop's state."""
    return nodes[0] if len(nodes) == 1 else cst.Tuple([cst.Element(x) for x in nodes])


def _stmt(node, indent):
    return _line(cst.SimpleStatementLine([node]), indent)


def _def(name, params, indent):
    """`def name(params):` (its body follows, one level deeper)."""
    node = cst.FunctionDef(cst.Name(name), cst.Parameters([cst.Param(cst.Name(p)) for p in params]),
                           cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])]))
    return indent + _MODULE.code_for_node(node).split("\n", 1)[0] + "\n"


def _taken_over(x, o, dying, fixed, block, read_inside):
    """The name of a loop's result `o`: its start value's, when that dies at the loop (and
    the loop reads it as nothing else)."""
    if type(x) is Var and any(v is x for v in dying) and id(x) not in fixed and id(x) not in read_inside:
        dying[:] = [v for v in dying if v is not x]
        return block.name_of[id(x)]
    return block.ns.create(o.hint)


def _lax_loop_lines(block, e, dying, fixed, indent):
    """A loop equation for XLA (NOTE [loops]): `lax.while_loop` over functions of the carried
    state, its saved values written into buffers of the loop's capacity; `for_reversed` as
    `lax.fori_loop` reading them backwards. Invariants are read from the enclosing function."""
    name_of, ns = block.name_of, block.ns
    body, k = e.kw["body"], e.kw["carried"]
    loop = e.op == "while"
    ins = e.ins if loop else e.ins[1:]
    s = 0 if loop else e.kw["stacked"]
    invariant_at = len(body.inputs) - (len(ins) - k - s)
    for bv, x in zip(body.inputs[invariant_at:], ins[k + s:]):
        name_of[id(bv)] = name_of[id(x)]
    body_fixed = {id(v) for v in body.inputs[invariant_at:]} | fixed
    kept = {id(v) for v in body.inputs}
    inner = indent + "    "
    carried = [ns.create(bv.hint) for bv in body.inputs[:k]]
    for bv, n in zip(body.inputs[:k], carried):
        name_of[id(bv)] = n
    lines = []
    if loop:
        count, cap = ns.create("trips"), e.kw.get("capacity")
        stacks = [ns.create(o.hint) for o in e.outs[k + 1:]]
        state = carried + [count] + stacks
        test_fn, body_fn = ns.create("loop_test"), ns.create("loop_body")
        exit_at = next(j for j, q in enumerate(body.eqns) if q.op == "exit")
        test = body.eqns[exit_at].ins[0]
        # def loop_test(state): the loop's test (and room left in the buffers)
        lines.append(_def(test_fn, ["state"], indent))
        lines.append(_stmt(cst.Assign([cst.AssignTarget(_tuple(state))], cst.Name("state")), inner))
        pre = Graph(body.inputs, body.eqns[:exit_at], (test,))
        lines += block.statements(pre, kept, body_fixed, inner, src=e.src)
        go = cst.Name(name_of[id(test)]) if type(test) is Var else literal(test.value)
        xp_call = (lambda f, *a: cst.Call(cst.Attribute(cst.Name("xp"), cst.Name(f)), [cst.Arg(x) for x in a]))
        if body.eqns[exit_at].kw["stop"]:
            go = xp_call("logical_not", go)
        if cap:
            go = xp_call("logical_and", go, cst.Comparison(cst.Name(count), [cst.ComparisonTarget(
                cst.LessThan(), cst.Integer(str(cap)))]))
        lines.append(_stmt(cst.Return(go), inner))
        # def loop_body(state): one iteration
        lines.append(_def(body_fn, ["state"], indent))
        lines.append(_stmt(cst.Assign([cst.AssignTarget(_tuple(state))], cst.Name("state")), inner))
        step = dce(body.replace(eqns=body.eqns[:exit_at] + body.eqns[exit_at + 1:]))
        lines += block.statements(step.replace(inputs=body.inputs), kept, body_fixed, inner, src=e.src)
        every = e.kw.get("every")
        row = cst.Name(count) if not every else _op(cst.Name(count), cst.FloorDivide(), every)
        for st, v in zip(stacks, body.outputs[k:]):  # h_saved = h_saved.at[trips].set(h)
            at = cst.Subscript(cst.Attribute(cst.Name(st), cst.Name("at")), [cst.SubscriptElement(cst.Index(row))])
            value = cst.Name(name_of[id(v)])
            if every:  # checkpoints: only the first iteration of every K writes its row
                first = cst.Comparison(_op(cst.Name(count), cst.Modulo(), every),
                                       [cst.ComparisonTarget(cst.Equal(), cst.Integer("0"))])
                old = cst.Subscript(cst.Name(st), [cst.SubscriptElement(cst.Index(row))])
                value = cst.Call(cst.Attribute(cst.Name("xp"), cst.Name("where")),
                                 [cst.Arg(first), cst.Arg(value), cst.Arg(old)])
            put = cst.Call(cst.Attribute(at, cst.Name("set")), [cst.Arg(value)])
            lines.append(_stmt(cst.Assign([cst.AssignTarget(cst.Name(st))], put), inner))
        new = ([cst.Name(name_of[id(v)]) for v in body.outputs[:k]]
               + [cst.BinaryOperation(cst.Name(count), cst.Add(), cst.Integer("1"))] + [cst.Name(st) for st in stacks])
        lines.append(_stmt(cst.Return(cst.Tuple([cst.Element(x) for x in new])), inner))
        start = ([cst.Name(name_of[id(x)]) for x in ins[:k]] + [cst.Integer("0")]
                 + [cst.Call(cst.Attribute(cst.Name("xp"), cst.Name("zeros")),
                             [cst.Arg(literal(o.shape)), cst.Arg(literal(str(o.dtype)))]) for o in e.outs[k + 1:]])
        call = cst.Call(cst.Attribute(cst.Name("lax"), cst.Name("while_loop")),
                        [cst.Arg(cst.Name(test_fn)), cst.Arg(cst.Name(body_fn)),
                         cst.Arg(cst.Tuple([cst.Element(x) for x in start]))])
        results = [_taken_over(x, o, dying, fixed, block, {id(v) for v in ins[k:]})
                   for x, o in zip(ins[:k], e.outs)] + [count] + stacks
    else:
        count = name_of[id(e.ins[0])]
        step_fn, i = ns.create("loop_step"), ns.create("i")
        lines.append(_def(step_fn, [i, "state"], indent))
        lines.append(_stmt(cst.Assign([cst.AssignTarget(_tuple(carried))], cst.Name("state")), inner))
        every = e.kw.get("every")
        steps = cst.Name(count) if not every else _op(_op(cst.Name(count), cst.Add(), every - 1), cst.FloorDivide(),
                                                       every)  # segments: (trips + K - 1) // K
        back = _op(_op(steps, cst.Subtract(), 1), cst.Subtract(), cst.Name(i))  # in reverse: trips - 1 - i
        if every:
            seg = ns.create("segment")
            lines.append(_stmt(cst.Assign([cst.AssignTarget(cst.Name(seg))], back), inner))
            back = cst.Name(seg)
        for bv, st in zip(body.inputs[k:k + s], ins[k:k + s]):  # this iteration's row of each stack
            name_of[id(bv)] = ns.create(bv.hint)
            row = cst.Subscript(cst.Name(name_of[id(st)]), [cst.SubscriptElement(cst.Index(back))])
            lines.append(_stmt(cst.Assign([cst.AssignTarget(cst.Name(name_of[id(bv)]))], row), inner))
        if every:  # the segment's length: m = min(K, trips - segment * K)
            m = body.inputs[k + s]
            name_of[id(m)] = ns.create(m.hint)
            left = _op(cst.Name(count), cst.Subtract(), _op(back, cst.Multiply(), every))
            lines.append(_stmt(cst.Assign([cst.AssignTarget(cst.Name(name_of[id(m)]))], cst.Call(
                cst.Attribute(cst.Name("xp"), cst.Name("minimum")), [cst.Arg(cst.Integer(str(every))), cst.Arg(left)])),
                inner))
        lines += block.statements(body, kept, body_fixed, inner, src=e.src)
        new = [cst.Name(name_of[id(v)]) for v in body.outputs]
        lines.append(_stmt(cst.Return(_pack(new)), inner))
        start = [cst.Name(name_of[id(x)]) for x in ins[:k]]
        call = cst.Call(cst.Attribute(cst.Name("lax"), cst.Name("fori_loop")),
                        [cst.Arg(cst.Integer("0")), cst.Arg(steps), cst.Arg(cst.Name(step_fn)),
                         cst.Arg(_pack(start))])
        results = [_taken_over(x, o, dying, fixed, block, {id(v) for v in ins[k:]}) for x, o in zip(ins[:k], e.outs)]
    lines.append(_stmt(cst.Assign([cst.AssignTarget(_tuple(results))], call), indent))
    for o, n in zip(e.outs, results):
        name_of[id(o)] = n
    dying = [v for v in dying if v.shape != () and id(v) not in fixed]
    if dying:
        lines.append(_stmt(cst.Del(_tuple([name_of[id(v)] for v in dying])), indent))
    return lines


def _loop_lines(block, e, dying, fixed, indent):
    """A `while` or `for_reversed` equation (NOTE [loops]) as a Python loop: its carried
    values under their own names, its body's statements one level deeper."""
    if block.spelling == "jax":
        return _lax_loop_lines(block, e, dying, fixed, indent)
    name_of, ns = block.name_of, block.ns
    body, k = e.kw["body"], e.kw["carried"]
    loop = e.op == "while"
    ins = e.ins[1:] if not loop else e.ins  # for_reversed: the count comes first
    carried_names, lines = [], []
    read_inside = {id(x) for x in ins[k:]}  # stacks and invariants keep their names
    for c in range(k):
        x, bv = ins[c], body.inputs[c]
        if type(x) is Var and x in dying and id(x) not in fixed and id(x) not in read_inside:
            # the start value dies here: its name carries on
            name = name_of[id(x)]
            dying = [v for v in dying if v is not x]
        else:
            name = ns.create(bv.hint)
            lines += _assign([name], [name_of[id(x)]], indent)
        name_of[id(bv)] = name
        carried_names.append(name)
    invariant_at = len(body.inputs) - (len(ins) - k - (e.kw.get("stacked", 0)))
    for bv, x in zip(body.inputs[invariant_at:], ins[k + e.kw.get("stacked", 0):]):
        name_of[id(bv)] = name_of[id(x)]
    inner = indent + "    "
    body_lines = []
    if loop:
        count = ns.create("trips")
        stacks = [ns.create(o.hint) for o in e.outs[k + 1:]]
        lines += [_line(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(n))], v)]), indent)
                  for n, v in [(count, cst.Integer("0"))] + [(s, cst.List([])) for s in stacks]]
        head = cst.While(cst.Name("True"), cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])]))
        if e.kw.get("limit"):  # `if trips >= limit: break`: a runaway loop stops where a trace would (NOTE [loops])
            past = cst.Comparison(cst.Name(count), [cst.ComparisonTarget(cst.GreaterThanEqual(),
                                                                         cst.Integer(str(e.kw["limit"])))])
            body_lines.append(_line(cst.If(past, cst.SimpleStatementSuite([cst.Break()])), inner))
    else:
        count = name_of[id(e.ins[0])]
        step = ns.create("i")
        every = e.kw.get("every")
        span = [cst.Arg(cst.Name(count))] if not every else [cst.Arg(cst.Integer("0")), cst.Arg(cst.Name(count)),
                                                            cst.Arg(cst.Integer(str(every)))]
        rng = cst.Call(cst.Name("reversed"), [cst.Arg(cst.Call(cst.Name("range"), span))])
        head = cst.For(cst.Name(step), rng, cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])]))
        s = e.kw["stacked"]
        at = cst.Name(step) if not every else cst.BinaryOperation(cst.Name(step), cst.FloorDivide(),
                                                                 cst.Integer(str(every)))
        for bv, st in zip(body.inputs[k:k + s], ins[k:k + s]):  # this iteration's row of each stack
            name_of[id(bv)] = ns.create(bv.hint)
            row = cst.Subscript(cst.Name(name_of[id(st)]), [cst.SubscriptElement(cst.Index(at))])
            body_lines.append(_line(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name_of[id(bv)]))],
                                                                        row)]), inner))
        if every:  # the segment's length: m = min(K, trips - i)
            m = body.inputs[k + s]
            name_of[id(m)] = ns.create(m.hint)
            left = cst.BinaryOperation(cst.Name(count), cst.Subtract(), cst.Name(step))
            body_lines.append(_stmt(cst.Assign([cst.AssignTarget(cst.Name(name_of[id(m)]))], cst.Call(
                cst.Name("min"), [cst.Arg(cst.Integer(str(every))), cst.Arg(left)])), inner))
    kept = {id(v) for v in body.inputs}
    body_fixed = {id(v) for v in body.inputs[invariant_at:]} | fixed
    body_lines += block.statements(body, kept, body_fixed, inner, src=e.src)
    if loop:
        every = e.kw.get("every")
        for st, v in zip(stacks, body.outputs[k:]):
            append = cst.Call(cst.Attribute(cst.Name(st), cst.Name("append")), [cst.Arg(cst.Name(name_of[id(v)]))])
            node = cst.SimpleStatementLine([cst.Expr(append)])
            if every:  # checkpoints: `if trips % K == 0: h_saved.append(h)`
                node = cst.If(cst.Comparison(cst.BinaryOperation(cst.Name(count), cst.Modulo(), cst.Integer(str(every))),
                                             [cst.ComparisonTarget(cst.Equal(), cst.Integer("0"))]),
                              cst.SimpleStatementSuite([cst.Expr(append)]))
            body_lines.append(_line(node, inner))
    body_lines += _assign(carried_names, [name_of[id(v)] for v in body.outputs[:k]], inner)
    if loop:
        body_lines.append(_line(cst.SimpleStatementLine([cst.AugAssign(cst.Name(count), cst.AddAssign(), cst.Integer("1"))]),
                                inner))
    lines.append(indent + _MODULE.code_for_node(head).split("\n", 1)[0] + "\n")
    lines += body_lines
    for c, o in enumerate(e.outs[:k]):
        name_of[id(o)] = carried_names[c]
    if loop:
        name_of[id(e.outs[k])] = count
        for st, o in zip(stacks, e.outs[k + 1:]):
            name_of[id(o)] = st
            call = cst.Call(cst.Name("stacked"), [cst.Arg(cst.Name(st)), cst.Arg(literal(o.shape[1:])),
                                                  cst.Arg(literal(str(o.dtype)))])
            lines.append(_line(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(st))], call)]), indent))
    dying = [v for v in dying if v.shape != () and id(v) not in fixed]
    if dying:
        names = [cst.Name(name_of[id(v)]) for v in dying]
        lines.append(_line(cst.SimpleStatementLine([cst.Del(names[0] if len(names) == 1 else cst.Tuple(
            [cst.Element(n) for n in names], lpar=[], rpar=[]))]), indent))
    return lines

from ..ir import Eqn, Graph, Lit, Var
from ..ops import OPS


def _arithmetic(op):
    """An elementwise row with a Python operator (add, sub, mul, div, pow): what folds."""
    row = OPS.get(op)  # a guard is an equation of the IR, not a row
    return row is not None and row.py is not None


def _broadcast(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(x if y == 1 else y for x, y in zip(a, b)) if all(x == y or 1 in (x, y) for x, y in zip(a, b)) else None


def _scale(e):
    """(x, factor) when `e` is x * c, c * x or x / c with x a float Var and c a literal."""
    if e.op not in ("mul", "div") or len(e.ins) != 2:
        return None
    a, b = e.ins
    if isinstance(a, Var) and isinstance(b, Lit) and a.dtype.kind == "f" and type(b.value) in (int, float) and b.value != 0:
        return a, (b.value if e.op == "mul" else 1 / b.value)
    if e.op == "mul" and isinstance(b, Var) and isinstance(a, Lit) and b.dtype.kind == "f" and type(a.value) in (int, float):
        return b, a.value
    return None


def simplify(g: Graph) -> Graph:
    """Algebraic simplification, one forward sweep.

    NOTE [simplify]:

    - scalar chains fold: `(x * 2) * 2` -> `x * 4`, `(x / 4) * 3` -> `x * 0.75`;
    - broadcasts sink: `expand(a) * 3` -> `expand(a * 3)`, and `expand(a) * y` -> `a * y`
      when NumPy broadcasting already gives the full shape, so a mean's or sum's gradient is
      never materialised just to be multiplied.

    Results change at most by float rounding of the folded constants.
    """
    uses = {}
    for e in g.eqns:
        for x in e.ins:
            if isinstance(x, Var):
                uses[id(x)] = uses.get(id(x), 0) + 1
    for x in g.outputs:
        if isinstance(x, Var):
            uses[id(x)] = uses.get(id(x), 0) + 2  # outputs are never folded away
    made, out, sub = {}, [], {}

    def add(e):
        if e.op == "expand" and made.get(id(e.ins[0])) is not None and made[id(e.ins[0])].op == "full":
            e = Eqn("full", (), (("shape", e.kw["shape"]),) + made[id(e.ins[0])].params[1:], e.out, e.src)
        if _arithmetic(e.op):
            e = _fold_constants(e, made)
        if _arithmetic(e.op):
            e = _inline_scalar_constants(e, made)
            same = _identity(e)
            if same is not None:  # x * 1, x / 1, x + 0, x - 0, x ** 1
                sub[id(e.out)] = same
                return same
        s = _scale(e)
        p = made.get(id(s[0])) if s else None
        inner = _scale(p) if p is not None and uses.get(id(s[0])) == 1 else None
        if inner is not None:
            e = Eqn("mul", (inner[0], Lit(inner[1] * s[1])), (), e.out, p.src.merged(e.src) if p.src else e.src)
        made[id(e.out)] = e
        out.append(e)
        return e.out

    for e in g.eqns:
        if any(isinstance(x, Var) and id(x) in sub for x in e.ins):
            e = e._replace(ins=tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in e.ins))
        add(_sink_broadcast(e, made, uses, add) if _arithmetic(e.op) else e)
    outputs = tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in g.outputs)
    return g.replace(eqns=tuple(out), outputs=outputs)


def _constant(x, made):
    """The Python value of a literal or of a `full`, else None."""
    if isinstance(x, Lit):
        return x.value if type(x.value) in (int, float) else None
    p = made.get(id(x))
    if p is not None and p.op == "full" and type(p.kw["value"]) in (int, float):
        return p.kw["value"]
    return None


def _fold_constants(e, made):
    """An op on constants only becomes a constant (`full(s, 1.0) * 0.75` -> `full(s, 0.75)`)."""
    values = [_constant(x, made) for x in e.ins]
    if e.out.dtype.kind != "f" or any(v is None for v in values):
        return e
    try:
        value = float(OPS[e.op].py(*values))
    except (ArithmeticError, ValueError):
        return e
    return Eqn("full", (), (("shape", e.out.shape), ("value", value), ("dtype", e.out.dtype)), e.out, e.src)


def _inline_scalar_constants(e, made):
    """`full(s, v) * y` -> `y * v` when y alone fixes the result's shape and dtype."""
    ins = list(e.ins)
    for k, x in enumerate(ins):
        p = made.get(id(x)) if isinstance(x, Var) else None
        other = ins[1 - k]
        if (p is not None and p.op == "full" and isinstance(other, Var) and (e.op != "pow" or k == 1)
                and other.shape == e.out.shape and other.dtype == e.out.dtype and type(p.kw["value"]) in (int, float)):
            ins[k] = Lit(p.kw["value"])
    return e._replace(ins=tuple(ins)) if ins != list(e.ins) else e


def _identity(e):
    a, b = e.ins
    row = OPS[e.op]
    unit = row.unit
    for x, c in ((a, b), (b, a)) if row.py(1, 2) == row.py(2, 1) else ((a, b),):  # add and mul commute
        if (isinstance(c, Lit) and type(c.value) in (int, float) and c.value == unit and isinstance(x, Var)
                and x.shape == e.out.shape and x.dtype == e.out.dtype):
            return x
    return None


def _sink_broadcast(e, made, uses, add):
    for k, x in enumerate(e.ins):
        p = made.get(id(x)) if isinstance(x, Var) else None
        if p is None or p.op != "expand" or not isinstance(p.ins[0], Var):
            continue
        a, other = p.ins[0], e.ins[1 - k]
        ins = list(e.ins)
        ins[k] = a
        if isinstance(other, Var) and _broadcast(a.shape, other.shape) == e.out.shape and other.dtype == e.out.dtype:
            return Eqn(e.op, tuple(ins), e.params, e.out, e.src)
        if isinstance(other, Lit) and uses.get(id(x)) == 1 and a.dtype == e.out.dtype:
            small = Var(a.shape, a.dtype, e.out.hint)
            uses[id(small)] = 1
            small = add(Eqn(e.op, tuple(ins), e.params, small, e.src))
            return Eqn("expand", (small,), p.params, e.out, e.src)
    return e

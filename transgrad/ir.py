"""The IR: a flat SSA list of equations, in the style of a jaxpr.

A `Graph` has input `Var`s, a tuple of `Eqn`s (one primitive application each) and
outputs. Vars carry shape and dtype; `Lit` holds a Python scalar inlined into code.
Eqns and Graphs are frozen: passes return new graphs instead of editing in place.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

_ids = itertools.count()


class Var:
    """An SSA value. `hint` is the name codegen tries first (user name or op name)."""

    __slots__ = ("id", "shape", "dtype", "hint")

    def __init__(self, shape, dtype, hint="v"):
        self.id = next(_ids)
        self.shape = tuple(shape)
        self.dtype = dtype
        self.hint = hint

    def __repr__(self):
        return f"{self.hint}:{self.dtype}{list(self.shape)}"


@dataclass(frozen=True, slots=True)
class Lit:
    """A Python scalar (int, float or bool) written into the code as a literal."""

    value: object

    def __repr__(self):
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class Src:
    """Where the user's code created a value: file and line (`grad`: this equation is part
    of that line's gradient). An equation that a pass folded from several (a loop's
    `y = y * 2` ten times, become one `* 1024`) lists them in `folded`: (Src, count) pairs."""

    file: str
    line: int
    grad: bool = False
    folded: tuple = ()

    def merged(self, later):
        """The source of one equation that does this one's work and then `later`'s."""
        if later is None:
            return self
        parts = list(self.parts())
        for s, n in later.parts():
            if parts[-1][0] == s:
                parts[-1] = (s, parts[-1][1] + n)
            else:
                parts.append((s, n))
        return Src(later.file, later.line, later.grad, tuple(parts))

    def parts(self):
        return self.folded or ((self, 1),)

    @property
    def text(self):
        import linecache

        return linecache.getline(self.file, self.line).strip()

    def __str__(self):
        import os

        return f"{os.path.basename(self.file)}:{self.line}"


class Eqn(NamedTuple):
    """`out = op[params](*ins)`, created by the user's line `src`.

    Some equations are not primitives of the op table: `guard` (NOTE [guards]); `call`,
    whose `out` is a tuple of Vars: `a, b = fn(*ins)` runs the generated function of a
    `Callee` (a compiled call's backward, NOTE [shown is run]); and the loops (NOTE [loops]):

    - `while[body, carried=k, capacity=C]`: ins are k carried values then the loop
      invariants; `body` maps (carried, invariants) to (new carried, values saved each
      iteration) and holds one `exit` equation, where the loop may end. outs: the final
      carried values, the number of iterations (int64), then each saved value stacked over
      the iterations. With a capacity (XLA), it stops after C iterations at the latest.
    - `exit[stop]` (in a while body): ins (test,), no outs; the loop ends when the test is `stop`.
    - `for_reversed[body, carried=k, stacked=s]`: ins are the count n, k carried values, s
      stacks, then the invariants; `body` maps (carried, the stacks' rows i, invariants) to
      new carried for i = n-1 ... 0. outs: the final carried values.
    - `every=K` (checkpoints): a while saves its stacks every K-th iteration only, and a
      for_reversed runs over segments of K iterations, the last first: its body maps
      (carried, the rows of the segment, its length m, invariants) to new carried.

    A stack's leading dimension is the trip count, known only when the program runs: its
    Var's shape says 0 there; or the capacity C, rows past the trip count being zeros."""

    op: str
    ins: tuple  # of Var | Lit
    params: tuple  # (name, value) pairs, hashable
    out: Var | tuple
    src: Src | None = None

    @property
    def kw(self):
        return dict(self.params)

    @property
    def outs(self):
        return self.out if type(self.out) is tuple else (self.out,)


class Callee:
    """A generated function that other generated code calls by name: its name, the graph it
    computes, and the loaded function (NumPy's, or a jitted one)."""

    __slots__ = ("name", "graph", "fn", "source")

    def __init__(self, name, graph, fn, source):
        self.name, self.graph, self.fn, self.source = name, graph, fn, source

    def __repr__(self):
        return self.name


LOOPS = ("while", "for_reversed")


@dataclass(frozen=True, slots=True)
class Graph:
    inputs: tuple  # of Var
    eqns: tuple  # of Eqn
    outputs: tuple  # of Var | Lit | None
    name: str = "f"

    def replace(self, **changes):
        from dataclasses import replace

        return replace(self, **changes)

    def __str__(self):
        return pp(self)


def pp(g: Graph) -> str:
    """A jaxpr-style listing of a graph, one equation per line."""
    lines = [f"{{ lambda {' '.join(map(repr, g.inputs))} ."]
    for e in g.eqns:
        ps = "".join(f" {k}={v!r}" for k, v in e.params)
        args = " ".join(map(_short, e.ins))
        lines.append(f"  {' '.join(map(repr, e.outs))} = {e.op}{('[' + ps.strip() + ']') if ps else ''} {args}")
    lines.append(f"  in ({', '.join(map(_short, g.outputs))}) }}")
    return "\n".join(lines)


def _short(x):
    return "None" if x is None else (x.hint if isinstance(x, Var) else repr(x))


def lint(g: Graph) -> None:
    """Check SSA form: every use is defined before it, every Var defined once."""
    defined = set(id(v) for v in g.inputs)
    for e in g.eqns:
        for x in e.ins:
            if isinstance(x, Var) and id(x) not in defined:
                raise AssertionError(f"{e.op}: uses {x!r} before it is defined")
        for o in e.outs:
            if id(o) in defined:
                raise AssertionError(f"{e.op}: redefines {o!r}")
            defined.add(id(o))
    for x in g.outputs:
        if isinstance(x, Var) and id(x) not in defined:
            raise AssertionError(f"output {x!r} is never defined")

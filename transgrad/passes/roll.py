"""Loops found in a trace: repeated iterations of a `while` become one `while` equation.

NOTE [loops]: a traced run is straight-line code, so a data-dependent loop would cost a new
trace (and a new XLA compilation) for every trip count. But the trace shows the loop: its
test is a guard of one source line deciding True, True, ..., False, and between two of its
decisions lie the same operations each time, each iteration reading the previous one's
results at the same places plus values from before the loop. Such a run is rewritten as
prefix, `while` equation, suffix (the equation is documented in ir.py): its body is one
iteration, its carried values what an iteration hands the next, its exit the loop's test.
The program then holds for every trip count, and the loop's guards are gone: the loop
itself decides. The backward is a `for_reversed` equation made by the VJP of the body
(engine/vjp.py), reading the values each iteration saved (or, with checkpoints, running
each stretch of k iterations again from the state saved at its start).

When only the first iteration differs, in where gradients flow (it reads a tensor that needs
no gradient, the next ones its result), it is peeled: it stays before the loop, and the
program holds for every count from one up.

Only a loop that its test alone ends rolls: the trace sees tensor decisions, not the Python
state that could also end the loop (a counter in `while x.norm() < 9 and i < 3:`, the
`range(5)` of a `for` around an `if`); trace/loops.py reads the loop's source to tell.

Long runs of the same iterations that no test ends (`for t in range(n)`) become loops of
their traced count (`_roll_counted`): what keys the trace fixes that count, so nothing can
make them run another number of times; a getitem integer that steps evenly (`xs[t]`) reads
the loop's counter. When n is a parameter that only bounds the loop (trace/loops.py reads
that from the source: `range_bounds`), n is an input instead of a key, and the loop rolls at
any length if one run covers its body's operations n times (n - 1, the first peeled): its
counter runs to the input. Otherwise the trace guards n. The tracer notes the Python state
at the body's lines: a body that changes it (`steps += 1`) keeps the guard too.

Soundness rests on the iterations the trace did not see doing what the seen ones did: no
Python decision in a rolled body can take another way later. The source rules out decisions
in a `for` body and state in the test of a `while`; the tracer sees the locals of the
function's frame change. State kept in objects (an attribute a helper increments) is not
seen: a body whose operations depend on it must not be rolled (`loops="unroll"`).

A loop stays unrolled (and this trace keeps its guards) when it ran fewer than two times,
when iterations differ (another path inside the body, a different shape), when an iteration
reads values older than the previous iteration's, when code after the loop reads values of
an iteration other than the last, or when the body holds other decisions, calls or hooks.
"""
from __future__ import annotations

import numpy as np

from ..index import Arr
from ..ir import LOOPS, Eqn, Graph, Lit, Src, Var

MIN_TRIPS = 2  # what an iteration hands the next is seen only from two iterations on


def roll(g: Graph, differentiable=None, ends_loop=None, why=None, states=None, bounds=()) -> Graph:
    """`g` with each loop that rolls (NOTE [loops]) as a `while` equation. `differentiable`
    maps id(out Var) of an equation to the flags of the inputs its gradient flows to: two
    iterations roll only when these agree too. `ends_loop(src)` says whether the guards of
    line `src` are the only way out of their loop (the trace cannot see Python's own
    state); `states` maps a guard's index to the Python state of the frame that decided it:
    a run of a loop rolls only if it stays the same. `why`, a dict, receives the reason each
    loop that does not roll stays unrolled. `bounds`: the loops whose count is an input
    (`_roll_counted`); each one that rolls is told how many iterations were peeled."""
    differentiable, states = differentiable or {}, states or {}
    why = {} if why is None else why
    eqns = list(g.eqns)
    changed = True
    while changed:  # again once inner loops rolled: the loop around them is seen anew
        changed = False
        for src, looped in _loop_sources(eqns):
            if ends_loop is not None and not ends_loop(src):
                if looped:
                    why[src] = ("the loop can end in a way the trace does not see (Python state in its test: "
                                "`and`, `or`; a `break`, `return` or `raise`; a `for` around it)")
                continue
            if not looped:
                why[src] = "it ran once when traced: a loop is seen from two iterations on"
                continue
            # each run of the loop (a loop inside another runs many times) rolls on its own;
            # the last first, so that rolling one leaves the places of the earlier ones
            reasons = []
            for run in reversed(_runs(eqns, src)):
                changed_state = _changed(run, eqns, states)
                found = ("it ran once when traced: a loop is seen from two iterations on" if len(run) <= MIN_TRIPS
                         else f"its iterations change Python values the trace does not see ({changed_state})"
                         if changed_state else _find(eqns, run, g, differentiable))
                if isinstance(found, str):
                    reasons.append(found)
                else:
                    eqns, changed = found, True
            if reasons:
                why[src] = reasons[-1]
            else:
                why.pop(src, None)
    eqns = _roll_counted(eqns, g, differentiable, bounds)
    return g if len(eqns) == len(g.eqns) and all(a is b for a, b in zip(eqns, g.eqns)) else g.replace(eqns=tuple(eqns))


def _runs(eqns, src):
    """The places of the guards of line `src`, split into runs of the loop: each decides one
    way, then the other (`while test:` True, ..., False; `if test: break` False, ..., True)."""
    places = [i for i, e in enumerate(eqns) if e.op == "guard" and e.src == src]
    stop = eqns[places[-1]].kw["expected"]  # the decision that ends a run: the last one made
    runs, run = [], []
    for i in places:
        run.append(i)
        if eqns[i].kw["expected"] == stop:
            runs.append(run)
            run = []
    return runs


def _changed(run, eqns, states):
    """The locals (`i`) that the iterations of a run change between their tests, if any."""
    return ", ".join(f"`{k}`" for k in changed_locals([states.get(eqns[i].kw["index"], ()) for i in run]))


def changed_locals(seen, skip=None):
    """The locals that change from one snapshot of a frame's Python state to the next (one
    that the first iteration creates, a temporary, only from then on); `skip` may change (the
    counter of a `for`)."""
    seen = [dict(s) for s in seen]
    for a, b in zip(seen, seen[1:]):
        changed = sorted(k for k in a.keys() & b.keys() if a[k] != b[k] and k != skip)
        if changed:
            return changed
    return []


def _loop_sources(eqns):
    """Source lines whose guards decide like a loop's test: one way, then the other, in
    each of its runs; each with whether a run looped at least MIN_TRIPS times."""
    seq = {}
    for e in eqns:
        if e.op == "guard" and e.src is not None and isinstance(e.kw["expected"], bool):
            seq.setdefault(e.src, []).append(e.kw["expected"])
    out = []
    for s, d in seq.items():
        ends = [i for i, x in enumerate(d) if x == d[-1]]  # the decision that ends a run: the last one made
        if len(ends) == len(d):
            continue  # never looped
        out.append((s, any(b - a > MIN_TRIPS for a, b in zip([-1] + ends, ends))))
    return out


def _shape_of(e, differentiable, loose=False):
    """What two iterations' equations must share: op, params, literals, types, source line.
    `loose`: the integers of a getitem's index may differ (a counter: `xs[t]`)."""
    ins = tuple([(x.shape, _name(x.dtype)) if type(x) is Var else ("lit", type(x.value), x.value) for x in e.ins])
    params = e.params if e.op != "guard" else tuple(p for p in e.params if p[0] != "index")
    if e.op in LOOPS:
        params = id(e)  # never the same as another's
    elif loose and e.op == "getitem":
        params = tuple((k, tuple(int if type(i) is int else i for i in v) if k == "index" else v) for k, v in params)
    outs = tuple([(o.shape, _name(o.dtype)) for o in e.outs])
    return e.op, params, ins, outs, e.src, differentiable.get(id(e.out)) if type(e.out) is Var else None


_NAMES = {}


def _name(dtype):
    """str(dtype), remembered (a dtype's str is slow and asked for once per equation)."""
    n = _NAMES.get(dtype)
    if n is None:
        n = _NAMES[dtype] = str(dtype)
    return n


def _find(eqns, pos, g, differentiable):
    """The equations with the run of a loop whose tests are at places `pos` rolled, or why
    it does not roll."""
    src = eqns[pos[0]].src
    n = len(pos) - 1  # iterations: the last decision is the False one
    period = pos[1] - pos[0]
    if any(b - a != period for a, b in zip(pos, pos[1:])):
        return "its iterations did different numbers of operations"
    # the loop's test: the operations of the guard's line right before it
    c = 0
    while c < period - 1 and pos[1] - c - 1 >= 0 and eqns[pos[1] - c - 1].src == src:
        c += 1
    # The first iteration may differ from the rest in where gradients flow (it reads a value
    # that needs none, later ones read its result): it stays before the loop, peeled.
    reasons = []
    for peel in range(min(2, n - MIN_TRIPS + 1)):
        for cond in (c, 0):  # the test at the top of the body; else the test computed at the end of the last one
            start = pos[peel] - cond
            if start < 0:
                continue
            rolled = _roll_at(eqns, start, period, n - peel, cond, g, differentiable)
            if not isinstance(rolled, str):
                return rolled
            reasons.append(rolled)
    return reasons[0] if reasons else "its iterations differ"


def _roll_at(eqns, start, period, n, cond, g, differentiable, counted=False):
    """Iterations of `period` equations from `start`, the last followed by the final test
    (`cond` equations, then its guard); or, `counted`, exactly n iterations and no test
    (`counted` may be a bound loop and its peeled iterations: `_roll_counted`)."""
    iters = [eqns[start + k * period:start + (k + 1) * period] for k in range(n)]
    if counted:
        last, cond = [], None
    else:
        last = eqns[start + n * period:start + n * period + cond + 1]  # the final test, then its guard
        if len(last) != cond + 1 or last[-1].op != "guard" or last[-1].kw["expected"] == iters[0][cond].kw["expected"]:
            return "its last test differs from the others"
    shapes = [_shape_of(e, differentiable, bool(counted)) for e in iters[0]]
    if any([_shape_of(e, differentiable, bool(counted)) for e in it] != shapes for it in iters[1:]):
        return "its iterations differ (other operations, shapes, constants or gradient paths)"
    if not counted and [_shape_of(e, differentiable) for e in last[:-1]] != shapes[:cond]:
        return "its last test differs from the others"
    inner = next((e for j, e in enumerate(iters[0]) if e.op == "guard" and j != cond), None)
    if inner is not None:
        return f"its body decides too (line {inner.src.line if inner.src else '?'})"
    if any(e.op in ("call", "hook", "while", "for_reversed", "exit") for e in iters[0]):
        return "its body holds a loop, a compiled call or a hook"
    where = {id(v): -1 for v in g.inputs}  # id(Var) -> the iteration that made it (-1: before the loop)
    for e in eqns[:start]:
        for o in e.outs:
            where[id(o)] = -1
    position = {}
    for k, it in enumerate(iters + [last]):
        for j, e in enumerate(it):
            for o in e.outs:
                where[id(o)], position[id(o)] = k, j
    reads = {}  # (j, s) -> ("carried", position of the new value) | ("invariant", Var); local reads are absent
    for j in range(period):
        for s, x0 in enumerate(iters[0][j].ins):
            if not isinstance(x0, Var):
                continue
            kinds = set()
            for k, it in enumerate(iters + [last]):
                if j < len(it):
                    x = it[j].ins[s]
                    w = where.get(id(x), -1)
                    kinds.add(("local", position[id(x)]) if w == k else ("carried", position[id(x)]) if w == k - 1 >= 0
                              else ("outside", id(x)) if w == -1 else ("older", None))
            if len(kinds) == 1:
                kind, p = next(iter(kinds))
                if kind == "older":
                    return "an iteration reads values older than the previous iteration's"
                if kind == "outside":
                    reads[(j, s)] = ("invariant", x0)
                continue
            carried = [p for kind, p in kinds if kind == "carried"]
            if len(kinds) != 2 or len(carried) != 1 or where.get(id(x0), -1) != -1:
                return "its iterations read different values at one place"
            reads[(j, s)] = ("carried", carried[0], x0)
    inits = {}
    for r in reads.values():
        if r[0] == "carried" and inits.setdefault(r[1], r[2]) is not r[2]:
            return "one value of its state starts from two values"
    steps = _counters(iters) if counted else {}
    if steps is None:
        return "an index changes from one iteration to the next by different steps"
    # after the loop: only the last iteration's carried values (and values from before the loop)
    end = start + n * period + (0 if counted else cond + 1)
    final = {id(iters[-1][p].out) for p in inits}
    later = [x for e in eqns[end:] for x in e.ins] + list(g.outputs)
    if any(isinstance(x, Var) and where.get(id(x), -1) >= 0 and id(x) not in final for x in later):
        return "code after it reads values of an iteration other than the last (a list of states?)"
    if counted:
        return eqns[:start] + _counted_eqns(iters, reads, inits, steps, counted) + eqns[end:]
    return eqns[:start] + [_while_eqn(iters, cond, reads, inits)] + eqns[end:]


def _while_eqn(iters, cond, reads, inits, counter=None, invariants=()):
    """One iteration as the body of a `while` equation (the first iteration's Vars). A
    `counter` (its start, its Var in the body, its step equation, the equations that test
    and use it) is carried last; `invariants`: (outer Var, body Var) pairs it reads too."""
    first, last = iters[0], iters[-1]
    slots = sorted(inits)
    carried_in = {p: Var(inits[p].shape, inits[p].dtype, inits[p].hint) for p in slots}
    invariant_in = {id(outer): (outer, inner) for outer, inner in invariants}
    for r in reads.values():
        if r[0] == "invariant" and id(r[1]) not in invariant_in:
            invariant_in[id(r[1])] = (r[1], Var(r[1].shape, r[1].dtype, r[1].hint))
    eqns = []
    for j, e in enumerate(first):
        ins = list(e.ins)
        for s in range(len(ins)):
            r = reads.get((j, s))
            if r is not None:
                ins[s] = carried_in[r[1]] if r[0] == "carried" else invariant_in[id(r[1])][1]
        if j == cond:  # the loop's test: the other decision ends it
            eqns.append(Eqn("exit", tuple(ins), (("stop", not e.kw["expected"]),), (), e.src))
        else:
            eqns.append(e._replace(ins=tuple(ins)))
    start, count, step, heads = counter or ((), (), None, ())
    if counter:
        eqns = list(heads) + eqns + [step]
        start, count, step = (start,), (count,), (step.out,)
    else:
        step = ()
    inputs = tuple(carried_in[p] for p in slots) + count + tuple(v for _, v in invariant_in.values())
    body = Graph(inputs, tuple(eqns), tuple(first[p].out for p in slots) + step, name="body")
    outs = tuple(last[p].out for p in slots) + tuple(Var(v.shape, v.dtype, v.hint) for v in step) + (
        Var((), np.dtype("int64"), "trips"),)
    ins = tuple(inits[p] for p in slots) + start + tuple(x for x, _ in invariant_in.values())
    src = first[cond].src if cond is not None else next((e.src for e in first if e.src is not None), None)
    return Eqn("while", ins, (("body", body), ("carried", len(slots) + len(step))), outs, src)


# ---- counted loops: the same iterations repeated, and no test -------------------------------------
MIN_COUNTED = 3  # fewer repetitions stay straight-line code (and fold: `y * 2 * 2` is `y * 4`)
# Shorter runs stay straight-line: XLA fuses across their iterations and a NumPy program pays
# no loop overhead (a 50-step chain of 4 small ops: 34 us unrolled, 112 us as an XLA loop),
# while longer ones cost more to generate and compile than they save (400 steps: minutes).
MIN_COUNTED_OPS = 1000


def _roll_counted(eqns, g, differentiable, bounds=()):
    """Long runs of the same iterations that no tensor test ends (`for _ in range(n)`,
    `xs[t]` for t = 0, 1, ...) as loops of their traced count: the count is fixed by what
    keys the trace (the shapes, the integers it was called with), so the loop runs exactly
    as many times as the trace did. Code stays one body long.

    A loop in `bounds` (`for t in range(n)` with n a parameter that keys no trace: NOTE
    [loops]) rolls at any length when a run covers every operation of its body's lines and
    has n iterations (n - 1, the first peeled): its counter then runs to the input n."""
    def key(e):
        try:
            k = _shape_of(e, differentiable, loose=True)
            hash(k)
            return k
        except TypeError:
            return ("unhashable", id(e))

    keys = [key(e) for e in eqns]
    i = 0
    while i < len(eqns):
        found, spans = None, [(b, _span(eqns, b)) for b in bounds]
        dead = {}  # period -> the starts of a run that did not roll, once each rotation of it was tried
        nxt, seen = [None] * len(keys), {}
        for j in range(len(keys) - 1, i - 1, -1):
            nxt[j], seen[keys[j]] = seen.get(keys[j]), j
        for start in range(i, len(eqns)):
            j = nxt[start]
            if j is None or eqns[start].op in ("guard", "exit") + LOOPS:
                continue
            p = j - start
            near = [(b, span) for b, span in spans if span and span[0] - p <= start <= span[0] + p]  # its loop, maybe
            least = MIN_TRIPS if near else max(MIN_COUNTED, -(-MIN_COUNTED_OPS // p))  # repetitions a roll needs
            if start + least * p > len(keys) or keys[start + (least - 1) * p] != keys[start]:
                continue  # cheap: no long block comparisons for runs that could not roll
            if any(e.op == "guard" for e in eqns[start:start + p]) or (
                    not near and start in dead.get(p, ())):  # no run inside a run that failed: not quadratic
                continue
            n = 1
            while start + (n + 1) * p <= len(keys) and _same(keys, start, start + n * p, p):
                n += 1
            d, lo = dead.get(p), start + p
            dead[p] = range(d.start, max(d.stop, start + n * p)) if d and lo <= d.stop else range(lo, start + n * p)
            # a bound loop: the run (and the iteration peeled before it) holds every operation of its body's lines
            bound = next(((b, peel) for b, (first, last) in near for peel in (0, 1)
                          if MIN_TRIPS <= b["value"] - peel <= n and 0 <= start - peel * p <= first
                          and last < start + (b["value"] - peel) * p), None)
            if bound:
                n = bound[0]["value"] - bound[1]
            elif n < MIN_COUNTED or n * p < MIN_COUNTED_OPS:
                continue
            rolled = _roll_at(eqns, start, p, n, None, g, differentiable, counted=bound or True)
            if not isinstance(rolled, str):
                found = (start, n * p, rolled)
                if bound:
                    bound[0]["peeled"] = bound[1]
                break
        if found is None:
            return eqns
        start, length, rolled = found  # the run became `j = 0` and the loop (a bound's `n - 1` first): their keys replace its
        made = len(rolled) - len(eqns) + length
        eqns, keys = rolled, keys[:start] + [key(e) for e in rolled[start:start + made]] + keys[start + length:]
        i = start + made - 1
    return eqns


def _span(eqns, bound):
    """The places of the first and the last equation of a bound loop's body lines, or None."""
    file, (_, first, last) = bound["file"], bound["lines"][:3]
    inside = [i for i, e in enumerate(eqns) if e.src is not None and e.src.file == file and first <= e.src.line <= last]
    return (inside[0], inside[-1]) if inside else None


def _same(keys, a, b, p):
    for t in range(p):  # most candidates differ early: no slices
        if keys[a + t] != keys[b + t]:
            return False
    return True


def _counters(iters):
    """{(position, index place): (first, step)} for getitem integers that step evenly from
    one iteration to the next (all of one sign: -1 means the last row); None if one does
    not step evenly."""
    out = {}
    for j, e in enumerate(iters[0]):
        if e.op != "getitem":
            continue
        for q, x in enumerate(e.kw["index"]):
            if type(x) is not int:
                continue
            seq = [it[j].kw["index"][q] for it in iters]
            step = seq[1] - seq[0]
            if any(b - a != step for a, b in zip(seq, seq[1:])) or (min(seq) < 0 <= max(seq)):
                return None
            if step:
                out[(j, q)] = (seq[0], step)
    return out


def _counted_eqns(iters, reads, inits, steps, bound=True):
    """`j = 0`, then a `while` whose body counts j up to the traced count (or to the input
    that bounds it, less the iterations peeled) and indexes `xs[first + step * j]` where the
    iterations indexed by a stepping integer."""
    n, pre, pairs, limit = len(iters), [], (), None
    if bound is not True:
        b, peel = bound
        limit, inner = b["var"], Var((), b["var"].dtype, b["var"].hint)
        if peel:
            limit = Var((), limit.dtype, limit.hint)
            pre.append(Eqn("sub", (b["var"], Lit(peel)), (), limit))
        pairs = ((limit, inner),)
    init, j, body, step_eqn = counter(Lit(n) if limit is None else pairs[0][1])
    body = list(body)
    first = list(iters[0])
    for (pos, q), (start, step) in sorted(steps.items()):
        e = first[pos]
        at = j
        if step != 1:
            at2 = Var((), np.dtype("int32"), "t")
            body.append(Eqn("mul", (at, Lit(step)), (), at2))
            at = at2
        if start:
            at2 = Var((), np.dtype("int32"), "t")
            body.append(Eqn("add", (at, Lit(start)), (), at2))
            at = at2
        index = tuple(Arr(len(e.ins) - 1) if i == q else x for i, x in enumerate(e.kw["index"]))  # idx input k
        first[pos] = e._replace(ins=e.ins + (at,), params=tuple((name, index if name == "index" else v)
                                                               for name, v in e.params))
    iters = [first] + iters[1:]
    loop = _while_eqn(iters, None, reads, inits, counter=(init.out, j, step_eqn, body), invariants=pairs)
    # the count it ran when traced: a description, and the capacity of XLA's buffers
    loop = loop._replace(params=loop.params + (("count", n),))
    if pairs:  # described as the user's `for t in range(n):`
        loop = loop._replace(params=loop.params + (("bound", bound[0]["name"]),),
                             src=Src(bound[0]["file"], bound[0]["lines"][0]))
    return pre + [init, loop]


def counter(limit):
    """A loop counter j running from 0 while j < `limit` (a Lit or a Var): the equation
    `j = 0` before the loop, j in the body, the body's first equations (the test that ends
    the loop) and its step `j + 1`."""
    j0, j, go, j1 = (Var((), np.dtype("int32"), "j"), Var((), np.dtype("int32"), "j"), Var((), np.dtype(bool), "go"),
                     Var((), np.dtype("int32"), "j"))
    init = Eqn("full", (), (("shape", ()), ("value", 0), ("dtype", np.dtype("int32"))), j0)
    test = (Eqn("lt", (j, limit), (), go), Eqn("exit", (go,), (("stop", False),), ()))
    return init, j, test, Eqn("add", (j, Lit(1)), (), j1)

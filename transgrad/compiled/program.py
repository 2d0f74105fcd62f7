"""One traced path of a compiled function, and the programs generated from it.

A `Trace` keeps what the traced run recorded (forward equations, guards, captured tensors,
constants, a backward graph per differentiable output) and builds, on first use, the
generated programs: the forward (outputs, then the residuals the backward reads), the
backward of each output, and the joint forward+backward programs `tg.grad` runs.
"""
from __future__ import annotations

import re

import numpy as np

from .._state import gc_paused, show_code, using
from ..engine import call, owned, run_tensors
from ..engine.graph import walk
from ..engine.replay import Source, backward_graph, check_saved, rule_reads, saved_checks
from ..engine.vjp import Stacks, vjp
from ..ir import Callee, Eqn, Graph, Lit, Src, Var
from ..ops import OPS
from ..passes import dce, hoist, optimize
from ..passes.roll import changed_locals, roll
from ..tensor import new
from ..tensor.records import AccumulateGrad, Node, Overwritten, edge, node_type, version_cell
from ..trace.loops import ends_loop_alone
from ..trace import tracer as tracer_module
from ..trace.tracer import Guard
from .effects import describe

MIN_CAPACITY = 64  # rows of a rolled loop's buffers on XLA, at least twice the traced trip count
MAX_REDECISIONS = 16  # NOTE [decisions]: traces of one call whose guards the program decided otherwise


class TraceOp:
    """Stands in for an op-table row in autograd: the record of a compiled call. The VJP of
    output `k` runs that output's backward graph on tensors, so it is traced like any rule
    (NOTE [rules trace])."""

    custom = False
    opaque = True  # its backward carries the function's own source lines, not the caller's
    uses_out = False

    def __init__(self, trace, k):
        self.trace, self.k = trace, k
        self.name = trace.name
        self.grad_fn_name = f"{trace.name}Backward"
        self.node = node_type(self.grad_fn_name)
        # what its backward reads, as node 0's Sources: the residuals (after the inputs), and
        # the arguments and own value eager's rules would read (NOTE [watched])
        slots, own = trace.watched.get(k, ((), False))
        self.watched = tuple(Source("saved", 0, i) for i in slots) + ((Source("result", 0),) if own else ())
        first = trace.n_inputs
        self.checks = tuple(Source("saved", 0, i) for i in range(first, first + len(trace.residuals.get(k, ())))) + self.watched

    def vjp(self, g, out, *saved):
        """`saved` is the trace's inputs, then the residuals this output's backward reads: a
        call of the trace's generated backward (NOTE [shown is run])."""
        tr = self.trace
        callee, returned = tr.backward_programs[self.k]
        grads = call(callee, g, *saved[tr.n_inputs:])
        out = [None] * len(saved)
        for j, gi in zip(returned, grads):
            out[tr.diff_inputs[j]] = gi
        return tuple(out)

    def arrays_vjp(self, node, g):
        """The gradient for each saved slot of `node` (arrays, None where there is none) for
        seed array `g`, by the trace's generated backward called as it is (NOTE [one call]).
        Raises, as the engine's check does, when a residual it reads was written in place."""
        tr = self.trace
        check_saved((node,), self.checks)
        residuals = node.saved[tr.n_inputs:]
        callee, returned = tr.backward_programs[self.k]
        args = [g] + [r._data for r in residuals]
        out = callee.fn(*args)
        grads = [None] * len(node.saved)
        for j, gi in zip(returned, owned(out if len(callee.graph.outputs) > 1 else (out,), args)):
            grads[tr.diff_inputs[j]] = gi
        return grads

    def saved_name(self, k):
        tr = self.trace
        if k < tr.n_inputs:
            return tr.fwd_inputs[k].hint
        return tr.backward_programs[self.k][0].graph.inputs[1 + k - tr.n_inputs].hint

    def differentiable_saved(self, node, k, memo):
        """Saved value k of `node` for a backward that is itself differentiated
        (create_graph=True): a residual is recomputed from the saved inputs by recorded
        operations, so that its dependence on them is part of the graph (the generated
        forward computed it without history). None for an input (it is the tensor itself)."""
        tr = self.trace
        if tr.detached.get(self.k):  # one Var stands for a value and its detached alias, or a rolled loop stops one
            raise RuntimeError(f"create_graph=True through a call of compiled {tr.name}, whose backward reads a value "
                               "it took without gradient (`.detach()`, `.data`, or no_grad in a rolled loop); "
                               "differentiate it twice with tg.grad, or uncompiled")
        if k < tr.n_inputs:
            return None
        if any(kind == "data" for kind, _, _ in tr.effects):  # its saved inputs hold the values it wrote since
            raise RuntimeError(f"create_graph=True through a call of compiled {tr.name}, which writes into tensors "
                               "from outside it: its saved inputs no longer hold the values it read")
        res = memo.get(id(node))
        if res is None:
            consts = [new(tr.const_values[id(v)]) for v in tr.consts]
            if tr.stopped is None:  # the unoptimised forward: a pass may have merged a stopped value with its source
                tr.stopped = _with_stops(tr.unoptimised, tr.flows, tr.traced)
            with using(grad_enabled=True):
                outs = run_tensors(tr.stopped, list(node.saved[:tr.n_inputs]) + consts)
            res = memo[id(node)] = [outs[tr.n_out + len(tr.effect_vars) + j] for j in tr.residuals[self.k]]
        return res[k - tr.n_inputs]


class Trace:
    """One cached path: its signature, guards, generated code and counters."""

    def __init__(self, name, signature, leaves, tracer, traced, outs, tree, captures, env, backend, device,
                 loops="roll", checkpoint=None):
        self.name, self.signature = name, signature
        self.backend, self.device = backend, device
        self.arg_names = [leaf[0] for leaf in leaves]
        self.positions = [leaf[4] for leaf in leaves]  # the argument each leaf belongs to
        self.in_vars = list(tracer.inputs)  # as they entered (an in-place write rebinds a tensor's Var)
        self.captured, self.env = captures, env
        self.guards, self.flows = tracer.guards, tracer.flows
        self.traced = {id(e.out) for e in tracer.eqns}  # the run's own equations (a rolled loop is not)
        self.guard_holds = [0] * len(tracer.guards)  # times each guard held in runs where a later guard failed
        self.hits = 0
        self.out_tree, self.n_out = tree, len(outs)
        self.fwd_eqns, self.out_vars = tracer.eqns, [tracer.var(t) for t in outs]
        # the .grad tensors it reads and the random tensors it draws are inputs (NOTE [effects])
        self.grad_reads, self.grad_guards = [w for _, w, _ in tracer.grad_reads], tracer.grad_guards
        self.randoms = [draw for _, draw, _ in tracer.randoms]
        self.fwd_inputs = (self.in_vars + [v for v, _ in tracer.captured] + [v for v, _, _ in tracer.grad_reads]
                           + [v for v, _, _ in tracer.randoms])
        self.n_inputs = len(self.fwd_inputs)
        effects = tracer.effects()
        self.effects = [(kind, where, v is not None) for kind, where, v in effects]
        self.effect_vars = [v for _, _, v in effects if v is not None]
        for (v, w, _) in tracer.grad_reads:
            v.hint = re.sub(r"\W+", "_", describe(self, ("grad", w))).strip("_")
        inputs_ids = {id(v) for v in self.fwd_inputs}
        for kind, where, v in effects:  # `fc1_weight` is the new value of fc1.weight, `g_fc1_weight` its .grad
            if v is not None and id(v) not in inputs_ids:
                v.hint = re.sub(r"\W+", "_", ("g_" if kind == "grad" else "") + describe(self, where)).strip("_")
        self.consts = [v for v, _ in tracer.consts]
        self.const_values = {id(v): a for v, a in tracer.consts}
        inputs = (traced + [t for _, t in tracer.captured] + [t for _, _, t in tracer.grad_reads]
                  + [t for _, _, t in tracer.randoms])
        self.diff_inputs = [i for i, t in enumerate(inputs) if t._requires_grad]
        # outputs whose graph a backward() inside the function already ran (and freed)
        self.freed = [k for k, t in enumerate(outs) if t.grad_fn is not None and t.grad_fn.saved is None]
        self.retains = {k for k, t in enumerate(outs) if t.grad_fn is not None and t.grad_fn.retained is t}
        # outputs another output is computed from: that one's backward goes to the inputs, not through them
        reach = [_reach(t) if len(outs) > 1 else {} for t in outs]
        self.upstream = {j for j, t in enumerate(outs) if t.grad_fn is not None and any(
            id(t.grad_fn) in r and u.grad_fn is not t.grad_fn for r, u in zip(reach, outs))}
        if self.retains & self.upstream:
            raise tracer_module.TraceError(f"retain_grad() of output {min(self.retains & self.upstream)} of compiled "
                                           f"{name}, which another output is computed from: its .grad would stay "
                                           "None; call it uncompiled")
        # one backward graph per output that depends on a differentiable input
        targets = [edge(inputs[i]) for i in self.diff_inputs]
        wanted = [k for k, t in enumerate(outs)
                  if t._requires_grad and t.dtype.kind == "f" and targets and k not in self.freed]
        self.capacity = {}  # guard index -> the capacity of a rolled loop's buffers it checks
        self.unrolled = {}  # Src of a loop's test -> why it stays unrolled
        self.counted = {}  # Src of a loop no test ends -> its traced count (NOTE [loops])
        self.bound = {}  # Src of a loop an argument bounds (`for t in range(n)`) -> the argument's name
        self.loops = self._roll(tracer, outs, wanted, checkpoint) if loops == "roll" else ()
        for b in tracer.bounds:  # NOTE [loops]: n is an input; this trace holds for the n it ran, or from `peeled` on
            self._bound_guard(b, loops == "roll")
        self.detached = {}  # per output: would a create_graph recompute miss where the run stopped a gradient?
        self.watched = {}  # NOTE [watched]: per output, the input slots (and its own value) its backward reads
        if not self.loops:
            self.raw_backward = {}
            for k in wanted:
                self.raw_backward[k], reads = _backward_of(tracer, outs[k], targets, f"{name}_backward")
                self.detached[k] = any(type(t) is not Var and t is not None and not t._requires_grad and t._base
                                       is not None and t._base[0]._requires_grad for t in reads)  # x.detach(), x.data
                self.watched[k] = _watched(reads, tracer, self.fwd_inputs, self.out_vars[k])
        else:  # a rolled backward replays no rules: each node's rule is asked alone
            cache, stop = {}, {id(t) for t in targets}
            stops = _stops(tracer, [self.fwd_inputs[i] for i in self.diff_inputs])
            self.traced = set()  # none to stop (else create_graph raises); the unrolled body's Vars are freed
            for k in wanted:
                self.detached[k] = stops
                read = [tracer.node_out.get(id(n)) if j < 0 else n.saved[j] for n in walk([edge(outs[k])], stop)[0]
                        if isinstance(n, Node) for j in rule_reads(n, cache)]
                self.watched[k] = _watched(read, tracer, self.fwd_inputs, self.out_vars[k])
        self.fn = None  # the forward program, generated on first use (tg.grad needs only a joint one)
        self.plain = None  # the forward without residuals (NOTE [gradient with the forward])
        self.joint = {}  # (argnums, with value) -> (fn, source, graph)
        # per differentiable output k: (Callee of its backward, which diff inputs it returns)
        self.backward_programs, self.residuals, self.ops = {}, {}, {}
        self.residual_outs = []  # (residual, output) pairs: an output that a backward reads

    def _roll(self, tracer, outs, wanted, checkpoint=None):
        """Loops found in the trace become loops of its programs (NOTE [loops]): the forward
        rolled, each backward the VJP of the rolled forward. The sources of the rolled
        loops; () when none rolls, or when the tape's gradient is not its equations' (a
        custom Function, a hook, a saved value written in place)."""
        g = Graph(tuple(self.fwd_inputs + self.consts), tuple(self.fwd_eqns), tuple(self.out_vars + self.effect_vars),
                  name=self.name)
        bounds = [b for b in tracer.bounds if _same_state(b)]
        rolled = hoist(roll(g, tracer.flows, ends_loop_alone, self.unrolled, tracer.states, bounds))
        loops = tuple(e.src for e in rolled.eqns if e.op == "while")
        self.counted = {e.src: e.kw["count"] for e in rolled.eqns if e.op == "while" and "count" in e.kw}
        self.bound = {e.src: e.kw["bound"] for e in rolled.eqns if e.op == "while" and "bound" in e.kw}
        if not loops:
            return ()
        if not _plain_tape(outs):
            for b in bounds:
                b.pop("peeled", None)
            for src in loops:
                self.unrolled[src] = ("its gradient is not its operations' alone (a custom Function, a hook, or a "
                                      "value written in place after it was saved)")
            return ()
        capacity = None
        if self.backend.name != "numpy":  # XLA: saved values go into buffers of a fixed size
            trips = max(self.counted.get(src) or sum(1 for x in self.guards if x.src == src) for src in loops)
            capacity = max(MIN_CAPACITY, 1 << (2 * trips - 1).bit_length())
        stacks = Stacks(capacity, checkpoint)
        self.raw_backward = {k: vjp(rolled, self.diff_inputs, [k], tracer.flows, stacks).replace(
            name=f"{self.name}_backward") for k in wanted}
        self.fwd_eqns = []
        for e in stacks.save(rolled).eqns:
            if e.op == "while" and self.backend.name == "numpy" and "count" not in e.kw:  # NOTE [fast forward]
                e = e._replace(params=e.params + (("limit", tracer_module.MAX_TRACE_LENGTH // len(e.kw["body"].eqns)),))
            self.fwd_eqns.append(e)
            if e.kw.get("capacity") or e.kw.get("limit"):  # a loop that filled its buffers may have had more to do
                self.fwd_eqns += self._capacity_guard(e)
        return loops

    def _bound_guard(self, b, rolling):
        """A guard on an argument that bounds a loop: it equals its traced value, unless its
        loop rolled; then it is at least the count of the iterations peeled off the loop."""
        peeled, var, src = b.get("peeled"), b["var"], Src(b["file"], b["lines"][0])
        if peeled == 0:
            return
        if peeled is None and rolling:
            self.unrolled[src] = (f"it ran {b['value']} times when traced: a loop is seen from two iterations on"
                                  if b["value"] < 2 else "its counter indexes a Python value, not a tensor"
                                  if b.get("lists") else "its iterations change Python values the trace does not see"
                                  if not _same_state(b) else "its iterations differ (operations, shapes, "
                                  "constants or gradient paths), or its gradient is not its operations' alone")
        test = var
        if peeled:
            test = Var((), np.dtype(bool), "ok")
            self.fwd_eqns.insert(0, Eqn("ge", (var, Lit(peeled)), (), test))
        g = Guard(test, True if peeled else b["value"], src, "bool" if peeled else "range", len(self.guards))
        self.guards.append(g)
        self.guard_holds.append(0)
        self.fwd_eqns.insert(1 if peeled else 0, Eqn("guard", (test,), (("expected", g.expected), ("index", g.index)),
                                                     Var((), "bool", "guard"), src))

    def _capacity_guard(self, e):
        """`trips < capacity` (or the limit of a NumPy loop), a guard (NOTE [loops])."""
        cap = e.kw.get("capacity") or e.kw["limit"]
        room = Var((), np.dtype(bool), "room")
        g = Guard(room, True, e.src, "capacity" if e.kw.get("capacity") else "limit", len(self.guards))
        self.capacity[g.index] = cap
        self.guards.append(g)
        self.guard_holds.append(0)
        return [Eqn("lt", (e.outs[e.kw["carried"]], Lit(cap)), (), room, e.src),
                Eqn("guard", (room,), (("expected", True), ("index", g.index)), Var((), np.dtype(bool), "guard"),
                    e.src)]

    # ---- programs ----
    def forward(self):
        """The forward program: its outputs, then the residuals that each output's backward
        graph reads (only what a backward needs is saved)."""
        if self.fn is None:
            with gc_paused():
                self._generate_forward()
        return self.fn

    def program(self, grad):
        """The forward program a call runs: under no_grad, for a trace whose forward computes
        gradients, the forward alone (NOTE [gradient with the forward])."""
        fn = self.forward()
        return fn if grad or self._gradient_with_forward() is None else self.forward_only()

    def _generate_forward(self):
        position = {}  # id(Var) -> its place among the residuals the forward returns
        graphs, eqns = {}, list(self.fwd_eqns)
        with_forward = self._gradient_with_forward()
        for k, g in self.raw_backward.items():
            returned = tuple(j for j, o in enumerate(g.outputs) if o is not None)  # gradients it reaches
            if k == with_forward:  # NOTE [gradient with the forward]
                seed = g.inputs[0]
                eqns += [Eqn("full", (), (("shape", ()), ("value", 1.0), ("dtype", seed.dtype)), seed)] + list(g.eqns)
                grads = [g.outputs[j] for j in returned]
                units = list({id(u): u for u in grads}.values())  # one Var may be two arguments' gradient
                seed = Var((), seed.dtype, seed.hint)
                scaled = {id(u): Eqn("mul", (seed, u), (), Var(u.shape, u.dtype, u.hint)) for u in units}
                g = Graph((seed, *units), tuple(scaled.values()), tuple(scaled[id(u)].out for u in grads), name=g.name)
                pick = [units.index(u) for u in grads]
            else:
                g = optimize(g.replace(outputs=tuple(g.outputs[j] for j in returned)))
            graphs[k] = (g, returned)
            self.residuals[k] = [position.setdefault(id(v), len(position)) for v in g.inputs[1:]]
            self.ops[k] = TraceOp(self, k)
        residual_vars = [None] * len(position)
        for g, _ in graphs.values():
            for v in g.inputs[1:]:
                residual_vars[position[id(v)]] = v
        out_at = {id(v): k for k, v in enumerate(self.out_vars) if v not in self.fwd_inputs}  # (an argument returned)
        self.residual_outs = [(j, out_at[id(v)]) for j, v in enumerate(residual_vars) if id(v) in out_at]
        fwd = Graph(tuple(self.fwd_inputs + self.consts), tuple(eqns),
                    tuple(self.out_vars + self.effect_vars + residual_vars), name=self.name)
        self.graph, self.unoptimised = _keep_inputs(optimize(fwd), fwd.inputs), fwd
        self.stopped = None  # the forward create_graph recomputes residuals with, made once (`_with_stops`)
        fn, self.source = self.load(self.graph, self.name + "_forward")
        for k, (g, returned) in graphs.items():  # NOTE [shown is run]: what f.code() prints is what backward() calls
            name = f"{self.name}_backward" + (f"_{k}" if k else "")
            bwd, source = self.load(g, name, as_tuple=len(returned) > 1, constants=())
            if k == with_forward:
                bwd = _scaled(bwd, len(returned) > 1, pick)
            self.backward_programs[k] = (Callee(name, g, bwd, source), returned)
        self.fn = fn

    # NOTE [gradient with the forward]: on XLA, a trace whose one differentiable output is a
    # float scalar (a loss) computes that output's gradients in its forward program, for a
    # seed of 1: `loss = f(x); loss.backward()` compiles one program and runs one, where a
    # forward and a backward would compile and run two. The backward it calls multiplies
    # those gradients by the seed (the VJP of a scalar is linear in it), and skips the
    # multiply for the seed of 1 that `backward()` makes (x * 1 == x exactly), so that no
    # program is compiled for it. Under no_grad the forward alone runs (`forward_only`).
    def _gradient_with_forward(self):
        """The output whose gradients the forward computes (NOTE [gradient with the forward]), or None."""
        if self.backend.name != "jax" or len(self.raw_backward) != 1:
            return None
        (k, g), = self.raw_backward.items()
        out = self.out_vars[k]
        if out.shape != () or out.dtype.kind != "f" or any(o is not None and o.dtype != out.dtype for o in g.outputs):
            return None
        return k

    def forward_only(self):
        """The forward program without residuals, for calls under no_grad of a trace whose
        forward computes gradients (NOTE [gradient with the forward])."""
        if self.plain is None:
            self.plain = self.load(self.forward_graph(), self.name + "_forward")[0]
        return self.plain

    @property
    def backward_sources(self):
        return {k: callee.source for k, (callee, _) in self.backward_programs.items()}

    def load(self, graph, fname, as_tuple=True, constants=None):
        """`graph` as generated code on this trace's backend: (function, source). The trace's
        constants are globals of the code (a backward gets them as residuals instead)."""
        extra = {} if self.device is None else {"device": self.device}
        constants = self.consts if constants is None else constants
        fn, source = self.backend.build(graph, fname, constants, self.const_values, as_tuple=as_tuple, **extra)
        show_code(source)
        return fn, source

    def joint_program(self, argnums, value=True, fn_name=None):
        """The forward and the backward as one generated function returning ([value], *grads)."""
        entry = self.joint.get((argnums, value))
        if entry is None:
            with gc_paused():
                graph = self.joint_graph(argnums, value=value, fn_name=fn_name)
                fn, source = self.load(graph, f"{self.name}_value_and_grad" if value else f"{self.name}_grad")
            entry = self.joint[(argnums, value)] = (fn, source, graph)
        return entry[0]

    def joint_graph(self, argnums, seed_input=False, value=True, fn_name=None):
        """Forward + backward; the output's cotangent is 1, or the last input with `seed_input`.
        The gradients come in the order of `argnums`, each argument's leaves in order."""
        who = fn_name or self.name
        if self.effects:
            raise TypeError(f"grad: {who} changes tensors from outside it (a backward() into .grad, an in-place "
                            "write into a weight or buffer); tg.grad returns gradients instead: call it on a function "
                            "that computes the loss and changes nothing")
        if self.n_out != 1 or self.out_tree != ("T",):
            raise TypeError(f"grad: {who} must return a single scalar tensor")
        out = self.out_vars[0]
        if not seed_input and (int(np.prod(out.shape)) != 1 or out.dtype.kind != "f"):
            raise TypeError(f"grad: {who} must return a scalar float tensor, got {out.dtype}{list(out.shape)}")
        positions = [i for p in argnums for i, a in enumerate(self.positions) if a == p]
        missing = [self.arg_names[i] for i in positions if i not in self.diff_inputs]
        if missing:  # a trace made without these as inputs to differentiate: never answer zeros for them
            raise TypeError(f"grad: the trace of {who} does not differentiate {', '.join(missing)}")
        bwd = self.raw_backward.get(0)
        seed = bwd.inputs[0] if bwd is not None else None
        eqns = list(self.fwd_eqns)
        grads = []
        if seed_input and seed is None:
            seed = Var(out.shape, out.dtype, "g_" + out.hint)
        if bwd is not None:
            if not seed_input:
                eqns.append(Eqn("full", (), (("shape", seed.shape), ("value", 1.0), ("dtype", seed.dtype)), seed))
            eqns += bwd.eqns
        for p in positions:
            g = bwd.outputs[self.diff_inputs.index(p)] if bwd is not None else None
            if g is None:  # the value does not depend on this argument: its gradient is zero
                v = self.in_vars[p]
                g = Var(v.shape, v.dtype, "g_" + v.hint)
                eqns.append(Eqn("full", (), (("shape", v.shape), ("value", 0.0), ("dtype", v.dtype)), g))
            grads.append(g)
        inputs = tuple(self.fwd_inputs + self.consts) + ((seed,) if seed_input else ())
        graph = Graph(inputs, tuple(eqns), (out, *grads) if value else tuple(grads), name=self.name)
        return _keep_inputs(optimize(graph), graph.inputs)

    def forward_graph(self):
        """The forward alone (no residuals), as export writes it."""
        graph = Graph(tuple(self.fwd_inputs + self.consts), tuple(self.fwd_eqns), tuple(self.out_vars + self.effect_vars),
                      name=self.name)
        return _keep_inputs(optimize(graph), graph.inputs)

    def record(self, outs, inputs, residuals, src):
        """Give the outputs of a call (tensors) their autograd nodes: each saves the call's
        inputs and the residuals its backward reads."""
        tensors = [_residual(r, inputs + tuple(outs)) for r in residuals]
        for j, k in self.residual_outs:  # an output another output's backward reads (JAX shares no memory)
            if tensors[j]._version_cell is None:
                tensors[j]._version_cell = version_cell(outs[k])
        in_edges = tuple(edge(a) for a in inputs)  # a residual is a new tensor: its edge is None
        for k, res_idx in self.residuals.items():
            op, t = self.ops[k], outs[k]
            t.grad_fn = op.node(op, inputs + tuple(tensors[j] for j in res_idx), {}, t._data, src,
                                in_edges + (None,) * len(res_idx))
            t._requires_grad = True
            if k in self.retains:  # `h.retain_grad()` inside the function, h returned
                t.grad_fn.retained = t
        for k in self.freed:  # its backward already ran inside the call: a second one raises, as in PyTorch
            op = TraceOp(self, k)
            outs[k].grad_fn, outs[k]._requires_grad = node_type(op.grad_fn_name)(op, None, {}, outs[k]._data, src, ()), True

    # ---- describing ----
    def __repr__(self):
        inputs = ", ".join(f"{n}: {v.dtype}{list(v.shape)}" for n, v in zip(self.arg_names, self.in_vars))
        lines = [f"<Trace {self.name}({inputs}) runs={self.hits}"]
        lines += ["  " + g for g in self.describe_guards()]
        return "\n".join(lines) + ">"

    def describe_guards(self):
        """Guards in user terms, consecutive checks of one line grouped (a loop's test)."""
        caps = {self.guards[i].src: c for i, c in self.capacity.items()}
        out = [f"loop {s.text and '`' + s.text + '` ' or ''}at line {s.line}: rolled ("
               + (f"its traced {self.counted[s]} iterations" if s in self.counted and s not in self.bound else
                  f"one program for every {f'`{self.bound[s]}`' if s in self.bound else 'trip count'}"
                  f"{f' below {caps[s]}' if s in caps else ''}") + ")"
               for s in self.loops]
        checked = {e.kw["index"] for e in self.fwd_eqns if e.op == "guard"}  # those a rolled loop decides are gone
        i, gs, said = 0, [g for g in self.guards if g.index in checked and g.how not in ("capacity", "limit")], set()
        while i < len(gs):
            j = i
            while j + 1 < len(gs) and gs[j + 1].src == gs[i].src:
                j += 1
            decisions = [g.expected for g in gs[i:j + 1]]
            held = self.hits + min(self.guard_holds[g.index] for g in gs[i:j + 1])
            if j > i and all(d is True for d in decisions[:-1]) and decisions[-1] is False:
                what = f"True {j - i} times, then False (looped {j - i} times)"
            else:
                what = ", ".join(map(repr, decisions))
            if gs[i].src in self.unrolled and gs[i].src not in said:
                said.add(gs[i].src)
                what += f"; loop not rolled: {self.unrolled[gs[i].src]}"
            out.append(f"guard {gs[i].describe()}: {what}; held {held} times")
            i = j + 1
        return out


def _residual(r, tensors):
    """A residual as the tensor a backward reads. On NumPy one that is the array of a call's
    input or output, or a view of it (a parameter the backward reads, a transpose of it, the
    result `exp` returns), shares that tensor's version counter: an in-place write into it
    after the call then raises when the backward would read the changed value, as it does
    for eager operations (NOTE [versions])."""
    t = new(r)
    if type(r) is np.ndarray:  # (JAX arrays are immutable)
        for a in tensors:
            d = a._data
            if type(d) is np.ndarray and (r is d or (r.base is not None and np.may_share_memory(r, d))):
                t._version_cell = version_cell(a)
                break
    return t


def _scaled(backward, as_tuple, pick):
    """The generated backward `g_out * g_x` of NOTE [gradient with the forward], which returns
    the forward's gradients as they are for the seed of 1 that `backward()` makes (output i
    is unit `pick[i]`)."""
    def run(g, *units):
        if type(g) is np.ndarray and g.shape == () and g == 1:
            return tuple(units[i] for i in pick) if as_tuple else units[pick[0]]
        return backward(g, *units)

    run.__wrapped__ = backward
    return run


def _same_state(bound):
    """Did the body of a bound loop leave the same Python state (its counter aside) at each
    of its lines in every iteration (`python_state`: a local made in the first iteration
    counts from then on), and index only tensors with its counter?"""
    return not bound.get("lists") and not any(changed_locals(seen, bound["lines"][3]) for seen in bound["states"].values())


def _plain_tape(outs):
    """Is every node behind `outs` an op-table row without hooks, whose saved values are
    intact? Then the trace's equations tell its gradient (NOTE [loops])."""
    stack, seen = [t.grad_fn for t in outs if t.grad_fn is not None], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is AccumulateGrad:
            if n.variable._hooks:
                return False
            continue
        if OPS.get(n.op.name) is not n.op or n._hooks or n.saved is None or type(n.out_data) is Overwritten:
            return False
        for a in n.saved:
            vc = getattr(a, "_version_cell", None)
            if vc is not None and vc.clock > n.seq:
                return False
        stack.extend(e for e in n.edges if e is not None)
    return True


def _reach(t):
    """The nodes `t`'s backward walks (by id); none where a backward() inside the call freed them."""
    try:
        return walk([t.grad_fn])[1] if t.grad_fn is not None else {}
    except RuntimeError:  # its graph was freed: no hook or retained grad on it can run again anyway
        return {}


def _flows(f, j):
    """Did the run's gradient flow to input j of an equation (`f`: its entry of the tracer's flows)?"""
    return j < len(f) and f[j]


def _stops(tracer, inputs):
    """Did the run stop a gradient (`.detach()`, `.data`, no_grad) on a value that had one?"""
    diff = {id(v) for v in inputs}
    for e in tracer.eqns:
        f = tracer.flows.get(id(e.out), ())
        if type(e.out) is Var and np.dtype(e.out.dtype).kind == "f":  # not an index, a mask or a test
            if any(type(x) is Var and id(x) in diff and not _flows(f, j) for j, x in enumerate(e.ins)):
                return True
            if any(f):
                diff.add(id(e.out))
    return False


def _with_stops(g, flows, traced):
    """`g` with a `detach` before each input of a traced equation that its gradient did not
    flow to in the run (a `.detach()`, a no_grad block): run on tensors, it records the same
    graph as the run did. Equations not traced (a gradient computed in the forward) all flow."""
    eqns = []
    for e in g.eqns:
        if id(e.out) in traced:
            f, ins = flows.get(id(e.out), ()), list(e.ins)
            for j, x in enumerate(ins):
                if type(x) is Var and not _flows(f, j):
                    ins[j] = Var(x.shape, x.dtype, x.hint)
                    eqns.append(Eqn("detach", (x,), (), ins[j], None))
            e = e._replace(ins=tuple(ins))
        eqns.append(e)
    return g.replace(eqns=tuple(eqns))


def _keep_inputs(graph, inputs):
    """Generated functions keep every input as a parameter, used or not, so that calls
    can pass arguments positionally."""
    return graph.replace(inputs=tuple(inputs))


def _backward_of(tracer, out, targets, name):
    """The VJP of traced output `out` with respect to `targets` (autograd edges), as a
    Graph whose first input is the seed, then the forward Vars it reads (its residuals)."""
    root = edge(out)
    stop = {id(t) for t in targets}
    order, index, _ = walk([root], stop)
    names = []
    for n in order:
        v = tracer.node_out.get(id(n)) if isinstance(n, Node) else tracer.vars.get(id(getattr(n, "variable", None)))
        names.append(v.hint if v is not None else "v")
    target_idx = tuple(index.get(id(t), -1) for t in targets)
    seed = np.ones(out.shape, out.dtype)
    raw, sources, readers = backward_graph(order, index, (index[id(root)],), [seed], target_idx, names,
                                           const_name=lambda a: tracer.var(a).hint, stop_at_targets=True,
                                           inline_hooks=True)
    reads = saved_checks(dce(raw), readers)
    check_saved(order, reads)  # an in-place write inside the function, after a save
    sub, residuals, seed_var = {}, {}, None
    for v in raw.inputs:
        s = sources[id(v)]
        if s.kind == "seed":
            seed_var = v
            continue
        n = order[s.node]
        if s.kind == "result":
            fv = tracer.node_out[id(n)] if isinstance(n, Node) else tracer.vars[id(n.variable)]
        else:
            fv = tracer.var(n.saved[s.slot])
        sub[id(v)] = fv
        residuals.setdefault(id(fv), fv)
    eqns = tuple(e._replace(ins=tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in e.ins)) for e in raw.eqns)
    outputs = tuple(sub.get(id(x), x) if isinstance(x, Var) else x for x in raw.outputs)
    read = [tracer.node_out.get(id(order[r.node])) if r.kind == "result" else order[r.node].saved[r.slot] for r in reads]
    return Graph((seed_var,) + tuple(residuals.values()), eqns, outputs, name=name), read


# NOTE [watched]: eager autograd raises at backward() when a value its rules read was written
# in place since (NOTE [versions]); a compiled call's backward reads its own residuals, which
# on JAX are never the arguments' memory (and with the gradient in the forward, not even
# their values). So each output's trace records which arguments (or views of them) and
# whether its own value the eager rules of its backward read, and its backward checks
# those as eager's would, on either backend and either path (engine checks, NOTE [one call]).
# A rolled loop's backward is no replay of the rules, so each node's rule is asked alone
# (`rule_reads`); an argument the call wrote into is watched at the value it wrote.
def _watched(read, tracer, inputs, out):
    """(argument slots, reads its own output) among what the rules read (result Vars, saved tensors)."""
    slot = {id(v): i for i, v in enumerate(inputs)}
    entered = {id(t): slot[id(v)] for t, v, _ in tracer.entry.values() if id(v) in slot}  # also as written in
    slots, own = set(), False
    for x in read:
        if type(x) is Var or x is None:
            own = own or x is out
            continue
        while x._base is not None:  # a view or alias shares its base's storage, as eager decided (NOTE [views])
            x = x._base[0]
        v = tracer.vars.get(id(x))
        own = own or v is out
        i = slot.get(id(v), entered.get(id(x)))
        if i is not None:
            slots.add(i)
    return tuple(sorted(slots)), own

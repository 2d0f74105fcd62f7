"""The tracer (layer 5): records every primitive a run executes as IR, with the user's
source lines, and names values after the user's variables.

Values stay concrete while tracing (each op also runs), so shapes, dtypes and the
decisions of data-dependent Python control flow are known exactly. A `Tracer` records the
backward rules the engine replays; a `ForwardTracer` records a user function for
`tg.compile`.
"""
from __future__ import annotations

import numpy as np

from .. import tensor as T
from .._state import user_frame, user_src, using
from ..ir import Eqn, Lit, Src, Var
from .loops import ends_loop_alone, python_state
from .names import leaf_name
from .outside import Outside


class TraceError(RuntimeError):
    pass


class Tracer:
    """Records the operations of a backward's rules (NOTE [rules trace])."""

    compiling = False  # a ForwardTracer records a user function: guards, captures, constants
    abstract = True  # NOTE [values nobody reads]; a ForwardTracer's values decide guards
    live = False  # records an eager backward for one run only: user code in it may read values

    def __init__(self, src=None):
        self.eqns = []
        self.inputs = []
        self.vars = {}  # id(Tensor) -> Var
        self.keep = []  # traced tensors stay alive so that their ids stay unique
        self.src = src  # fixed source for every eqn; None: the user's current line; False: none

    def placeholder(self, data, hint):
        t = T.new(data)
        # an array, or a Python object (a hook) passed through to the code
        v = Var(getattr(data, "shape", ()), getattr(data, "dtype", np.dtype(object)), hint)
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
            f"a tensor of shape {t.shape} that is not an input of this trace was used: a backward (a custom "
            "Function's, a rule) computes with tensor operations on its arguments, not with tensors it makes from "
            "values (tg.tensor(array), tg.ones(...))")

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
        self.eqns.append(Eqn(op.name, tuple(ins), tuple(params.items()), v, src or None))

    def record_call(self, callee, args, outs):
        """`outs = callee(*args)`: a call of a generated function (NOTE [shown is run])."""
        self.record_many("call", args, (("fn", callee),), outs, [v.hint for v in callee.graph.outputs])

    def record_many(self, op, args, params, outs, hints):
        """An equation with several results (a call, a loop): `outs` are their tensors."""
        ins = tuple(self.var(a) if isinstance(a, T.Tensor) else Lit(a) for a in args)
        out_vars = []
        for t, hint in zip(outs, hints):
            out_vars.append(Var(t.shape, t.dtype, hint))
            self.vars[id(t)] = out_vars[-1]
            self.keep.append(t)
        self.eqns.append(Eqn(op, ins, params, tuple(out_vars), self.src or None))

    def alias(self, new, old):
        v = self.vars.get(id(old))
        if v is not None:
            self.vars[id(new)] = v
            self.keep.append(new)

    def produced(self, t):
        """`t` is the result of its grad_fn (a node made outside `record`: a custom Function)."""

    def constant(self, t):
        pass

    def read_only(self, t):
        """Could an in-place write into `t` not reach the tensor it stands for?"""
        return False

    def writing(self, t):
        """`t` is about to be written in place."""

    def records_into_outside(self, t):
        return False

    def set_data(self, t, value):
        """`t.data = value` while tracing."""
        t._data = value._data
        self.alias(t, value)

    def concretize(self, t, how):
        if self.live:
            return None
        s = user_src()
        where = f" at {s[0]}:{s[1]} `{Src(*s).text}`" if s else ""
        what = ("indexing with a boolean mask (the number of True values gives the result's shape)" if how == "mask"
                else f"`{how}()` of a tensor")
        raise TraceError(f"{what}{where} needs a tensor's value while transgrad records a backward (a custom "
                         "Function's backward, or a gradient rule): the recorded code must hold for any values. "
                         "Use tensor operations such as tg.where instead")


# NOTE [fast forward]: a long loop costs its first call a trace of every iteration (the user's
# Python runs each one). When a loop's test (one that ends it alone: trace/loops.py) has seen
# FAST_FORWARD iterations of the same operations and Python state, the tracer ends the loop
# there: its test decides to stop. What follows is traced on the values of that iteration, so
# the trace is only a guess: it stands if the loop rolls (its program then runs the loop to its
# real end) and every guard after it holds when the program runs on the real inputs. Any
# guard that fails (the forced exit itself when the loop did not roll), or an error raised
# while tracing after the forced exit, discards the guess and the function is traced again in
# full. A rolled NumPy loop that a test ends stops (failing a guard) after as many iterations
# as a trace may record (MAX_TRACE_LENGTH operations), so a runaway loop still ends in the
# TraceError of a full trace. The NumPy backend only: on XLA a rolled loop's buffers are
# sized from the traced count.
FAST_FORWARD = 8
MAX_TRACE_LENGTH = 1_000_000  # equations; a runaway data-dependent loop stops here


# NOTE [decisions]: tracing computes with eager NumPy operations, but the code that runs is
# generated (folded constants, a BLAS norm) or compiled by XLA (fused, reordered): a value
# that decides a path may differ in its last bit, and `int(s.item())` or `if x.sum() > 0`
# may come out another way. When the first run of a new trace fails one of its own guards,
# the function is traced again with that guard's decision taken from the program's value
# (`ForwardTracer.decisions`), until the trace and its program agree.
# NOTE [guards]: when a traced value reaches Python (`bool`, `int`, `float`, `.item()`), the
# tracer records the decision as an equation `guard(v)[expected, index]` in the stream, right
# after the equations that compute v. Passes keep guards (dce) and never merge them (their
# index differs). NumPy code checks each inline (`if not lt: raise GuardFailed(0)`); an XLA
# program cannot raise, so the JAX backend returns the guarded values and the host checks
# them (passes/guards.py). Either way a failed guard discards the result and retraces.
class Guard:
    """A decision the traced run took on a tensor value: `bool(v)`, `int(v)`, `v.item()`..."""

    __slots__ = ("var", "expected", "src", "how", "index")

    def __init__(self, var, expected, src, how, index):
        self.var, self.expected, self.src, self.how, self.index = var, expected, src, how, index

    def describe(self):
        return f"line {self.src.line} `{self.src.text}`" if self.src else f"`{self.how}()` on a traced value"


class ForwardTracer(Outside, Tracer):
    """Traces a user function: its arguments are placeholders, tensors from outside the
    function (closures, globals) become captured inputs read at every call, tensors made
    inside it become constants, and each value that reaches Python becomes a guard
    (NOTE [guards]): an equation `guard` in the stream that generated code re-checks. What
    it changes of tensors from outside comes back as effects (NOTE [effects])."""

    abstract = False

    def __init__(self, decisions=None, fast_forward=False):
        super().__init__()
        self._init_outside()
        self.decisions = decisions or {}  # guard index -> the value the generated program computed there
        self.captured = []  # (Var, Tensor)
        self.consts = []  # (Var, array)
        self.guards = []
        self.node_out = {}  # id(autograd Node) -> Var of its output
        self.flows = {}  # id(out Var) -> per input, whether autograd sends it a gradient (NOTE [loops])
        self.states = {}  # guard index -> the Python state of the user's frame at a bool() (NOTE [loops])
        self.bounds = []  # the loops that parameters bound: {var, value, file, lines}; their bodies' states by line
        self.fast_forward = fast_forward  # NOTE [fast forward]
        self.loop_seen = {}  # Src of a loop's test -> (place, decision, state, last iteration's operations, repeats)
        self.forced = []  # indices of the guards that ended a loop early

    def arg(self, data, requires_grad, hint, frozen=False):
        """The placeholder of a leaf argument; `frozen`: it came as an array, not a tensor."""
        t = self.placeholder(data, hint)
        t._requires_grad = requires_grad
        self.enter(t, self.inputs[-1], ("arg", len(self.inputs) - 1), frozen)
        return t

    compiling = True

    def capture(self, t):
        if t.grad_fn is not None and id(t.grad_fn) in self.node_out:  # a new view of a traced value
            v = self.node_out[id(t.grad_fn)]
            self.vars[id(t)] = v
            self.keep.append(t)
            return v
        v = Var(t.shape, t.dtype, leaf_name(t, "captured"))
        self.vars[id(t)] = v
        self.keep.append(t)
        self.enter(t, v, ("cap", len(self.captured)))
        self.captured.append((v, t))
        return v

    def alias(self, new, old):
        if id(old) not in self.vars and isinstance(old, T.Tensor):
            self.capture(old)  # `W.data` of a tensor from outside: the alias reads W at every call
        super().alias(new, old)

    def constant(self, t):
        v = Var(t.shape, t.dtype, "const")
        self.vars[id(t)] = v
        self.keep.append(t)
        self.consts.append((v, t._data))

    def produced(self, t):
        self.node_out[id(t.grad_fn)] = self.var(t)

    def record(self, op, args, params, out):
        super().record(op, args, params, out)
        src = self.eqns[-1].src
        for b in self.bounds:  # what the body of `for t in range(n)` leaves in Python, at each of its lines
            if src is not None and src.file == b["file"] and b["lines"][1] <= src.line <= b["lines"][2]:
                frame = user_frame()
                b["states"].setdefault(src.line, []).append(python_state(frame))
                if not all(isinstance(frame.f_locals.get(x), T.Tensor) for x in b["lines"][4]):
                    b["lists"] = True  # `ws[t]` of a Python list: values the trace does not see
        if out.grad_fn is not None:
            self.node_out[id(out.grad_fn)] = self.eqns[-1].out
            self.flows[id(self.eqns[-1].out)] = tuple(e is not None for e in out.grad_fn.edges)
        if len(self.eqns) > MAX_TRACE_LENGTH:
            s = user_src()
            raise TraceError(
                f"trace exceeded {MAX_TRACE_LENGTH} operations (last at {s[0]}:{s[1]}); a data-dependent "
                "loop may not terminate for this input")

    def concretize(self, t, how):
        if how in ("numpy", "tolist", "array"):
            s = user_src()
            where = f" at {s[0]}:{s[1]}" if s else ""
            raise TraceError(
                f"{'.array' if how == 'array' else how + '()'} of a tensor inside a compiled function{where}: its values would be frozen into the "
                "trace. Use tensor operations, or call the function eagerly")
        d = t._data
        if d.size != 1:
            return  # the conversion itself raises the usual error
        try:
            value = d.item()
        except Exception as e:  # an abstract JAX value (under jax.vmap or jax.jit)
            s = user_src()
            raise TraceError(
                f"{how}() of a tensor{f' at {s[0]}:{s[1]}' if s else ''} needs its value, but it is abstract here "
                "(inside jax.vmap or jax.jit): data-dependent control flow can only be traced with concrete "
                "inputs") from e
        expected = bool(value) if how == "bool" else int(value) if how in ("int", "index", "mask") else (
            float(value) if how == "float" else value)
        index = len(self.guards)
        decided = index in self.decisions
        if decided:  # NOTE [decisions]: the program that runs decides, not this run's eager arithmetic
            expected = type(expected)(self.decisions[index])
        s = user_src()
        src = s and Src(*s)
        if how == "bool":  # a loop's test, maybe: what Python state its iterations change
            state = self.states[index] = python_state(user_frame())
            if self.fast_forward and not decided and src and self._ends_early(src, expected, state):
                decided, expected = True, not expected
        g = Guard(self.var(t), expected, src, how, index)
        self.guards.append(g)
        self.eqns.append(Eqn("guard", (g.var,), (("expected", expected), ("index", g.index)), Var((), "bool", "guard"), g.src))
        return np.asarray(expected, d.dtype).reshape(d.shape) if decided else None

    def _ends_early(self, src, expected, state):
        """NOTE [fast forward]: has the loop of test `src` repeated the same iteration
        FAST_FORWARD times? Then its test now decides to end it."""
        now, seen = len(self.eqns), self.loop_seen.get(src)
        body = repeats = None
        if seen is not None and seen[1] == expected and seen[2] == state:
            body = tuple((e.op, e.out.shape if type(e.out) is Var else None) for e in self.eqns[seen[0]:now])
            repeats = seen[4] + 1 if body == seen[3] else 0
        self.loop_seen[src] = (now, expected, state, body, repeats or 0)
        if (repeats or 0) >= FAST_FORWARD and ends_loop_alone(src):
            self.forced.append(len(self.guards))
            return True
        return False


def tracing(tracer, grad=False):
    """`with tracing(tracer):` the operations run now are recorded by `tracer`."""
    return using(tracer=tracer, grad_enabled=grad)

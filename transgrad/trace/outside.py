"""Tensors from outside a compiled function: what a trace reads of them, and what it changes.

NOTE [effects]: a training step changes tensors that outlive it: `loss.backward()` adds
into the `.grad` of the parameters, `opt.zero_grad()` clears them, `with tg.no_grad():
w -= lr * w.grad` writes into a weight, BatchNorm updates its running statistics. A trace
must change nothing its caller sees (the traced run computes real values, and a guard may
yet fail), so the tracer keeps, for each tensor from outside (an argument, a captured
tensor, a `.grad` it read), its value and its `.grad` as traced values, and afterwards
gives the caller's tensors back what they held. The generated program returns their final
values as extra outputs, and each call writes them into the tensors it finds for this call
(the same paths that found its inputs), after the program ran and every guard held: a
call that fails a guard changes nothing. A `.grad` read from outside is an input of the
program, and whether it was None is checked at every call.

Random tensors (`tg.randn`, dropout masks) are inputs too, drawn from the generator at
every call, in the order the traced run drew them: a compiled function draws the numbers
its eager run would.
"""
from __future__ import annotations

from .. import tensor as T
from .._state import using
from ..ir import Var


class Outside:
    """The part of `ForwardTracer` that keeps tensors from outside (NOTE [effects]). A
    tensor's place ("where") is ("arg", i) for the i-th leaf argument, ("cap", j) for the
    j-th captured tensor, ("grad", where) for the `.grad` of another."""

    def _init_outside(self):
        self.entry = {}  # id(tensor) -> (tensor, the Var it enters with, where)
        self.snapshots = []  # what the caller's tensors held, given back after tracing
        self.grads = {}  # id(owner) -> (owner, its .grad as the trace sees it now)
        self.grad_reads = []  # (Var, where of the owner, tensor): .grad tensors read from outside
        self.grad_guards = []  # (where of the owner, whether its .grad was None)
        self.randoms = []  # (Var, draw, tensor): random tensors drawn again at every call
        self.frozen = set()  # ids of arguments passed as arrays: writes cannot reach the caller

    def enter(self, t, v, where, frozen=False):
        self.entry[id(t)] = (t, v, where)
        if frozen:
            self.frozen.add(id(t))
        elif where[0] != "arg":  # a placeholder is the tracer's own; these are the caller's
            vc, node = t._version_cell, t.grad_fn
            self.snapshots.append((t, t._data, node, getattr(node, "out_data", None), t._requires_grad, t._base,
                                   vc.count if vc is not None else 0))

    def outside(self, t):
        """Is `t` from outside the function (entering it now if the trace had not seen it)?"""
        if id(t) in self.entry:
            return True
        if id(t) in self.vars:
            return False
        self.var(t)  # captured
        return True

    def restore(self):
        """Give the caller's tensors back what they held before tracing."""
        for t, data, node, out_data, requires_grad, base, count in reversed(self.snapshots):
            t._data, t.grad_fn, t._requires_grad, t._base = data, node, requires_grad, base
            if hasattr(node, "out_data"):  # a write marked the node's result overwritten
                node.out_data = out_data
            if t._version_cell is not None:
                t._version_cell.count = count

    # ---- .grad ----
    def read_grad(self, t):
        if not self.outside(t):
            return t._grad
        if id(t) in self.grads:
            return self.grads[id(t)][1]
        where = self.entry[id(t)][2]
        if where[0] == "arg" and id(t) in self.frozen:
            return None
        g = t._grad
        self.grad_guards.append((where, g is None))
        if g is not None:
            v = Var(g.shape, g.dtype, "grad")
            self.vars[id(g)] = v
            self.keep.append(g)
            self.grad_reads.append((v, where, g))
            self.enter(g, v, ("grad", where))
        self.grads[id(t)] = (t, g)
        return g

    def write_grad(self, t, value):
        if value is not None:
            if not isinstance(value, T.Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
            if value.shape != t.shape:
                raise RuntimeError(f"assigned grad has data of a different size ({list(value.shape)}) than the "
                                   f"tensor ({list(t.shape)})")
            self.var(value)
        if not self.outside(t):
            t._grad = value
            return
        if id(t) in self.frozen:
            raise RuntimeError(f"setting .grad of an argument passed as an array (shape {t.shape}) inside a compiled "
                             "function: it could not reach the caller; pass a tensor")
        self.grads[id(t)] = (t, value)

    def add_grad(self, t, g, create_graph):
        """`backward()` adds `g` into `t.grad`: in place into a gradient that is already
        there, as PyTorch does (the caller's own `.grad` tensor takes the sum)."""
        cur = self.read_grad(t)
        if cur is None:
            new = g
            if not create_graph and g.grad_fn is not None:  # .grad holds no history
                new = T.new(g._data)
                self.alias(new, g)
        elif create_graph:
            new = cur + g
        else:
            with using(grad_enabled=False):
                s = cur + g
            self.vars[id(cur)] = self.var(s)
            cur._data = s._data
            new = cur
        if id(t) in self.entry:
            self.grads[id(t)] = (t, new)
        else:
            t._grad = new

    # ---- writes ----
    def read_only(self, t):
        """Could an in-place write into `t` not reach the caller (an argument given as an array)?"""
        return id(t) in self.frozen

    def writing(self, t):
        """`t` (and the bases it is a view of) are about to be written in place: tensors from
        outside enter the trace with the values they have now."""
        while t is not None:
            self.outside(t)
            t = t._base[0] if t._base is not None else None

    def records_into_outside(self, t):
        """Would an in-place write into `t` with gradient history change a tensor from outside?"""
        while t is not None:
            if id(t) in self.entry:
                return True
            t = t._base[0] if t._base is not None else None
        return False

    def set_data(self, t, value):
        """`t.data = value`: from now on `t` holds `value`'s values."""
        self.writing(t)
        self.vars[id(t)] = self.var(value)
        t._data = value._data

    # ---- random numbers ----
    def random(self, draw, t):
        """`t` was drawn by `draw(generator)`: an input of the trace, drawn anew at every call."""
        v = Var(t.shape, t.dtype, "noise")
        self.vars[id(t)] = v
        self.keep.append(t)
        self.randoms.append((v, draw, t))

    # ---- the result ----
    def effects(self):
        """[(kind, where, Var or None)]: the values the trace writes into tensors from outside
        ("data"), then the `.grad` it leaves them ("grad"; None clears it)."""
        out = []
        for t, v, where in self.entry.values():
            now = self.vars.get(id(t))
            if now is not v and id(t) not in self.frozen:
                out.append(("data", where, now))
        for owner, g in self.grads.values():
            where = self.entry[id(owner)][2]
            if g is None:
                out.append(("grad", where, None))
                continue
            e = self.entry.get(id(g))
            if e is not None and e[2] == ("grad", where):
                continue  # the caller's own .grad tensor, written (or not) as data
            out.append(("grad", where, self.var(g)))
        return out

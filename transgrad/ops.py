"""THE op table: one row per primitive.

A row gives the primitive's inputs, its params, the array expression that code generation
emits (`xp` is the backend's array namespace, NumPy or jax.numpy), and its VJP written in
transgrad's own Tensor API, so that running a rule on tracing tensors records the
backward as ordinary IR (NOTE [rules trace]). The rule vocabulary is fixed: `g` is the
output cotangent, `out` the primal result, then the inputs by name and the params as
keywords. A rule returns one cotangent per input (None for none); NONDIFF marks a
primitive with no gradient. A row's `name` is its grad_fn name, as PyTorch spells it.
A rule reads the values PyTorch's formula saves (relu its result, div its operands), so
that an in-place write raises exactly where PyTorch's does (NOTE [versions]).
"""
from __future__ import annotations

import dis

from . import tensor as T
from .codegen.template import Template
from .rules import extreme_vjp, matmul_vjp, pow_vjp, reduced_count, split_vjp, sum_to, unreduce

NONDIFF = None


class Op:
    __slots__ = ("name", "inputs", "variadic", "params", "template", "vjp", "grad_fn_name", "tpl", "impl",
                 "uses_out", "view")

    def __init__(self, name, inputs, params, template, vjp, grad_fn_name=None):
        self.name = name
        names = inputs.split()
        self.variadic = bool(names) and names[-1].startswith("*")  # the last input may be `*xs`
        self.inputs = tuple(n.lstrip("*") for n in names)
        self.params = tuple(params.split())
        self.template = template
        self.vjp = vjp
        camel = "".join(p.capitalize() for p in name.split("_"))
        self.grad_fn_name = grad_fn_name or f"{camel}Backward0"
        self.tpl = Template(template)
        self.impl = None
        # NumPy may return a view of the first input (NOTE [versions]: views share versions)
        self.view = name in ("reshape", "expand", "permute", "transpose", "getitem")
        # does the rule read `out`? If not, the backward need not keep the result
        self.uses_out = vjp is not None and any(
            i.opname.startswith("LOAD_FAST") and i.argval == "out" for i in dis.get_instructions(vjp))  # the eager NumPy function, built from the template by backends.numpy

    def __repr__(self):
        return f"<op {self.name}>"


OPS: dict[str, Op] = {}


def op(name, inputs, params, template, vjp, grad_fn_name=None):
    OPS[name] = Op(name, inputs, params, template, vjp, grad_fn_name)


def _where(c, a, b):
    return T.where(c, a, b)


def _index_put(g, idx, shape, index, accumulate):
    return T.apply(OPS["index_put"], g, *idx, shape=shape, index=index, accumulate=accumulate)


def _setitem(a, v, idx, index):
    return T.apply(OPS["setitem"], a, v, *idx, index=index)


def _getitem(g, idx, index):
    return T.apply(OPS["getitem"], g, *idx, index=index)


def _scatter_add(g, idx, shape, axis, keepdims):
    """The cotangent of picking `idx` along `axis`: g added at those places of zeros(shape)."""
    g = g if keepdims else g.reshape(idx.shape)
    return T.apply(OPS["scatter_add"], g, idx, shape=shape, axis=axis)


def _take_along(g, idx, axis):
    return T.apply(OPS["max_dim"], g, idx, axis=axis, keepdims=True)


# fmt: off
#  name         inputs   params                   emitted expression                                   vjp(g, out, *inputs, **params)
op("add",       "a b",   "",                      "{a} + {b}",                                         lambda g, out, a, b: (sum_to(g, a), sum_to(g, b)))
op("sub",       "a b",   "",                      "{a} - {b}",                                         lambda g, out, a, b: (sum_to(g, a), sum_to(-g, b)))
op("mul",       "a b",   "",                      "{a} * {b}",                                         lambda g, out, a, b: (sum_to(g * b, a), sum_to(g * a, b)))
op("div",       "a b",   "",                      "{a} / {b}",                                         lambda g, out, a, b: (sum_to(g / b, a), sum_to(-(g * a) / (b * b), b)))
op("pow",       "a b",   "",                      "{a} ** {b}",                                        pow_vjp)
op("maximum",   "a b",   "",                      "xp.maximum({a}, {b})",                              lambda g, out, a, b: (sum_to(_where(a > b, g, _where(a == b, g * 0.5, 0)), a), sum_to(_where(a < b, g, _where(a == b, g * 0.5, 0)), b)))
op("minimum",   "a b",   "",                      "xp.minimum({a}, {b})",                              lambda g, out, a, b: (sum_to(_where(a < b, g, _where(a == b, g * 0.5, 0)), a), sum_to(_where(a > b, g, _where(a == b, g * 0.5, 0)), b)))
op("neg",       "a",     "",                      "-{a}",                                              lambda g, out, a: (-g,))
op("exp",       "a",     "",                      "xp.exp({a})",                                       lambda g, out, a: (g * out,))
op("log",       "a",     "",                      "xp.log({a})",                                       lambda g, out, a: (g / a,))
op("sin",       "a",     "",                      "xp.sin({a})",                                       lambda g, out, a: (g * a.cos(),))
op("cos",       "a",     "",                      "xp.cos({a})",                                       lambda g, out, a: (-(g * a.sin()),))
op("tanh",      "a",     "",                      "xp.tanh({a})",                                      lambda g, out, a: (g * (1 - out * out),))
op("sigmoid",   "a",     "",                      "1 / (1 + xp.exp(-{a}))",                            lambda g, out, a: (g * out * (1 - out),))
op("relu",      "a",     "",                      "xp.maximum({a}, 0)",                                lambda g, out, a: (_where(out > 0, g, 0),))
op("abs",       "a",     "",                      "xp.abs({a})",                                       lambda g, out, a: (g * a.sign(),))
op("sqrt",      "a",     "",                      "xp.sqrt({a})",                                      lambda g, out, a: (g / (2 * out),))
op("clamp",     "a",     "lo hi",                 "xp.clip({a}, {lo}, {hi})",                          lambda g, out, a, lo, hi: (g * ((a >= lo) if lo is not None else 1) * ((a <= hi) if hi is not None else 1),), "ClampBackward1")
op("where",     "c a b", "",                      "xp.where({c}, {a}, {b})",                           lambda g, out, c, a, b: (None, sum_to(_where(c, g, 0), a), sum_to(_where(c, 0, g), b)))
op("astype",    "a",     "dtype",                 "{a}.astype({dtype})",                               lambda g, out, a, dtype: (g.astype(a.dtype) if a.dtype.kind == "f" else None,), "ToCopyBackward0")
op("clone",     "a",     "",                      "{a}.copy()",                                        lambda g, out, a: (g,))
op("sum",       "a",     "axis keepdims",         "xp.sum({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: (unreduce(g, a.shape, axis, keepdims),))
op("mean",      "a",     "axis keepdims",         "xp.mean({a}, axis={axis}, keepdims={keepdims})",    lambda g, out, a, axis, keepdims: (unreduce(g / reduced_count(a.shape, axis), a.shape, axis, keepdims),))
op("amax",      "a",     "axis keepdims",         "xp.max({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: extreme_vjp(g, out, a, axis, keepdims), "MaxBackward1")
op("amin",      "a",     "axis keepdims",         "xp.min({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: extreme_vjp(g, out, a, axis, keepdims), "MinBackward1")
op("max_dim",   "a idx", "axis keepdims",         "take_along({a}, {idx}, {axis}, {keepdims})",        lambda g, out, a, idx, axis, keepdims: (_scatter_add(g, idx, a.shape, axis, keepdims), None), "MaxBackward0")
op("min_dim",   "a idx", "axis keepdims",         "take_along({a}, {idx}, {axis}, {keepdims})",        lambda g, out, a, idx, axis, keepdims: (_scatter_add(g, idx, a.shape, axis, keepdims), None), "MinBackward0")
op("scatter_add", "v idx", "shape axis",          "scatter_add({shape}, {v}, {idx}, {axis})",          lambda g, out, v, idx, shape, axis: (_take_along(g, idx, axis), None))
op("norm",      "a",     "axis keepdims",         "xp.sqrt(xp.sum({a} * {a}, axis={axis}, keepdims={keepdims}))", lambda g, out, a, axis, keepdims: (unreduce(g, a.shape, axis, keepdims) * a / unreduce(_where(out == 0, 1, out), a.shape, axis, keepdims),), "LinalgVectorNormBackward0")
op("reshape",   "a",     "shape",                 "xp.reshape({a}, {shape})",                          lambda g, out, a, shape: (g.reshape(a.shape),), "ViewBackward0")
op("expand",    "a",     "shape",                 "xp.broadcast_to({a}, {shape})",                     lambda g, out, a, shape: (sum_to(g, a),))
op("permute",   "a",     "axes",                  "xp.transpose({a}, {axes})",                         lambda g, out, a, axes: (g.permute(*sorted(range(len(axes)), key=axes.__getitem__)),))
op("transpose", "a",     "dim0 dim1",             "xp.swapaxes({a}, {dim0}, {dim1})",                  lambda g, out, a, dim0, dim1: (g.transpose(dim0, dim1),))
op("matmul",    "a b",   "",                      "{a} @ {b}",                                         lambda g, out, a, b: matmul_vjp(g, a, b), "MmBackward0")
op("softmax",   "a",     "axis",                  "softmax({a}, {axis})",                              lambda g, out, a, axis: (out * (g - (g * out).sum(dim=axis, keepdim=True)),))
op("log_softmax", "a",   "axis",                  "log_softmax({a}, {axis})",                          lambda g, out, a, axis: (g - out.exp() * g.sum(dim=axis, keepdim=True),))
op("getitem",   "a *idx", "index",                "{a}[{index}]",                                      lambda g, out, a, *idx, index: (_index_put(g, idx, a.shape, index, any(i.dtype.kind != "b" for i in idx)),) + (None,) * len(idx), "IndexBackward0")
op("setitem",   "a v *idx", "index",              "setitem({a}, {v}, xp.s_[{index}])",                  lambda g, out, a, v, *idx, index: (_setitem(g, 0, idx, index), sum_to(_getitem(g, idx, index), v)) + (None,) * len(idx), "IndexPutBackward0")
op("index_put", "v *idx", "shape index accumulate", "index_put({shape}, {v}, xp.s_[{index}], {accumulate})", lambda g, out, v, *idx, shape, index, accumulate: (_getitem(g, idx, index),) + (None,) * len(idx))
op("cat",       "*xs",   "axis",                  "xp.concatenate({xs}, axis={axis})",                 lambda g, out, *xs, axis: split_vjp(g, xs, axis, stacked=False))
op("stack",     "*xs",   "axis",                  "xp.stack({xs}, axis={axis})",                       lambda g, out, *xs, axis: split_vjp(g, xs, axis, stacked=True))
op("full",      "",      "shape value dtype",     "xp.full({shape}, {value}, {dtype})",                lambda g, out, shape, value, dtype: ())
op("hook",      "g fn",  "",                      "run_hook({fn}, {g})",                                NONDIFF)
op("all_finite", "a",    "",                      "xp.all(xp.isfinite({a}))",                           NONDIFF)
op("lt",        "a b",   "",                      "{a} < {b}",                                         NONDIFF)
op("le",        "a b",   "",                      "{a} <= {b}",                                        NONDIFF)
op("gt",        "a b",   "",                      "{a} > {b}",                                         NONDIFF)
op("ge",        "a b",   "",                      "{a} >= {b}",                                        NONDIFF)
op("eq",        "a b",   "",                      "{a} == {b}",                                        NONDIFF)
op("ne",        "a b",   "",                      "{a} != {b}",                                        NONDIFF)
op("logical_and", "a b", "",                      "{a} & {b}",                                         NONDIFF)
op("logical_or", "a b",  "",                      "{a} | {b}",                                         NONDIFF)
op("logical_not", "a",   "",                      "~{a}",                                              NONDIFF)
op("sign",      "a",     "",                      "xp.sign({a})",                                      NONDIFF)
op("argmax",    "a",     "axis keepdims",         "xp.argmax({a}, axis={axis}, keepdims={keepdims})",  NONDIFF)
op("argmin",    "a",     "axis keepdims",         "xp.argmin({a}, axis={axis}, keepdims={keepdims})",  NONDIFF)
# fmt: on

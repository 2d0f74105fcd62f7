"""THE op table: one row per primitive, and everything transgrad knows about it.

A row gives the primitive's inputs, its params, the array expression that code generation
emits (`xp` is the backend's array namespace, NumPy or jax.numpy; `numpy=` and `jax=`
give a backend's own spelling where it differs), and its VJP written against the operands'
own Tensor methods, so that running a rule on tracing tensors records the backward as
ordinary IR (NOTE [rules trace]). The rule vocabulary is fixed: `g` is the output
cotangent, `out` the primal result, then the inputs by name and the params as keywords. A
rule returns one cotangent per input (None for none); NONDIFF marks a primitive with no
gradient. `reads` names the values the rule reads, which are what PyTorch's formula saves
(relu its result, div its operands), so that an in-place write raises exactly where
PyTorch's does (NOTE [versions]). The other facts passes and the printer ask a row: is it
a view, elementwise, a comparison; the NumPy ufunc that may write into a dying buffer
(NOTE [buffer reuse]); the Python operator and unit element constant folding uses; and
the names under which PyTorch users reach it (`method` on Tensor, `function` on `tg`).
"""
from __future__ import annotations

import operator

from .rules import (
    cumsum_vjp, einsum_vjp, extreme_vjp, matmul_vjp, pow_vjp, prod_vjp, reduced_count, split_vjp, sum_to, unreduce,
)

NONDIFF = None


class Op:
    """One primitive (a row of OPS)."""

    opaque = custom = False  # the engine asks every node's op: a compiled call's sets opaque, a custom Function's custom

    __slots__ = ("name", "inputs", "variadic", "params", "template", "vjp", "grad_fn_name", "reads", "view",
                 "elementwise", "comparison", "floating", "ufunc", "py", "unit", "spellings", "method", "function",
                 "impl")

    def __init__(self, name, inputs, params, template, vjp, grad_fn=None, *, reads="", view=False,
                 elementwise=False, comparison=False, floating=False, ufunc=None, py=None, unit=None, numpy=None,
                 jax=None, method="", function=""):
        self.name = name
        names = inputs.split()
        self.variadic = bool(names) and names[-1].startswith("*")  # the last input may be `*xs`
        self.inputs = tuple(n.lstrip("*") for n in names)
        self.params = tuple(params.split())
        self.template = template
        self.vjp = vjp
        self.grad_fn_name = grad_fn or "".join(p.capitalize() for p in name.split("_")) + "Backward0"
        self.reads = frozenset(reads.split())  # inputs (and `out`) whose values the rule reads
        self.view = view  # NumPy may return a view of the first input (NOTE [views])
        self.elementwise, self.comparison, self.floating = elementwise, comparison, floating
        self.ufunc = ufunc  # NOTE [buffer reuse]: xp.<ufunc>(..., out=<a dying input>)
        self.py, self.unit = py, unit  # constant folding: the Python operator, x (op) unit == x
        self.spellings = {"numpy": numpy or template, "jax": jax or template}
        self.method = name if method == "" else method  # Tensor.<method>, None: not a method
        self.function = name if function == "" else function  # tg.<function>, None: not a function
        self.impl = None  # the eager NumPy form: generated from the template on first use (tensor.dispatch)

    @property
    def uses_out(self):
        return "out" in self.reads

    def __repr__(self):
        return f"<op {self.name}>"


OPS: dict[str, Op] = {}


def op(name, inputs, params, template, vjp, grad_fn=None, **facts):
    OPS[name] = Op(name, inputs, params, template, vjp, grad_fn, **facts)


def binary(name, template, vjp, reads, **facts):
    op(name, "a b", "", template, vjp, reads=reads, elementwise=True, **facts)


def unary(name, template, vjp, reads, **facts):
    op(name, "a", "", template, vjp, reads=reads, elementwise=True, **facts)


def compare(name, template):
    op(name, "a b", "", template, NONDIFF, comparison=True, elementwise=True)


# Rules reach new primitives through the `_op` method of their operands: this table sits
# below the tensor front end and imports none of it.
def _index_put(g, idx, shape, index, accumulate):
    return g._op("index_put", g, *idx, shape=shape, index=index, accumulate=accumulate)


def _setitem(a, v, idx, index):
    return a._op("setitem", a, v, *idx, index=index)


def _getitem(g, idx, index):
    return g._op("getitem", g, *idx, index=index)


def _scatter_add(g, idx, shape, axis, keepdims):
    """The cotangent of picking `idx` along `axis`: g added at those places of zeros(shape)."""
    g = g if keepdims else g.reshape(idx.shape)
    return g._op("scatter_add", g, idx, shape=shape, axis=axis)


def _take_along(g, idx, axis):
    return g._op("max_dim", g, idx, axis=axis, keepdims=True)


def _tie(g, a, b, strict):
    """maximum/minimum: all of g where `a` wins, half of it on a tie."""
    return g.where(strict(a, b), (g * 0.5).where(a == b, 0))


# fmt: off
#      name         emitted expression                    vjp(g, out, *inputs, **params)                                                   reads        facts
binary("add",       "{a} + {b}",                          lambda g, out, a, b: (sum_to(g, a), sum_to(g, b)),                                "",          ufunc="add", py=operator.add, unit=0)
binary("sub",       "{a} - {b}",                          lambda g, out, a, b: (sum_to(g, a), sum_to(-g, b)),                               "",          ufunc="subtract", py=operator.sub, unit=0)
binary("mul",       "{a} * {b}",                          lambda g, out, a, b: (sum_to(g * b, a), sum_to(g * a, b)),                        "a b",       ufunc="multiply", py=operator.mul, unit=1)
binary("div",       "{a} / {b}",                          lambda g, out, a, b: (sum_to(g / b, a), sum_to(-(g * a) / (b * b), b)),           "a b",       ufunc="divide", py=operator.truediv, unit=1)
binary("pow",       "{a} ** {b}",                         pow_vjp,                                                                         "a b out",   ufunc="power", py=operator.pow, unit=1)
binary("remainder", "xp.remainder({a}, {b})",              lambda g, out, a, b: (sum_to(g, a), sum_to(-g * (a / b).floor(), b)),            "a b",       ufunc="remainder", py=operator.mod)
binary("fmod",      "xp.fmod({a}, {b})",                   lambda g, out, a, b: (sum_to(g, a), sum_to(-g * (a / b).trunc(), b)),            "a b",       ufunc="fmod")
binary("floor_divide", "xp.floor_divide({a}, {b})",        lambda g, out, a, b: (sum_to(g * 0, a), sum_to(g * 0, b)),                       "",          ufunc="floor_divide", py=operator.floordiv)
binary("maximum",   "xp.maximum({a}, {b})",               lambda g, out, a, b: (sum_to(_tie(g, a, b, operator.gt), a), sum_to(_tie(g, a, b, operator.lt), b)), "a b", ufunc="maximum")
binary("minimum",   "xp.minimum({a}, {b})",               lambda g, out, a, b: (sum_to(_tie(g, a, b, operator.lt), a), sum_to(_tie(g, a, b, operator.gt), b)), "a b", ufunc="minimum")
unary("neg",        "-{a}",                               lambda g, out, a: (-g,),                                                          "",          ufunc="negative")
unary("exp",        "xp.exp({a})",                        lambda g, out, a: (g * out,),                                                     "out",       ufunc="exp", floating=True)
unary("log",        "xp.log({a})",                        lambda g, out, a: (g / a,),                                                       "a",         ufunc="log", floating=True)
unary("sin",        "xp.sin({a})",                        lambda g, out, a: (g * a.cos(),),                                                 "a",         ufunc="sin", floating=True)
unary("cos",        "xp.cos({a})",                        lambda g, out, a: (-(g * a.sin()),),                                              "a",         ufunc="cos", floating=True)
unary("tanh",       "xp.tanh({a})",                       lambda g, out, a: (g * (1 - out * out),),                                         "out",       ufunc="tanh", floating=True)
unary("sigmoid",    "1 / (1 + xp.exp(-{a}))",             lambda g, out, a: (g * out * (1 - out),),                                         "out",       floating=True)
unary("relu",       "xp.maximum({a}, 0)",                 lambda g, out, a: (g.where(out > 0, 0),),                                         "out")
unary("abs",        "xp.abs({a})",                        lambda g, out, a: (g * a.sign(),),                                                "a",         ufunc="absolute")
unary("log1p",      "xp.log1p({a})",                      lambda g, out, a: (g / (1 + a),),                                                 "a",         ufunc="log1p", floating=True, grad_fn="Log1PBackward0")
unary("floor",      "xp.floor({a})",                      lambda g, out, a: (g * 0,),                                                       "",          ufunc="floor")
unary("ceil",       "xp.ceil({a})",                       lambda g, out, a: (g * 0,),                                                       "",          ufunc="ceil")
unary("trunc",      "xp.trunc({a})",                      lambda g, out, a: (g * 0,),                                                       "",          ufunc="trunc")
unary("round",      "xp.round({a})",                      lambda g, out, a: (g * 0,),                                                       "",          ufunc="rint")  # half to even, as PyTorch
unary("sign",       "xp.sign({a})",                       lambda g, out, a: (g * 0,),                                                       "",          ufunc="sign")
unary("sqrt",       "xp.sqrt({a})",                       lambda g, out, a: (g / (2 * out),),                                               "out",       ufunc="sqrt", floating=True)
op("clamp",     "a",     "lo hi",                 "xp.clip({a}, {lo}, {hi})",                          lambda g, out, a, lo, hi: (g * ((a >= lo) if lo is not None else 1) * ((a <= hi) if hi is not None else 1),), "ClampBackward1", reads="a", elementwise=True)
op("where",     "c a b", "",                      "xp.where({c}, {a}, {b})",                           lambda g, out, c, a, b: (None, sum_to(g.where(c, 0), a), sum_to(g.where(c.logical_not(), 0), b)), reads="c", elementwise=True)
op("astype",    "a",     "dtype",                 "{a}.astype({dtype})",                               lambda g, out, a, dtype: (g.astype(a.dtype) if a.dtype.kind == "f" else None,), "ToCopyBackward0", method="to", function=None)
op("clone",     "a",     "",                      "{a}.copy()",                                        lambda g, out, a: (g,))
# what zero_, fill_ and copy_ of a value without history write over a tensor with one: the old values take
# gradient 0 (zeros_like reads only a's shape), the new ones theirs
op("fill",      "a v",   "",                      "xp.zeros_like({a}) + {v}",                          lambda g, out, a, v: (g * 0, sum_to(g, v)), "FillBackward0", method=None, function=None)
op("sum",       "a",     "axis keepdims",         "xp.sum({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: (unreduce(g, a.shape, axis, keepdims),),
   numpy="xp.add.reduce({a}, axis={axis}, keepdims={keepdims})")  # the ufunc method skips NumPy's Python wrappers
op("mean",      "a",     "axis keepdims",         "xp.mean({a}, axis={axis}, keepdims={keepdims})",    lambda g, out, a, axis, keepdims: (unreduce(g / reduced_count(a.shape, axis), a.shape, axis, keepdims),),
   numpy="mean({a}, axis={axis}, keepdims={keepdims})")
op("amax",      "a",     "axis keepdims",         "xp.max({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: extreme_vjp(g, out, a, axis, keepdims), "MaxBackward1", reads="a out",
   numpy="xp.maximum.reduce({a}, axis={axis}, keepdims={keepdims})")
op("amin",      "a",     "axis keepdims",         "xp.min({a}, axis={axis}, keepdims={keepdims})",     lambda g, out, a, axis, keepdims: extreme_vjp(g, out, a, axis, keepdims), "MinBackward1", reads="a out",
   numpy="xp.minimum.reduce({a}, axis={axis}, keepdims={keepdims})")
op("max_dim",   "a idx", "axis keepdims",         "take_along({a}, {idx}, axis={axis}, keepdims={keepdims})", lambda g, out, a, idx, axis, keepdims: (_scatter_add(g, idx, a.shape, axis, keepdims), None), "MaxBackward0", reads="idx", method="max", function="max")
op("min_dim",   "a idx", "axis keepdims",         "take_along({a}, {idx}, axis={axis}, keepdims={keepdims})", lambda g, out, a, idx, axis, keepdims: (_scatter_add(g, idx, a.shape, axis, keepdims), None), "MinBackward0", reads="idx", method="min", function="min")
op("gather",    "a idx", "axis",                  "take_along({a}, {idx}, axis={axis}, keepdims=True)", lambda g, out, a, idx, axis: (_scatter_add(g, idx, a.shape, axis, True), None), reads="idx")
op("prod",      "a",     "axis keepdims",         "xp.prod({a}, axis={axis}, keepdims={keepdims})",    prod_vjp, reads="a")
op("cumsum",    "a",     "axis",                  "xp.cumsum({a}, axis={axis})",                       lambda g, out, a, axis: cumsum_vjp(g, axis))
op("einsum",    "*xs",   "equation",              "xp.einsum({equation}, *{xs})",                      lambda g, out, *xs, equation: einsum_vjp(g, xs, equation), reads="xs", method=None)
op("unfold",    "a",     "kernel stride padding value", "unfold({a}, kernel={kernel}, stride={stride}, padding={padding}, value={value})",
   lambda g, out, a, kernel, stride, padding, value: (g._op("fold", g, size=a.shape, kernel=kernel, stride=stride, padding=padding),), "Im2ColBackward0", method=None, function=None)
op("fold",      "a",     "size kernel stride padding", "fold({a}, size={size}, kernel={kernel}, stride={stride}, padding={padding})",
   lambda g, out, a, size, kernel, stride, padding: (g._op("unfold", g, kernel=kernel, stride=stride, padding=padding, value=0.0),), "Col2ImBackward0", function=None, method=None)
op("scatter_add", "v idx", "shape axis",          "scatter_add({v}, {idx}, shape={shape}, axis={axis})", lambda g, out, v, idx, shape, axis: (_take_along(g, idx, axis), None), reads="idx", method=None, function=None)
op("norm",      "a",     "axis keepdims",         "xp.sqrt(xp.sum({a} * {a}, axis={axis}, keepdims={keepdims}))", lambda g, out, a, axis, keepdims: (unreduce(g, a.shape, axis, keepdims) * a / unreduce(out.where(out != 0, 1), a.shape, axis, keepdims),), "LinalgVectorNormBackward0", reads="a out",
   numpy="vector_norm({a}, axis={axis}, keepdims={keepdims})")
op("reshape",   "a",     "shape",                 "xp.reshape({a}, {shape})",                          lambda g, out, a, shape: (g.reshape(a.shape),), "ViewBackward0", view=True)
op("expand",    "a",     "shape",                 "xp.broadcast_to({a}, {shape})",                     lambda g, out, a, shape: (sum_to(g, a),), view=True, function=None)
op("permute",   "a",     "axes",                  "xp.transpose({a}, {axes})",                         lambda g, out, a, axes: (g.permute(*sorted(range(len(axes)), key=axes.__getitem__)),), view=True)
op("transpose", "a",     "dim0 dim1",             "xp.swapaxes({a}, {dim0}, {dim1})",                  lambda g, out, a, dim0, dim1: (g.transpose(dim0, dim1),), view=True)
op("matmul",    "a b",   "",                      "{a} @ {b}",                                         lambda g, out, a, b: matmul_vjp(g, a, b), "MmBackward0", reads="a b")
op("softmax",   "a",     "axis",                  "softmax({a}, axis={axis})",                         lambda g, out, a, axis: (out * (g - (g * out).sum(dim=axis, keepdim=True)),), reads="out")
op("log_softmax", "a",   "axis",                  "log_softmax({a}, axis={axis})",                     lambda g, out, a, axis: (g - out.exp() * g.sum(dim=axis, keepdim=True),), reads="out")
op("getitem",   "a *idx", "index",                "{a}[{index}]",                                      lambda g, out, a, *idx, index: (_index_put(g, idx, a.shape, index, any(i.dtype.kind != "b" for i in idx)),) + (None,) * len(idx), "IndexBackward0", reads="idx", view=True,
   jax="take({a}, xp.s_[{index}], mask_counts={mask_counts})", method="__getitem__", function=None)
op("setitem",   "a v *idx", "index",              "setitem({a}, {v}, xp.s_[{index}])",                 lambda g, out, a, v, *idx, index: (_setitem(g, 0, idx, index), sum_to(_getitem(g, idx, index), v)) + (None,) * len(idx), "IndexPutBackward0", reads="idx",
   jax="setitem({a}, {v}, xp.s_[{index}], mask_counts={mask_counts})", method="__setitem__", function=None)
op("index_put", "v *idx", "shape index accumulate", "zeros_with({v}, xp.s_[{index}], shape={shape}, accumulate={accumulate})", lambda g, out, v, *idx, shape, index, accumulate: (_getitem(g, idx, index),) + (None,) * len(idx), reads="idx",
   jax="zeros_with({v}, xp.s_[{index}], shape={shape}, accumulate={accumulate}, mask_counts={mask_counts})", method=None, function=None)
op("cat",       "*xs",   "axis",                  "xp.concatenate({xs}, axis={axis})",                 lambda g, out, *xs, axis: split_vjp(g, xs, axis, stacked=False), method=None)
op("stack",     "*xs",   "axis",                  "xp.stack({xs}, axis={axis})",                       lambda g, out, *xs, axis: split_vjp(g, xs, axis, stacked=True), method=None)
op("full",      "",      "shape value dtype",     "xp.full({shape}, {value}, {dtype})",                lambda g, out, shape, value, dtype: (), method=None)
op("hook",      "g fn",  "",                      "{fn}({g})",                                         NONDIFF, method=None, function=None)
op("all_finite", "a",    "",                      "xp.all(xp.isfinite({a}))",                          NONDIFF, method=None, function=None)
compare("lt",   "{a} < {b}")
compare("le",   "{a} <= {b}")
compare("gt",   "{a} > {b}")
compare("ge",   "{a} >= {b}")
compare("eq",   "{a} == {b}")
compare("ne",   "{a} != {b}")
op("logical_and", "a b", "",                      "{a} & {b}",                                         NONDIFF, elementwise=True)
op("logical_or", "a b",  "",                      "{a} | {b}",                                         NONDIFF, elementwise=True)
op("logical_not", "a",   "",                      "~{a}",                                              NONDIFF, elementwise=True)
op("isnan",     "a",     "",                      "xp.isnan({a})",                                     NONDIFF, elementwise=True)
op("isfinite",  "a",     "",                      "xp.isfinite({a})",                                  NONDIFF, elementwise=True)
op("all",       "a",     "axis keepdims",         "xp.all({a}, axis={axis}, keepdims={keepdims})",     NONDIFF)
op("any",       "a",     "axis keepdims",         "xp.any({a}, axis={axis}, keepdims={keepdims})",     NONDIFF)
op("argsort",   "a",     "axis descending",       "argsort({a}, axis={axis}, descending={descending})", NONDIFF)
op("argmax",    "a",     "axis keepdims",         "xp.argmax({a}, axis={axis}, keepdims={keepdims})",  NONDIFF)
op("argmin",    "a",     "axis keepdims",         "xp.argmin({a}, axis={axis}, keepdims={keepdims})",  NONDIFF)
# fmt: on

"""One OpSpec per op-table row: how to call it, on which shapes, against which NumPy
reference, in which input domain. `test_ops.py` runs every spec; `test_table.py` fails
if a row has none."""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import transgrad as tg
from transgrad.index import Arr
from transgrad.ops import OPS
from transgrad.tensor import apply

BINARY_SHAPES = [((3,), (3,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3), ()), ((4, 3), (3,))]
UNARY_SHAPES = [((3,),), ((2, 3),), ((),)]


@dataclass
class OpSpec:
    row: str
    fn: Callable  # Tensors -> Tensor, through the public API
    ref: Callable  # NumPy arrays -> array: the independent oracle for the forward
    shapes: list = field(default_factory=lambda: UNARY_SHAPES)
    domain: tuple = (-2.0, 2.0)
    away_from: tuple = ()  # keep inputs this far from kinks (e.g. 0 for relu)
    grad: bool = True
    order: int = 2
    id: str = ""
    eps: float = 1e-6  # central-difference step; larger where the op rounds (astype)


def _idx():
    return tg.tensor([0, 2, 2, 1])


def _np_index_put(v):
    z = np.zeros(5, v.dtype)
    np.add.at(z, [0, 2, 2, 1], v)
    return z


def _np_scatter_add(v):
    z = np.zeros((2, 3), v.dtype)
    np.add.at(z, (np.array([[0], [1]]), np.array([[0, 2], [1, 1]])), v)
    return z


def _np_unfold(a, kernel, stride, padding):
    """im2col by loops: the oracle of the unfold row."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = a.shape
    p = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c * kh * kw, oh * ow), a.dtype)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for x in range(ow):
                        out[:, (ci * kh + i) * kw + j, y * ow + x] = p[:, ci, y * sh + i, x * sw + j]
    return out


def _set(a, v):
    out = a * 1  # a non-leaf copy, so the in-place write is allowed
    out[1:3] = v
    return out


def _np_set(a, v):
    out = a.copy()
    out[1:3] = v
    return out


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


SPECS = [
    OpSpec("add", lambda a, b: a + b, np.add, BINARY_SHAPES),
    OpSpec("add", lambda a: 2.5 + a, lambda a: 2.5 + a, id="scalar"),
    OpSpec("sub", lambda a, b: a - b, np.subtract, BINARY_SHAPES),
    OpSpec("sub", lambda a: 1 - a, lambda a: 1 - a, id="rscalar"),
    OpSpec("mul", lambda a, b: a * b, np.multiply, BINARY_SHAPES),
    OpSpec("mul", lambda a: a * 3, lambda a: a * 3, id="scalar"),
    OpSpec("div", lambda a, b: a / b, np.divide, BINARY_SHAPES, domain=(0.5, 2.0)),
    OpSpec("div", lambda a: 2 / a, lambda a: 2 / a, domain=(0.5, 2.0), id="rscalar"),
    OpSpec("pow", lambda a, b: a ** b, np.power, BINARY_SHAPES, domain=(0.5, 2.0)),
    OpSpec("pow", lambda a: a ** 3, lambda a: a ** 3, id="scalar"),
    OpSpec("pow", lambda a: 2.0 ** a, lambda a: 2.0 ** a, id="rscalar"),
    OpSpec("maximum", tg.maximum, np.maximum, BINARY_SHAPES),
    OpSpec("minimum", tg.minimum, np.minimum, BINARY_SHAPES),
    OpSpec("neg", lambda a: -a, np.negative),
    OpSpec("exp", tg.exp, np.exp),
    OpSpec("log", tg.log, np.log, domain=(0.5, 3.0)),
    OpSpec("sin", tg.sin, np.sin),
    OpSpec("cos", tg.cos, np.cos),
    OpSpec("tanh", tg.tanh, np.tanh),
    OpSpec("sigmoid", tg.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    OpSpec("relu", tg.relu, lambda a: np.maximum(a, 0), away_from=(0.0,)),
    OpSpec("abs", tg.abs, np.abs, away_from=(0.0,)),
    OpSpec("sqrt", tg.sqrt, np.sqrt, domain=(0.5, 3.0)),
    OpSpec("log1p", tg.log1p, np.log1p, domain=(-0.5, 2.0)),
    OpSpec("clamp", lambda a: a.clamp(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), away_from=(-0.5, 0.7)),
    OpSpec("clamp", lambda a: a.clamp(min=0.2), lambda a: np.maximum(a, 0.2), away_from=(0.2,), id="min"),
    OpSpec("where", lambda a, b: tg.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), BINARY_SHAPES, away_from=(0.0,)),
    OpSpec("astype", lambda a: a.astype(tg.float32).astype(tg.float64), lambda a: a.astype(np.float32).astype(np.float64), order=1, eps=1e-2),
    OpSpec("clone", lambda a: a.clone(), np.copy),
    OpSpec("fill", lambda a: (a * 2).zero_() + a, lambda a: a),  # zero_ over a value with history: gradient 0
    OpSpec("sum", lambda a: a.sum(), np.sum, [((2, 3),), ((),)]),
    OpSpec("sum", lambda a: a.sum(dim=1), lambda a: a.sum(1), [((2, 3),)], id="dim"),
    OpSpec("sum", lambda a: a.sum(dim=(0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True), [((2, 3, 4),)], id="keepdim"),
    OpSpec("mean", lambda a: a.mean(), np.mean, [((2, 3),)]),
    OpSpec("mean", lambda a: a.mean(dim=-1), lambda a: a.mean(-1), [((2, 3),)], id="dim"),
    OpSpec("amax", lambda a: a.max(), np.max, [((2, 3),)]),
    OpSpec("amax", lambda a: a.amax(dim=1), lambda a: a.max(1), [((2, 3),)], id="dim"),
    OpSpec("amin", lambda a: a.min(), np.min, [((2, 3),)]),
    OpSpec("amin", lambda a: a.amin(dim=0, keepdim=True), lambda a: a.min(0, keepdims=True), [((2, 3),)], id="dim"),
    OpSpec("max_dim", lambda a: a.max(dim=1).values, lambda a: a.max(1), [((2, 3),)]),
    OpSpec("max_dim", lambda a: a.max(0, keepdim=True)[0], lambda a: a.max(0, keepdims=True), [((3, 2),)], id="keepdim"),
    OpSpec("min_dim", lambda a: a.min(dim=-1).values, lambda a: a.min(-1), [((2, 3),), ((4,),)]),
    OpSpec("scatter_add", lambda v: apply(OPS["scatter_add"], v, tg.tensor([[0, 2], [1, 1]]), shape=(2, 3), axis=1),
           lambda v: _np_scatter_add(v), [((2, 2),)]),
    OpSpec("gather", lambda a: a.gather(1, tg.tensor([[0, 2, 2], [1, 0, 1]])),
           lambda a: np.take_along_axis(a, np.array([[0, 2, 2], [1, 0, 1]]), 1), [((2, 3),)]),
    OpSpec("gather", lambda a: a.gather(0, tg.tensor([[1], [0]])), lambda a: a[[1, 0], :1], [((3, 2),)], id="smaller-index"),
    OpSpec("prod", lambda a: a.prod(), np.prod, [((2, 3),)]),
    OpSpec("prod", lambda a: a.prod(1, keepdim=True), lambda a: a.prod(1, keepdims=True), [((2, 3),)], id="dim"),
    OpSpec("cumsum", lambda a: a.cumsum(-1), lambda a: np.cumsum(a, -1), [((2, 3),), ((4,),)]),
    OpSpec("einsum", lambda a, b: tg.einsum("ij,jk->ik", a, b), lambda a, b: a @ b, [((2, 3), (3, 4))]),
    OpSpec("einsum", lambda a, b: tg.einsum("bi,bj->bij", a, b), lambda a, b: np.einsum("bi,bj->bij", a, b),
           [((2, 3), (2, 4))], id="outer"),
    OpSpec("einsum", lambda a: tg.einsum("ij->", a), np.sum, [((2, 3),)], id="sum-all"),
    OpSpec("einsum", lambda a, b: tg.einsum("ij,k", a, b), lambda a, b: np.einsum("ij,k", a, b), [((2, 3), (2,))],
           id="implicit"),
    OpSpec("unfold", lambda a: apply(OPS["unfold"], a, kernel=(2, 3), stride=(2, 1), padding=(1, 1), value=0.0),
           lambda a: _np_unfold(a, (2, 3), (2, 1), (1, 1)), [((2, 3, 5, 6),)]),
    OpSpec("fold", lambda a: apply(OPS["fold"], a, size=(1, 2, 4, 4), kernel=(2, 2), stride=(2, 2), padding=(0, 0)),
           lambda a: a.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(1, 2, 4, 4), [((1, 8, 4),)]),
    OpSpec("norm", lambda a: a.norm(), np.linalg.norm, [((3,),), ((2, 3),)]),
    OpSpec("norm", lambda a: a.norm(dim=1), lambda a: np.linalg.norm(a, axis=1), [((2, 3),)], id="dim"),
    OpSpec("reshape", lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), [((2, 3),), ((6,),)]),
    OpSpec("reshape", lambda a: a.unsqueeze(1).squeeze(), lambda a: a, [((2, 3),)], id="unsqueeze-squeeze"),
    OpSpec("expand", lambda a: a.expand(4, 2, 3), lambda a: np.broadcast_to(a, (4, 2, 3)), [((2, 1),), ((1, 3),)]),
    OpSpec("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [((2, 3, 4),)]),
    OpSpec("transpose", lambda a: a.transpose(0, -1), lambda a: np.swapaxes(a, 0, -1), [((2, 3, 4),)]),
    OpSpec("transpose", lambda a: a.t(), lambda a: a.T, [((2, 3),)], id="t"),
    OpSpec("matmul", lambda a, b: a @ b, np.matmul, [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4))]),
    OpSpec("softmax", lambda a: a.softmax(-1), _np_softmax, [((2, 3),), ((4,),)]),
    OpSpec("log_softmax", lambda a: a.log_softmax(1), lambda a: np.log(_np_softmax(a)), [((2, 3),)]),
    OpSpec("getitem", lambda a: a[1:3, None, 0], lambda a: a[1:3, None, 0], [((4, 5),)]),
    OpSpec("getitem", lambda a: a[tg.tensor([0, 2, 2, 1])], lambda a: a[[0, 2, 2, 1]], [((4, 3),)], id="int-array-repeated"),
    OpSpec("getitem", lambda a: a[a > 0], lambda a: a[a > 0], [((3, 4),)], away_from=(0.0,), id="mask"),
    OpSpec("getitem", lambda a: a[..., ::2], lambda a: a[..., ::2], [((2, 5),)], id="ellipsis-step"),
    OpSpec("setitem", lambda a, v: _set(a, v), _np_set, [((4, 3), (2, 3)), ((4, 3), (3,))]),
    OpSpec("setitem", lambda a: _set(a, 2.5), lambda a: _np_set(a, 2.5), [((4, 3),)], id="scalar"),
    OpSpec("index_put", lambda v: apply(OPS["index_put"], v, _idx(), shape=(5,), index=(Arr(0),), accumulate=True), _np_index_put, [((4,),)]),
    OpSpec("cat", lambda a, b: tg.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], 1), [((2, 3), (2, 2))]),
    OpSpec("stack", lambda a, b: tg.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1), [((2, 3), (2, 3))]),
    OpSpec("full", lambda: apply(OPS["full"], shape=(2, 3), value=1.5, dtype=tg.float64), lambda: np.full((2, 3), 1.5), [()], grad=False),
    OpSpec("hook", lambda a: apply(OPS["hook"], a, lambda g: g * 2), lambda a: a * 2, grad=False),
    OpSpec("all_finite", lambda a: apply(OPS["all_finite"], a / (a > 0)), lambda a: np.all(np.isfinite(a / (a > 0))), grad=False),
    OpSpec("lt", lambda a, b: a < b, np.less, BINARY_SHAPES, grad=False),
    OpSpec("le", lambda a, b: a <= b, np.less_equal, BINARY_SHAPES, grad=False),
    OpSpec("gt", lambda a, b: a > b, np.greater, BINARY_SHAPES, grad=False),
    OpSpec("ge", lambda a, b: a >= b, np.greater_equal, BINARY_SHAPES, grad=False),
    OpSpec("eq", lambda a, b: a == b, np.equal, BINARY_SHAPES, grad=False),
    OpSpec("ne", lambda a, b: a != b, np.not_equal, BINARY_SHAPES, grad=False),
    OpSpec("logical_and", lambda a, b: (a > 0) & (b > 0), lambda a, b: (a > 0) & (b > 0), BINARY_SHAPES, grad=False),
    OpSpec("logical_or", lambda a, b: (a > 0) | (b > 0), lambda a, b: (a > 0) | (b > 0), BINARY_SHAPES, grad=False),
    OpSpec("logical_not", lambda a: ~(a > 0), lambda a: ~(a > 0), grad=False),
    OpSpec("sign", tg.sign, np.sign, away_from=(0.0,)),  # gradient 0, as PyTorch's (it records)
    OpSpec("floor", tg.floor, np.floor, away_from=(-2.0, -1.0, 0.0, 1.0, 2.0)),
    OpSpec("ceil", tg.ceil, np.ceil, away_from=(-2.0, -1.0, 0.0, 1.0, 2.0)),
    OpSpec("trunc", tg.trunc, np.trunc, away_from=(-2.0, -1.0, 0.0, 1.0, 2.0)),
    OpSpec("round", tg.round, np.round, away_from=(-1.5, -0.5, 0.5, 1.5)),
    # a in 5.2 .. 5.8 over b in 3.1 .. 3.4: a / b stays between 1 and 2, away from the jumps
    OpSpec("remainder", lambda a, b: (a * 3 + 5.5) % (b + 3.25), lambda a, b: np.remainder(a * 3 + 5.5, b + 3.25),
           BINARY_SHAPES, domain=(-0.1, 0.1)),
    OpSpec("fmod", lambda a, b: tg.fmod(-(a * 3 + 5.5), b + 3.25), lambda a, b: np.fmod(-(a * 3 + 5.5), b + 3.25),
           BINARY_SHAPES, domain=(-0.1, 0.1)),
    OpSpec("floor_divide", lambda a, b: (a * 3 + 5.5) // (b + 3.25), lambda a, b: np.floor_divide(a * 3 + 5.5, b + 3.25),
           BINARY_SHAPES, domain=(-0.1, 0.1)),
    OpSpec("argmax", lambda a: a.argmax(dim=1), lambda a: a.argmax(1), [((2, 3),)], grad=False),
    OpSpec("isnan", lambda a: (a / (a > 0)).isnan(), lambda a: np.isnan(a / (a > 0)), grad=False),
    OpSpec("isfinite", lambda a: (a / (a > 0)).isfinite(), lambda a: np.isfinite(a / (a > 0)), grad=False),
    OpSpec("all", lambda a: (a > -1).all(dim=1), lambda a: (a > -1).all(1), [((2, 3),)], grad=False),
    OpSpec("any", lambda a: (a > 1).any(), lambda a: (a > 1).any(), [((2, 3),)], grad=False),
    OpSpec("argsort", lambda a: a.argsort(dim=-1, descending=True), lambda a: np.argsort(-a, -1, kind="stable"),
           [((2, 3),)], grad=False),
    OpSpec("argmin", lambda a: a.argmin(), lambda a: a.argmin(), [((2, 3),)], grad=False),
]


def cases():
    for spec in SPECS:
        for shapes in spec.shapes:
            name = f"{spec.row}{'-' + spec.id if spec.id else ''}-{'x'.join(str(list(s)) for s in shapes)}"
            yield name, spec, shapes


def sample(spec, shapes, rng, dtype=np.float64):
    lo, hi = spec.domain
    out = []
    for s in shapes:
        a = rng.uniform(lo, hi, size=s)
        for k in spec.away_from:  # push values out of a 0.1-band around each kink
            near = np.abs(a - k) < 0.1
            a = np.where(near, k + np.where(a >= k, 0.1, -0.1) + 0.05 * np.sign(a - k + 1e-12), a)
        out.append(np.asarray(a, dtype))
    return out

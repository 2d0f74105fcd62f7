"""Losses and embeddings whose numbers once differed from PyTorch's, against PyTorch itself:
values and gradients, eager, compiled (NumPy and JAX) and through tg.value_and_grad.

BCE's gradient is PyTorch's (p - t) / max(p (1 - p), 1e-12), finite after a saturated sigmoid;
an embedding's padding row takes no gradient; cross_entropy's label smoothing skips ignored
rows and is weighted, and probability targets take weight= and label_smoothing=.
"""
import numpy as np
import pytest
import torch

import transgrad as tg

rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((6, 4))
CLASSES = np.array([0, 2, 1, 3, 2, 2])  # class 2 is the ignored one below
WEIGHT = rng.uniform(0.5, 2.0, 4)
PROBS = rng.uniform(0.1, 1.0, (6, 4))
PROBS /= PROBS.sum(1, keepdims=True)
LOGITS3 = rng.standard_normal((3, 4, 5))  # (N, C, d1)
CLASSES3 = rng.integers(0, 4, (3, 5))
PROBS3 = rng.uniform(0.1, 1.0, (3, 4, 5))
PROBS3 /= PROBS3.sum(1, keepdims=True)
SATURATED = np.array([40.0, -40.0, 3.0, -2.0, 0.5, 60.0])  # sigmoid rounds to 1 (and to tiny) at the ends
BINARY = np.array([0.0, 1.0, 1.0, 0.3, 0.0, 1.0])
EDGES, EDGE_TARGETS = np.array([0.0, 1.0, 0.3, 1e-30, 1.0]), np.array([0.5, 0.2, 1.0, 0.0, 1.0])
EMB = rng.standard_normal((5, 3))
IDS = np.array([[0, 1, 4], [4, 4, 2]])


def ce(**kw):
    return lambda L, x, t, *w: L.nn.functional.cross_entropy(x, t, *w, **kw)


def bce(reduction="mean"):
    return lambda L, x, t, *w: L.nn.BCELoss(*w, reduction=reduction)(x.sigmoid(), t)


def emb(padding_idx):
    return lambda L, w, i: L.nn.functional.embedding(i, w, padding_idx=padding_idx)


# name: (f(L, differentiated input, *other inputs), differentiated input, other inputs)
CASES = {
    "bce-saturated-sigmoid": (bce(), SATURATED, [BINARY]),
    "bce-saturated-weight-sum": (bce("sum"), SATURATED, [BINARY, WEIGHT[[0, 1, 2, 3, 0, 1]]]),
    "bce-saturated-none": (bce("none"), SATURATED, [BINARY]),
    "bce-probabilities-at-0-and-1": (lambda L, p, t: L.nn.functional.binary_cross_entropy(p, t, reduction="none"),
                                     EDGES, [EDGE_TARGETS]),
    "embedding-padding-0": (emb(0), EMB, [IDS]),
    "embedding-padding-2": (emb(2), EMB, [IDS]),
    "embedding-padding-negative": (emb(-1), EMB, [IDS]),
    "nll-nd-weight-ignore": (lambda L, x, t, w: L.nn.functional.nll_loss(x.log_softmax(1), t, w, ignore_index=2),
                             LOGITS3, [CLASSES3, WEIGHT]),
    "ce-unbatched-smoothing": (ce(label_smoothing=0.2), LOGITS[0], [CLASSES[1]]),
    "ce-mean-every-row-ignored": (ce(ignore_index=2), LOGITS, [np.full(6, 2)]),  # NaN loss, gradient 0
}
for r in ("none", "mean", "sum"):
    CASES |= {
        f"ce-smoothing-ignore-{r}": (ce(label_smoothing=0.2, ignore_index=2, reduction=r), LOGITS, [CLASSES]),
        f"ce-smoothing-weight-{r}": (ce(label_smoothing=0.2, reduction=r), LOGITS, [CLASSES, WEIGHT]),
        f"ce-smoothing-weight-ignore-{r}": (ce(label_smoothing=0.3, ignore_index=2, reduction=r), LOGITS,
                                            [CLASSES, WEIGHT]),
        f"ce-probs-weight-{r}": (ce(reduction=r), LOGITS, [PROBS, WEIGHT]),
        f"ce-probs-smoothing-{r}": (ce(label_smoothing=0.3, reduction=r), LOGITS, [PROBS]),
        f"ce-probs-weight-smoothing-{r}": (ce(label_smoothing=0.1, reduction=r), LOGITS, [PROBS, WEIGHT]),
        f"ce-nd-smoothing-weight-ignore-{r}": (ce(label_smoothing=0.2, ignore_index=2, reduction=r), LOGITS3,
                                               [CLASSES3, WEIGHT]),
        f"ce-nd-probs-weight-smoothing-{r}": (ce(label_smoothing=0.2, reduction=r), LOGITS3, [PROBS3, WEIGHT]),
    }
MODES = ["eager", "numpy", "jax", "value_and_grad"]


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().array)


def _args(L, x, others, dtype):
    cast = [np.asarray(a, dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in others]
    return L.tensor(np.asarray(x, dtype), requires_grad=True), [L.tensor(a) for a in cast]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_gradient_match_pytorch(name, mode):
    f, x0, others = CASES[name]
    dtype, rtol = (np.float32, 1e-5) if mode == "jax" else (np.float64, 1e-10)
    t, targs = _args(torch, x0, others, dtype)
    want = f(torch, t, *targs)
    v = rng.standard_normal(tuple(want.shape)).astype(dtype)  # a projection, for losses that are not scalars
    projected = (want * torch.tensor(v)).sum()
    projected.backward()

    x, args = _args(tg, x0, others, dtype)
    if mode == "value_and_grad":  # the value of the projection, which tg.grad needs scalar
        got, grad = tg.value_and_grad(lambda x, v, *a: (f(tg, x, *a) * v).sum(), backend="numpy")(
            x, tg.tensor(v), *args)
        want = projected
    else:
        run = (lambda *a: f(tg, *a)) if mode == "eager" else tg.compile(lambda *a: f(tg, *a), backend=mode)
        got = run(x, *args)
        (got * tg.tensor(v)).sum().backward()
        grad = x.grad
    np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=rtol * 1e-2)
    g = _np(grad)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, _np(t.grad), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("mode, dtype", [("eager", np.float64), ("numpy", np.float64), ("eager", np.float32),
                                         ("numpy", np.float32), ("jax", np.float32)])
def test_bce_second_order_after_a_saturated_sigmoid_is_pytorchs(mode, dtype):
    def f(L, x, y):  # a gradient penalty: differentiates BCE's gradient
        (g,) = L.autograd.grad(L.nn.functional.binary_cross_entropy(x.sigmoid(), y), x, create_graph=True)
        return g

    rtol = 1e-5 if dtype == np.float32 else 1e-10  # float32: eps squared twice would underflow to 0 (0/0 = NaN)
    results = []
    for L in (torch, tg):
        x, (y,) = _args(L, SATURATED, [BINARY], dtype)
        g = f(L, x, y) if L is torch or mode == "eager" else tg.compile(lambda x, y: f(tg, x, y), backend=mode)(x, y)
        (g * g).sum().backward()
        results.append((_np(g), _np(x.grad)))
    (g, gg), (want_g, want_gg) = results
    assert np.isfinite(gg).all()
    np.testing.assert_allclose(g, want_g, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(gg, want_gg, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("backend", ["eager", "numpy", "jax"])
@pytest.mark.parametrize("padding_idx", [0, 4, -2])
def test_embedding_module_padding_row_is_zero_and_takes_no_gradient(padding_idx, backend):
    tg.manual_seed(0)
    mine, theirs = tg.nn.Embedding(6, 3, padding_idx=padding_idx), torch.nn.Embedding(6, 3, padding_idx=padding_idx)
    assert mine.padding_idx == theirs.padding_idx  # kept non-negative
    np.testing.assert_array_equal(_np(mine.weight[padding_idx]), np.zeros(3, np.float32))
    theirs.load_state_dict({"weight": torch.tensor(_np(mine.weight))})
    ids = np.array([[0, 4, 4], [5, 1, 0]])
    run = mine if backend == "eager" else tg.compile(mine, backend=backend)
    out, want = run(tg.tensor(ids)), theirs(torch.tensor(ids))
    v = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    (out * tg.tensor(v)).sum().backward()
    (want * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(_np(out), _np(want), rtol=1e-6)
    np.testing.assert_allclose(_np(mine.weight.grad), _np(theirs.weight.grad), rtol=1e-6, atol=1e-7)
    assert not _np(mine.weight.grad)[padding_idx].any()

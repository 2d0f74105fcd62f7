"""The PyTorch spellings users write, each run under `torch` and under transgrad (`lib`):
the same values, and the same gradients where there are any."""
import numpy as np
import pytest
import torch

import transgrad as tg

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((4, 2)).astype(np.float32)
V = rng.standard_normal(4).astype(np.float32)
IDX = np.array([[0, 3, 3, 1], [2, 2, 0, 1], [1, 0, 3, 2]])
WITH_ZEROS = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [4.0, 5.0, 6.0]], np.float32)

# name -> fn(lib, *tensors) over the arrays below; all tensors require grad
CASES = {
    "dot": (lambda L, v, w: L.dot(v, w), [V, V[::-1].copy()]),
    "Tensor.dot": (lambda L, v, w: v.dot(w), [V, V[::-1].copy()]),
    "mm": (lambda L, a, b: L.mm(a, b), [A, B]),
    "mv": (lambda L, a, v: L.mv(a, v), [A, V]),
    "bmm": (lambda L, a, b: L.bmm(a.reshape(1, 3, 4), b.reshape(1, 4, 2)), [A, B]),
    "outer": (lambda L, v, w: L.outer(v, w), [V, V[:3].copy()]),
    "einsum": (lambda L, a, b: L.einsum("ij,jk->ik", a, b), [A, B]),
    "einsum-sum": (lambda L, a: L.einsum("ij->j", a), [A]),
    "cumsum": (lambda L, a: L.cumsum(a, dim=1), [A]),
    "Tensor.cumsum": (lambda L, a: a.cumsum(0), [A]),
    "prod": (lambda L, a: a.prod(), [A]),
    "prod-dim": (lambda L, a: a.prod(1), [A]),
    "prod-zeros": (lambda L, a: a.prod(1), [WITH_ZEROS]),
    "prod-zeros-all": (lambda L, a: a.prod(), [WITH_ZEROS]),
    "var": (lambda L, a: a.var(), [A]),
    "var-dim": (lambda L, a: a.var(1, keepdim=True), [A]),
    "var-biased": (lambda L, a: a.var(0, unbiased=False), [A]),
    "std": (lambda L, a: a.std(1), [A]),
    "logsumexp": (lambda L, a: a.logsumexp(1), [A]),
    "log1p": (lambda L, a: (a * a).log1p(), [A]),
    "square": (lambda L, a: a.square(), [A]),
    "rsqrt": (lambda L, a: (a * a + 1).rsqrt(), [A]),
    "reciprocal": (lambda L, a: (a * a + 1).reciprocal(), [A]),
    "clamp_min": (lambda L, a: a.clamp_min(0.1), [A]),
    "clip": (lambda L, a: L.clip(a, -0.5, 0.5), [A]),
    "masked_fill": (lambda L, a: a.masked_fill(a > 0.5, -1.0), [A]),
    "gather": (lambda L, a: a.gather(1, L.tensor(IDX)), [A]),
    "index_select": (lambda L, a: a.index_select(1, L.tensor([3, 0, 3])), [A]),
    "range-index": (lambda L, a: a[range(3), L.tensor([0, 3, 1])], [A]),
    "repeat": (lambda L, a: a.repeat(2, 3), [A]),
    "repeat-more-dims": (lambda L, v: v.repeat(2, 1, 2), [V]),
    "chunk": (lambda L, a: L.cat([c * (i + 1) for i, c in enumerate(a.chunk(3, dim=1))], dim=1), [A]),
    "split": (lambda L, a: L.cat([c * (i + 1) for i, c in enumerate(a.split([1, 3], dim=1))], dim=1), [A]),
    "flip": (lambda L, a: a.flip(0, 1) * L.tensor(A), [A]),
    "tril": (lambda L, a: L.tril(a) * 2, [A]),
    "triu": (lambda L, a: a.triu(1) * 2, [A]),
    "topk": (lambda L, a: a.topk(2, dim=1).values, [A]),
    "sort": (lambda L, a: a.sort(dim=1, descending=True).values * L.arange(4), [A]),
    "max-other": (lambda L, a, b: L.max(a, b), [A, A[::-1].copy()]),
    "sum-axis": (lambda L, a: a.sum(axis=0), [A]),
    "exp_": (lambda L, a: (a * 1).exp_(), [A]),
    "sigmoid_": (lambda L, a: (a * 1).sigmoid_(), [A]),
    "relu_": (lambda L, a: (a * 1).relu_(), [A]),
    "linspace": (lambda L, a: a * L.linspace(-1, 1, 4), [A]),
    "new_zeros": (lambda L, a: a + a.new_zeros(3, 4) + a.new_ones((3, 4)), [A]),
    "type": (lambda L, a: a.type(L.float64) * 2, [A]),
    "flatten-start": (lambda L, a: a.reshape(3, 2, 2).flatten(1) * L.arange(4), [A]),
    "flatten-range": (lambda L, a: L.flatten(a.reshape(1, 3, 2, 2), 1, 2).sum(-1), [A]),
    "squeeze-dims": (lambda L, a: a.reshape(1, 3, 1, 4).squeeze((0, 2)) * 2, [A]),
    "clamp-tensor-bounds": (lambda L, a, lo, hi: a.clamp(min=lo, max=hi + 1), [A, A[::-1].copy() * 0.5, A * 0.3]),
    "clamp-0d-tensor": (lambda L, a, lo: a.clamp(min=lo.sum() * 0.1), [A, V]),
    "add-alpha": (lambda L, a, b: a.add(b, alpha=2) + L.sub(a, b, alpha=0.5), [A, A[::-1].copy()]),
    "sum-empty-dims": (lambda L, a: a.sum(()) * 2 + a.mean([]), [A]),  # no dims listed: all of them
    "div-rounding": (lambda L, a, b: a.div(b, rounding_mode="floor") + L.div(a * 3, b, rounding_mode="trunc") + a / b,
                     [A, A[::-1].copy() + 3]),
}


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().array)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_values_and_gradients_as_pytorch(name):
    fn, arrays = CASES[name]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    gs = [tg.tensor(a, requires_grad=True) for a in arrays]
    want, got = fn(torch, *ts), fn(tg, *gs)
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)
    assert got.dtype == tg.tensor(_np(want)).dtype or str(want.dtype) == "torch." + str(got.dtype)
    v = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    (want * torch.tensor(v, dtype=want.dtype)).sum().backward()
    (got * tg.tensor(v, dtype=got.dtype)).sum().backward()
    for t, g in zip(ts, gs):
        np.testing.assert_allclose(_np(g.grad), _np(t.grad), rtol=1e-5, atol=1e-5)


NO_GRAD = {
    "all": lambda L, a: (a > -3).all(),
    "any-dim": lambda L, a: (a > 1).any(dim=1),
    "isnan": lambda L, a: L.isnan(a / (a > 0)),
    "argsort": lambda L, a: a.argsort(dim=1),
    "sort-indices": lambda L, a: a.sort(dim=0).indices,
    "topk-indices": lambda L, a: a.topk(3).indices,
    "numel": lambda L, a: L.tensor(L.numel(a)),
    "allclose": lambda L, a: L.tensor(L.allclose(a, a + 1e-9)),
    "is_tensor": lambda L, a: L.tensor(L.is_tensor(a)),
    "randint-shape": lambda L, a: L.tensor(L.randint(0, 5, (2, 3)).shape),
    "randperm-sorted": lambda L, a: L.randperm(5).sort().values,
    "empty-shape": lambda L, a: L.tensor(L.empty(2, 3).shape),
    "ones-size": lambda L, a: L.ones(size=(2, 2)),
    "zeros-device": lambda L, a: L.zeros(2, device=L.device("cpu")),
    "to-device": lambda L, a: a.to(L.device("cpu")).cpu() * 2,
    "to-dtype": lambda L, a: a.to(L.float64),
    "long": lambda L, a: (a * 10).long(),
    "float-alias": lambda L, a: a.to(L.double).float(),
    "full-int": lambda L, a: L.full((2,), 3),
    "randint-high-size": lambda L, a: L.tensor(L.randint(10, (3, 2)).shape),
    "masked-fill-int-with-float": lambda L, a: (a * 10).long().masked_fill(a > 0, 2.7),
    "div-trunc-ints": lambda L, a: (a * 10).long().div(L.tensor(3), rounding_mode="trunc"),
    "logical-of-ints": lambda L, a: L.stack([L.logical_and((a * 3).long(), (a * 2).long()),
                                             L.logical_or((a * 3).long(), a > 1), ((a * 3).long()).logical_not()]),
    "logical-not-float": lambda L, a: (a * 0).logical_not() & (a != 0).logical_not(),
    "bitwise-of-ints": lambda L, a: ((a * 9).long() & (a * 5).long()) | ~(a * 4).long(),
}


@pytest.mark.parametrize("name", sorted(NO_GRAD))
def test_same_results_as_pytorch(name):
    want, got = NO_GRAD[name](torch, torch.tensor(A)), NO_GRAD[name](tg, tg.tensor(A))
    np.testing.assert_array_equal(_np(got), _np(want))
    assert np.dtype(_np(got).dtype) == np.dtype(_np(want).dtype)


F = {"torch": torch.nn.functional, "transgrad": tg.nn.functional}
# what users print: type(y.grad_fn).__name__ of each operation's result, rows and compositions alike
GRAD_FN = {
    "var": lambda L, a: a.var(), "std": lambda L, a: a.std(1), "logsumexp": lambda L, a: a.logsumexp(1),
    "square": lambda L, a: a.square(), "rsqrt": lambda L, a: a.abs().rsqrt(), "reciprocal": lambda L, a: a.reciprocal(),
    "clamp_min": lambda L, a: a.clamp_min(0.1), "clamp_max": lambda L, a: a.clamp_max(0.1),
    "clip": lambda L, a: a.clip(0, 1), "masked_fill": lambda L, a: a.masked_fill(a > 0, 0.0),
    "index_select": lambda L, a: a.index_select(0, L.tensor([0, 2])), "repeat": lambda L, a: a.repeat(2, 1),
    "chunk": lambda L, a: a.chunk(2, 1)[0], "split": lambda L, a: a.split(2, 1)[1], "flip": lambda L, a: a.flip(0),
    "tril": lambda L, a: a.tril(), "triu": lambda L, a: a.triu(), "sort": lambda L, a: a.sort(1)[0],
    "topk": lambda L, a: a.topk(2)[0], "dot": lambda L, a: a[0].dot(a[1]), "mm": lambda L, a: a.mm(a.T),
    "mv": lambda L, a: a.mv(a[0]), "bmm": lambda L, a: L.bmm(a[None], a.T[None]), "cumsum": lambda L, a: a.cumsum(1),
    "prod": lambda L, a: a.prod(), "gather": lambda L, a: a.gather(1, L.tensor([[0], [1], [2]])),
    "log1p": lambda L, a: a.abs().log1p(), "sum": lambda L, a: a.sum(), "sum-dim": lambda L, a: a.sum(1),
    "mean": lambda L, a: a.mean(), "mean-dim": lambda L, a: a.mean(1), "max": lambda L, a: a.max(),
    "max-dim": lambda L, a: a.max(1)[0], "amax": lambda L, a: a.amax(1), "amin": lambda L, a: a.amin(1),
    "min": lambda L, a: a.min(), "softmax": lambda L, a: a.softmax(1), "log_softmax": lambda L, a: a.log_softmax(1),
    "relu": lambda L, a: a.relu(), "sigmoid": lambda L, a: a.sigmoid(), "tanh": lambda L, a: a.tanh(),
    "t": lambda L, a: a.t(), "T": lambda L, a: a.T, "transpose": lambda L, a: a.transpose(0, 1),
    "view": lambda L, a: a.view(12), "reshape": lambda L, a: a.reshape(12), "flatten": lambda L, a: a.flatten(),
    "unsqueeze": lambda L, a: a.unsqueeze(0), "squeeze": lambda L, a: a[None].squeeze(),
    "squeeze-dim": lambda L, a: a[None].squeeze(0), "expand": lambda L, a: a[0:1].expand(3, 4),
    "select": lambda L, a: a[0], "select-last": lambda L, a: a[1:3, 0], "slice": lambda L, a: a[1:3],
    "slice-last": lambda L, a: a[0, 1:3], "none": lambda L, a: a[None], "index": lambda L, a: a[L.tensor([0, 2])],
    "cat": lambda L, a: L.cat([a, a]), "stack": lambda L, a: L.stack([a, a]), "where": lambda L, a: L.where(a > 0, a, 0.0),
    "pow": lambda L, a: a ** 2, "exp": lambda L, a: a.exp(), "abs": lambda L, a: a.abs(), "neg": lambda L, a: -a,
    "sub": lambda L, a: a - 1, "div": lambda L, a: a / 2, "norm": lambda L, a: a.norm(), "sqrt": lambda L, a: a.abs().sqrt(),
    "permute": lambda L, a: a.permute(1, 0),  # (einsum: PyTorch names the last step of its contraction plan)
    "mse_loss": lambda L, a: F[L.__name__].mse_loss(a, a.detach() * 0),
    "cross_entropy": lambda L, a: F[L.__name__].cross_entropy(a, L.tensor([0, 1, 2])),
    "nll_loss": lambda L, a: F[L.__name__].nll_loss(a.log_softmax(1), L.tensor([0, 1, 2])),
    "binary_cross_entropy": lambda L, a: F[L.__name__].binary_cross_entropy(a.sigmoid(), a.detach() * 0),
    "bce_with_logits": lambda L, a: F[L.__name__].binary_cross_entropy_with_logits(a, a.detach() * 0),
    "linear": lambda L, a: F[L.__name__].linear(a, a, a[0, :3]), "linear-no-bias": lambda L, a: F[L.__name__].linear(a, a),
    "layer_norm": lambda L, a: F[L.__name__].layer_norm(a, (4,)), "gelu": lambda L, a: F[L.__name__].gelu(a, approximate="tanh"),
    "silu": lambda L, a: F[L.__name__].silu(a), "softplus": lambda L, a: F[L.__name__].softplus(a),
    "leaky_relu": lambda L, a: F[L.__name__].leaky_relu(a), "elu": lambda L, a: F[L.__name__].elu(a),
    "embedding": lambda L, a: F[L.__name__].embedding(L.tensor([0, 2]), a),
    "batch_norm": lambda L, a: F[L.__name__].batch_norm(a, None, None, training=True),
    "conv2d": lambda L, a: F[L.__name__].conv2d(a[None, None], a[None, None, :2, :2]),
    "max_pool2d": lambda L, a: F[L.__name__].max_pool2d(a[None, None], 2),
    "avg_pool2d": lambda L, a: F[L.__name__].avg_pool2d(a[None, None], 2),
    "unfold": lambda L, a: F[L.__name__].unfold(a[None, None], 2),
    "dropout": lambda L, a: F[L.__name__].dropout(a, 0.5),
}


@pytest.mark.parametrize("name", sorted(GRAD_FN))
def test_grad_fn_class_names_are_pytorchs(name):
    want = GRAD_FN[name](torch, torch.tensor(A, requires_grad=True))
    got = GRAD_FN[name](tg, tg.tensor(A, requires_grad=True))
    assert type(got.grad_fn).__name__ == type(want.grad_fn).__name__
    assert repr(got.grad_fn).startswith(f"<{type(want.grad_fn).__name__} object at 0x")


def test_grad_fn_classes_have_pytorchs_names():
    x = tg.ones(2, requires_grad=True)
    y = x + 2
    assert type(y.grad_fn).__name__ == "AddBackward0" and isinstance(y.grad_fn, tg.autograd.graph.Node)
    assert type((y * y).grad_fn).__name__ == "MulBackward0"
    assert type(y.sum().grad_fn).__name__ == "SumBackward0"
    assert type(x.max(0).values.grad_fn).__name__ == "MaxBackward0"
    assert type(y.grad_fn.next_functions[0][0]).__name__ == "AccumulateGrad"


def test_cuda_is_not_there_and_cpu_programs_run():
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")
    x = tg.randn(3, device=device).to(device)
    assert x.device == device and str(device) == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tg.device("cuda")


def test_grad_mode_decorators_set_the_mode_for_their_calls_only():
    for L in (torch, tg):
        @L.set_grad_enabled(False)
        def doubled(x):
            return x * 2

        @L.no_grad()
        def countdown(n):  # the same context manager entered again while it is active
            return n if n == 0 else countdown(n - 1)

        assert L.is_grad_enabled()  # decorating did not turn recording off
        assert not doubled(L.ones(2, requires_grad=True)).requires_grad
        countdown(3)
        assert L.is_grad_enabled()
        with L.set_grad_enabled(False):
            assert not L.is_grad_enabled()
        assert L.is_grad_enabled()


def test_class_indices_out_of_range_raise_index_error():
    # a -1 padding label without ignore_index=-1 used to read the last class (and train on it)
    logits = tg.tensor([[1.0, 2.0, 3.0]] * 2, requires_grad=True)
    for bad in ([1, -1], [1, 3]):
        with pytest.raises(IndexError, match="nll_loss: a target class is out of range"):
            tg.nn.functional.cross_entropy(logits, tg.tensor(bad))
        with pytest.raises(IndexError):
            torch.nn.functional.cross_entropy(torch.tensor(logits.detach().numpy()), torch.tensor(bad))
    with pytest.raises(IndexError, match="embedding: an index is out of range"):
        tg.nn.Embedding(5, 2)(tg.tensor([-1]))
    f = tg.compile(lambda x, t: tg.nn.functional.cross_entropy(x, t))
    f(logits, tg.tensor([0, 2]))
    with pytest.raises(IndexError):  # a compiled call checks its targets at every call
        f(logits, tg.tensor([0, 7]))


PROMOTIONS = {
    "where-int-float": lambda L, c, i, f: L.where(c, i, f),
    "where-int-scalar": lambda L, c, i, f: L.where(c, i, 0.5),
    "where-bool-int": lambda L, c, i, f: L.where(c, c, i),
    "cat-int-float": lambda L, c, i, f: L.cat([i, f]),
    "stack-int-float": lambda L, c, i, f: L.stack([i, f]),
    "clamp-int-float": lambda L, c, i, f: i.clamp(min=1.5),
    "clamp-int-int": lambda L, c, i, f: i.clamp(max=2),
    "float32-by-0d-float64": lambda L, c, i, f: f * L.tensor(1.5, dtype=L.float64),
    "0d-float64-by-float32": lambda L, c, i, f: L.tensor(1.5, dtype=L.float64) - f,
    "int32-plus-0d-int64": lambda L, c, i, f: i.int() + L.tensor(3),
    "0d-by-0d": lambda L, c, i, f: L.tensor(2.0) * L.tensor(3.0, dtype=L.float64),
    "where-0d-float64": lambda L, c, i, f: L.where(c, f, L.tensor(3.0, dtype=L.float64)),
    "masked-fill-0d-float64": lambda L, c, i, f: f.masked_fill(c, L.tensor(2.0, dtype=L.float64)),
    "where-int32-0d-int64": lambda L, c, i, f: L.where(c, i.int(), L.tensor(5)),
    "stack-0d": lambda L, c, i, f: L.stack([L.tensor(1.0), L.tensor(2.0, dtype=L.float64)]),
}


@pytest.mark.parametrize("name", sorted(PROMOTIONS))
def test_dtype_promotion_is_pytorchs(name):
    # NumPy would promote int64 with float32 (and float32 with a 0-d float64) to float64, which the JAX
    # backend refuses: PyTorch's rule keeps float32
    args = ([True, False, True], [1, 2, 3], np.array([0.5, 1.5, 2.5], np.float32))
    want = PROMOTIONS[name](torch, *(torch.tensor(a) for a in args))
    got = PROMOTIONS[name](tg, *(tg.tensor(a) for a in args))
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_array_equal(_np(got), _np(want))
    if str(got.dtype) != "float64":
        f = tg.compile(lambda c, i, x: PROMOTIONS[name](tg, c, i, x), backend="jax")
        np.testing.assert_array_equal(np.asarray(f(*(tg.tensor(a) for a in args)).array), _np(want))

"""PyTorch autograd semantics, each checked against a closed form."""
import gc
import weakref

import numpy as np
import pytest

import transgrad as tg
from transgrad import engine


def leaf(values, dtype=tg.float64):
    return tg.tensor(values, dtype=dtype, requires_grad=True)


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_grad_object_is_kept_when_accumulating():
    x = leaf([1.0])
    (x * 2).sum().backward()
    g = x.grad
    (x * 2).sum().backward()
    assert x.grad is g
    np.testing.assert_allclose(g.numpy(), [4.0])


def test_zero_grad():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4])


def test_second_backward_through_freed_graph_raises_and_changes_nothing():
    x = leaf([1.0, 2.0])
    out = (x * x).sum()
    out.backward()
    before = x.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), before)


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    out = (x * x).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4, 8])


def test_leaf_and_history_flags():
    x = leaf([1.0])
    y = x * 2
    assert x.is_leaf and not y.is_leaf
    assert x.requires_grad and y.requires_grad
    c = tg.tensor([1.0])
    assert c.is_leaf and not c.requires_grad and c.grad_fn is None
    assert not (c * 2).requires_grad


def test_detach_and_data_share_storage_without_history():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    assert y.data.grad_fn is None and not y.data.requires_grad
    assert np.shares_memory(x.data.numpy(), x.detach().numpy())


def test_requires_grad_():
    x = tg.tensor([1.0, 2.0])
    x.requires_grad_()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4])
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_retain_grad_populates_non_leaf_grad():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * 3 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), 18 * np.array([1.0, 2.0]))


def test_no_grad_and_enable_grad():
    x = leaf([1.0])
    with tg.no_grad():
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @tg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_grad_fn_names_and_next_functions():
    x = leaf([[1.0, 1.0], [1.0, 1.0]])
    y = x + 2
    z = y * y * 3
    out = z.mean()
    assert out.grad_fn.name() == "MeanBackward0"
    (mul3, _), = out.grad_fn.next_functions
    assert mul3.name() == "MulBackward0"
    (mul, _), (none, _) = mul3.next_functions
    assert mul.name() == "MulBackward0" and none is None
    assert [n.name() for n, _ in mul.next_functions] == ["AddBackward0", "AddBackward0"]
    acc, _ = y.grad_fn.next_functions[0]
    assert acc.name() == "AccumulateGrad" and acc.variable is x
    names = {"sum": x.sum(), "exp": x.exp(), "matmul": x @ x, "view": x.reshape(4), "t": x.t()}
    assert {k: v.grad_fn.name() for k, v in names.items()} == {
        "sum": "SumBackward0", "exp": "ExpBackward0", "matmul": "MmBackward0", "view": "ViewBackward0",
        "t": "TBackward0"}  # as PyTorch names them


def test_broadcasting_gradients_are_summed():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.arange(4.0).reshape(1, 4))
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 0 + 1 + 2 + 3))
    np.testing.assert_allclose(b.grad.numpy(), np.full((1, 4), 3.0))


def test_repeated_indices_accumulate():
    x = leaf([1.0, 2.0, 3.0])
    x[tg.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 0, 1])


def test_boolean_mask_gradient():
    x = leaf([-1.0, 2.0, -3.0, 4.0])
    (x[x > 0] ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 4, 0, 8])


def test_index_arrays_are_inputs_not_constants_of_cached_code():
    x = leaf([1.0, 2.0, 3.0])
    for idx in ([0, 1], [2, 2], [1, 0]):
        x.grad = None
        x[tg.tensor(idx)].sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.bincount(idx, minlength=3))


def test_comparisons_give_bool_tensors_and_bool_works():
    x = tg.tensor([1.0, 5.0])
    m = x > 2
    assert m.dtype == tg.bool_ and not m.requires_grad
    assert m.tolist() == [False, True]
    assert bool(x.norm() < 10) and not bool(x.sum() < 1)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(m)


def test_dtypes_follow_pytorch():
    assert tg.ones(2).dtype == tg.float32
    assert tg.tensor([1, 2]).dtype == tg.int64
    assert tg.tensor([1.5]).dtype == tg.float32
    assert (tg.tensor([1, 2]) * 1.5).dtype == tg.float32
    assert (tg.tensor([1, 2]) / tg.tensor([2, 4])).dtype == tg.float32
    assert (tg.tensor([1, 2]) + tg.ones(2)).dtype == tg.float32
    assert (tg.ones(2) + tg.ones(2, dtype=tg.float64)).dtype == tg.float64
    assert (tg.ones(2, dtype=tg.float64) * 2).dtype == tg.float64
    assert tg.tensor([1, 2]).exp().dtype == tg.float32


def test_functional_grad_leaves_dot_grad_alone():
    x = leaf([1.0, 2.0])
    (g,) = tg.autograd.grad((x ** 2).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_functional_grad_of_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 3
    (gy,) = tg.autograd.grad((y * y).sum(), y)
    np.testing.assert_allclose(gy.numpy(), 2 * 3 * np.array([1.0, 2.0]))


def test_second_derivative():
    x = leaf([0.5, 1.5])
    (g,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_hessian_vector_product():
    # f = sum(sin(x) * y) + (x.x)^2 ; H_xx v = -sin(x) y v + 4 (x.x) v + 8 x (x.v)
    rng = np.random.default_rng(0)
    xv, yv, v = rng.standard_normal((3, 4))
    x, y = leaf(xv), leaf(yv)
    f = (x.sin() * y).sum() + (x * x).sum() ** 2
    (gx,) = tg.autograd.grad(f, x, create_graph=True)
    (hv,) = tg.autograd.grad(gx, x, grad_outputs=tg.tensor(v))
    want = -np.sin(xv) * yv * v + 4 * (xv @ xv) * v + 8 * xv * (xv @ v)
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-10)


def test_backward_create_graph_gives_differentiable_grad():
    x = leaf([2.0])
    (x ** 4).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = tg.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.numpy(), [12 * 4.0])


def test_gradcheck_passes_and_catches_wrong_gradients():
    x = leaf(np.random.default_rng(0).standard_normal(3))
    assert tg.autograd.gradcheck(lambda t: (t.tanh() * t.exp()).sum(), (x,))

    class Wrong(tg.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * t

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 t g

    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        tg.autograd.gradcheck(lambda t: Wrong.apply(t), (x,))
    assert not tg.autograd.gradcheck(lambda t: Wrong.apply(t), (x,), raise_exception=False)


def test_custom_function_with_saved_output():
    class Exp(tg.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            out = t.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    x = leaf([0.0, 1.0])
    y = Exp.apply(x)
    assert y.grad_fn.name() == "ExpBackward"
    (y * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([0.0, 1.0]))
    assert tg.autograd.gradcheck(lambda t: Exp.apply(t).sum(), (leaf([0.3, -0.2]),))


def test_training_loop_generates_backward_once():
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((3, 2)))
    xs = rng.standard_normal((5, 4, 3))
    before = dict(engine.stats)
    for x in xs:
        loss = (tg.tensor(x) @ w).tanh().sum()
        loss.backward()
    assert engine.stats["misses"] - before["misses"] == 1
    assert engine.stats["hits"] - before["hits"] == 4
    want = sum(x.T @ (1 - np.tanh(x @ w.detach().numpy()) ** 2) for x in xs)
    np.testing.assert_allclose(w.grad.numpy(), want)


def test_saved_values_are_released_after_backward():
    x = leaf([1.0, 2.0])
    y = x * 3
    ref = weakref.ref(y)
    out = (y * y).sum()
    del y
    out.backward()
    gc.collect()
    assert ref() is None


def test_float64_graph_stays_float64():
    x = leaf([0.1, 0.2])
    (x.sin() * 3).sum().backward()
    assert x.grad.dtype == tg.float64
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.cos([0.1, 0.2]), rtol=1e-15)


def test_mlp_gradients_against_closed_form():
    rng = np.random.default_rng(3)
    X, W1, W2 = rng.standard_normal((8, 5)), rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    labels = rng.integers(0, 3, 8)
    w1, w2 = leaf(W1), leaf(W2)
    h = (tg.tensor(X) @ w1).tanh()
    logp = (h @ w2).log_softmax(dim=1)
    loss = -logp[tg.arange(8), tg.tensor(labels)].mean()
    loss.backward()
    H = np.tanh(X @ W1)
    Z = H @ W2
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    dZ = (P - np.eye(3)[labels]) / 8
    np.testing.assert_allclose(w2.grad.numpy(), H.T @ dZ, rtol=1e-10)
    np.testing.assert_allclose(w1.grad.numpy(), X.T @ ((dZ @ W2.T) * (1 - H ** 2)), rtol=1e-10)


def test_legacy_constructors_and_repr():
    assert repr(tg.FloatTensor([0.1, 1.0, 0.0001])) == "tensor([1.0000e-01, 1.0000e+00, 1.0000e-04])"
    assert tg.FloatTensor(2, 3).shape == (2, 3)
    assert tg.Tensor([1.0]).dtype == tg.float32
    assert repr(tg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tg.tensor([1.0], dtype=tg.float64)) == "tensor([1.], dtype=float64)"
    assert repr(tg.tensor(2.5)) == "tensor(2.5000)"


# ---- max / min: where the gradient goes on ties (PyTorch as the oracle) ----------------------------
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]], np.float32)


@pytest.mark.parametrize("call", [
    lambda t: t.max(1).values, lambda t: t.min(dim=1)[0], lambda t: t.max(0, keepdim=True).values,
    lambda t: t.max(), lambda t: t.amax(1), lambda t: t.min(),
], ids=["max-dim", "min-dim", "max-dim-keepdim", "max-all", "amax-dim", "min-all"])
def test_ties_send_the_gradient_where_pytorch_does(call):
    import torch

    xt = torch.tensor(TIES, requires_grad=True)
    v = np.arange(1, 1 + call(xt).numel(), dtype=np.float32).reshape(tuple(call(xt).shape))
    (call(xt) * torch.tensor(v)).sum().backward()
    for mode in ("eager", "numpy", "jax"):
        f = (lambda x: (call(x) * tg.tensor(v)).sum())
        if mode == "eager":
            x = tg.tensor(TIES, requires_grad=True)
            f(x).backward()
            g = x.grad
        else:
            g = tg.grad(f, backend=mode)(TIES)
        np.testing.assert_array_equal(np.asarray(g.array), xt.grad.numpy(), err_msg=mode)


def test_max_min_indices_and_names():
    import torch

    values, indices = tg.tensor(TIES, requires_grad=True).max(1)
    assert indices.tolist() == torch.tensor(TIES).max(1).indices.tolist() and values.grad_fn.name() == "MaxBackward0"
    assert tg.tensor(TIES, requires_grad=True).min(1, keepdim=True).indices.shape == (2, 1)


def test_max_with_a_tensor_is_the_elementwise_maximum():
    a, b = tg.tensor([1.0, 5.0], requires_grad=True), tg.tensor([3.0, 2.0], requires_grad=True)
    m = tg.max(a, b)
    assert m.tolist() == [3.0, 5.0] and tg.min(a, b).tolist() == [1.0, 2.0] and a.max(b).tolist() == [3.0, 5.0]
    m.sum().backward()
    assert a.grad.tolist() == [0.0, 1.0] and b.grad.tolist() == [1.0, 0.0]


def test_backward_inputs_may_name_a_non_leaf_as_in_pytorch():
    import torch

    got = []
    for L in (torch, tg):
        x, w = L.tensor([1.0, 2.0], requires_grad=True), L.tensor([3.0, 4.0], requires_grad=True)
        h = x * w
        (h * h).sum().backward(inputs=[h, w])
        got.append((h.grad.numpy(), w.grad.numpy(), x.grad))
    (th, tw, tx), (gh, gw, gx) = got
    np.testing.assert_allclose(gh, th)  # 2 h = [6, 16]: it was None
    np.testing.assert_allclose(gw, tw)
    assert tx is None and gx is None

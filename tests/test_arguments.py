"""What a compiled function reads: structured arguments (lists, tuples, dicts of tensors)
with gradients of the same structure, `argnums` counted over the call's positional
arguments, and tensors read from closures, globals and objects at every call (never frozen
into a trace). Oracles: closed forms and PyTorch."""
import numpy as np
import pytest
import torch

import transgrad as tg

BACKENDS = ["numpy", "jax"]
W0 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
B0 = np.array([0.5, -0.5], np.float32)
X0 = np.array([1.0, -2.0], np.float32)


def torch_grads(loss, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss(*ts).backward()
    return [t.grad.numpy() for t in ts]


def linear_loss(p, x):
    return ((x @ p[0] + p[1]) ** 2).sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_list_argument_gets_a_list_of_gradients(backend):
    gW, gb = torch_grads(lambda W, b: linear_loss([W, b], torch.tensor(X0)), W0, B0)
    g = tg.grad(linear_loss, argnums=0, backend=backend)([tg.tensor(W0), tg.tensor(B0)], tg.tensor(X0))
    assert type(g) is list and len(g) == 2
    np.testing.assert_allclose(g[0].numpy(), gW, rtol=1e-6)
    np.testing.assert_allclose(g[1].numpy(), gb, rtol=1e-6)
    value, (g2,) = tg.value_and_grad(linear_loss, argnums=(0,), backend=backend)([tg.tensor(W0), tg.tensor(B0)], X0)
    assert type(g2) is list
    np.testing.assert_allclose(value.item(), linear_loss([torch.tensor(W0), torch.tensor(B0)], torch.tensor(X0)).item())
    np.testing.assert_allclose(g2[1].numpy(), gb, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dict_and_nested_arguments(backend):
    def loss(params, x, scale):
        h = (x @ params["layers"][0]["W"] + params["layers"][0]["b"]).tanh()
        return (h * params["out"]).sum() * scale

    v = np.array([2.0, -1.0], np.float32)
    want = torch_grads(lambda W, b, o: loss({"layers": ({"W": W, "b": b},), "out": o}, torch.tensor(X0), 3), W0, B0, v)
    params = {"layers": ({"W": tg.tensor(W0), "b": tg.tensor(B0)},), "out": tg.tensor(v)}
    g = tg.grad(loss, backend=backend)(params, tg.tensor(X0), 3)
    assert set(g) == {"layers", "out"} and type(g["layers"]) is tuple and set(g["layers"][0]) == {"W", "b"}
    for got, w in zip((g["layers"][0]["W"], g["layers"][0]["b"], g["out"]), want):
        np.testing.assert_allclose(got.numpy(), w, rtol=1e-5, atol=1e-5)


def test_argnums_order_is_kept():
    f = lambda a, b: (a * a * b).sum()  # noqa: E731
    a, b = np.array([1.0, 2.0], np.float32), np.array([3.0, 5.0], np.float32)
    gb, ga = tg.grad(f, argnums=(1, 0))(a, b)
    np.testing.assert_allclose(ga.numpy(), 2 * a * b)
    np.testing.assert_allclose(gb.numpy(), a * a)


def test_argnums_counts_the_calls_positional_arguments():
    def f(x, n):
        return (x * n).sum()

    wrapped = lambda *a: f(*a)  # noqa: E731
    for backend in BACKENDS:
        (g,) = tg.grad(wrapped, argnums=(0,), backend=backend)(tg.ones(2), 3)
        np.testing.assert_array_equal(g.numpy(), [3.0, 3.0])
        g = tg.grad(lambda x, name, k: (x ** k).sum() if name == "pow" else x.sum(), backend=backend)(
            tg.tensor([2.0]), "pow", 3)
        np.testing.assert_allclose(g.numpy(), [12.0])
    with pytest.raises(TypeError, match="argnums=.*counts positional arguments"):
        tg.grad(f, argnums=1)(tg.ones(2), n=3)


def test_compiled_function_taking_a_list_of_parameters():
    f = tg.compile(linear_loss)
    W, b = tg.tensor(W0, requires_grad=True), tg.tensor(B0, requires_grad=True)
    f([W, b], tg.tensor(X0)).backward()
    gW, gb = torch_grads(lambda W, b: linear_loss([W, b], torch.tensor(X0)), W0, B0)
    np.testing.assert_allclose(W.grad.numpy(), gW, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), gb, rtol=1e-6)


# ---- captured tensors: read at every call ------------------------------------------------------
W = tg.tensor([1.0, 2.0])


def predict(x):
    return (x * W).sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rebound_global_tensor_is_read(backend):
    global W
    saved = W
    try:
        f = tg.compile(predict, backend=backend)
        W = tg.tensor([1.0, 2.0])
        assert f(tg.ones(2)).item() == 3.0
        keep = [W]  # the old tensor stays alive: identity would still find it
        W = tg.tensor([10.0, 20.0])
        assert f(tg.ones(2)).item() == 30.0
        assert f.cache_info().size == 1 and keep[0].numpy().tolist() == [1.0, 2.0]
        W = tg.tensor([1.0, 2.0, 3.0])  # another shape: a new trace, and the log says why
        assert f(tg.ones(3)).item() == 6.0
    finally:
        W = saved


def test_training_loop_rebinding_a_global_parameter():
    """`w = (w - lr * w.grad).detach().requires_grad_()` with the loss reading the global w."""
    global w_param
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
    y = np.array([1.0, 0.0, 2.0], np.float32)

    def loss_fn():
        return ((tg.tensor(X) @ w_param - tg.tensor(y)) ** 2).mean()

    for backend in BACKENDS:
        compiled = tg.compile(loss_fn, backend=backend)
        w_param = tg.tensor([0.0, 0.0], requires_grad=True)
        wt = torch.zeros(2, requires_grad=True)
        for _ in range(4):
            loss = compiled()
            loss.backward()
            lt = ((torch.tensor(X) @ wt - torch.tensor(y)) ** 2).mean()
            lt.backward()
            np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-6)
            w_param = (w_param - 0.1 * w_param.grad).detach().requires_grad_()
            wt = (wt - 0.1 * wt.grad).detach().requires_grad_()
        np.testing.assert_allclose(np.asarray(w_param.detach().array), wt.detach().numpy(), rtol=1e-5)


def test_closure_list_and_object_attributes_are_read():
    params = [tg.tensor([1.0, 1.0])]

    class Model:
        def __init__(self):
            self.scale = tg.tensor(2.0)

    model = Model()
    f = tg.compile(lambda x: (x * params[0]).sum() * model.scale)
    assert f(tg.ones(2)).item() == 4.0
    params[0] = tg.tensor([3.0, 4.0])
    assert f(tg.ones(2)).item() == 14.0
    model.scale = tg.tensor(-1.0)
    assert f(tg.ones(2)).item() == -7.0
    model.scale = tg.tensor([1.0, 1.0])  # another shape
    assert f(tg.ones(2)).numpy().tolist() == [7.0, 7.0]
    assert "`model.scale` changed from float32[] to float32[2]" in f.retrace_log[-1]


def test_data_alias_of_a_global_is_read_at_every_call():
    f = tg.compile(lambda x: (x * W.data).sum())
    assert f(tg.ones(2)).item() == pytest.approx(float(W.sum()))
    with tg.no_grad():
        W.mul_(2)
    try:
        assert f(tg.ones(2)).item() == pytest.approx(float(W.sum()))
    finally:
        with tg.no_grad():
            W.div_(2)


def test_gradients_reach_the_current_captured_tensor():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    f = tg.compile(lambda x: (x * w * w).sum())
    f(tg.ones(2)).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    w = tg.tensor([3.0, 4.0], requires_grad=True)  # the closure cell is rebound
    f(tg.ones(2)).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 8.0])


# ---- one cache per function, not per wrapper ------------------------------------------------------
def mse(w, x, y):
    return ((x @ w - y) ** 2).mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_grad_made_inside_the_loop_does_not_retrace(backend):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    w = tg.zeros(3)
    wt = torch.zeros(3, requires_grad=True)
    for step in range(6):
        batch = slice(step % 2 * 4, step % 2 * 4 + 4)
        xb, yb = tg.tensor(X[batch]), tg.tensor(Y[batch])
        vg = tg.value_and_grad(lambda w: mse(w, xb, yb), backend=backend)  # a new wrapper and lambda every step
        loss, g = vg(w)
        w = w - 0.1 * g
        lt = mse(wt, torch.tensor(X[batch]), torch.tensor(Y[batch]))
        lt.backward()
        with torch.no_grad():
            wt -= 0.1 * wt.grad
        wt.grad = None
        np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-5)
        assert vg.cache_info().size == 1 and vg.cache_info().misses == (1 if step == 0 else 0)
    np.testing.assert_allclose(np.asarray(w.array), wt.detach().numpy(), rtol=1e-5)


def test_closures_of_one_code_over_different_arrays_are_not_confused():
    def make(v):
        return tg.compile(lambda x: (x * tg.tensor(v)).sum())  # v becomes a constant of the trace

    a, b = make(np.array([1.0, 2.0], np.float32)), make(np.array([10.0, 20.0], np.float32))
    assert a(tg.ones(2)).item() == 3.0
    assert b(tg.ones(2)).item() == 30.0  # not the first closure's constant
    assert a(tg.ones(2)).item() == 3.0

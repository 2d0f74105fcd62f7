"""Structured arguments as in JAX (API.md): lists, tuples and dicts of tensors, nested, whose
gradients have the same structure (`tg.grad(loss)([W, b], x)` returns `[gW, gb]`), and
`argnums` counting the call's positional arguments with non-tensor arguments (ints, floats,
strings) left alone.

Oracles: PyTorch's `.backward()` on the same function (leaf `.grad`s put back into the
argument's structure), and `torch.func.grad` / `torch.func.grad_and_value`, which follow the
same pytree convention as JAX and as API.md.
"""
import numpy as np
import torch
import torch.func

import transgrad as tg
from harness import TORCH, assert_close, check_function, modes, randn, rng, same_structure, tensors, to_np


def linear_list_loss(lib):
    def loss(p, x):
        return ((x @ p[0] + p[1]) ** 2).sum()

    return loss


# ---- 1. a list of parameters: `tg.grad(loss, argnums=0)([W, b], x)` is `[gW, gb]` ------------------------
@modes()
def test_list_argument(mode):
    W, b, x = np.array([[1., 2.], [3., 4.]], np.float32), np.array([.5, -.5], np.float32), np.ones(2, np.float32)
    check_function(linear_list_loss, [([W, b], x), ([W * 0.5, b], x)], argnums=0, mode=mode)
    if mode.functional:
        params, xt = tensors(tg, [W, b]), tg.tensor(x)
        tparams, txt = tensors(torch, [W, b]), torch.tensor(x)
        loss, tloss = linear_list_loss(tg), linear_list_loss(torch)
        got = mode.grad(loss, argnums=0)(params, xt)
        same_structure(got, params)
        assert_close(got, torch.func.grad(tloss, argnums=0)(tparams, txt), path="grad argnums=0")
        got = mode.grad(loss, argnums=(0,))(params, xt)  # a tuple holding the list
        assert_close(got, torch.func.grad(tloss, argnums=(0,))(tparams, txt), path="grad argnums=(0,)")
        got = mode.grad(loss, argnums=(0, 1))(params, xt)
        assert_close(got, torch.func.grad(tloss, argnums=(0, 1))(tparams, txt), path="grad argnums=(0, 1)")


# ---- 2. a dict of parameters: an MLP's {"W1": .., "b1": .., "W2": .., "b2": ..} -----------------------------
def dict_mlp(lib):
    def loss(params, x, y):
        h = (x @ params["W1"] + params["b1"]).tanh()
        return ((h @ params["W2"] + params["b2"] - y) ** 2).mean()

    return loss


@modes()
def test_dict_argument(mode):
    r = rng(52)
    params = {"W1": randn(r, 3, 4), "b1": randn(r, 4), "W2": randn(r, 4, 1), "b2": np.zeros(1, np.float32)}
    x, y = randn(r, 6, 3), randn(r, 6, 1)
    check_function(dict_mlp, [(params, x, y)], argnums=0, mode=mode)
    if mode.functional:
        tp = tensors(tg, params)
        value, grads = mode.value_and_grad(dict_mlp(tg))(tp, tg.tensor(x), tg.tensor(y))
        same_structure(grads, tp)
        want_grads, want_value = torch.func.grad_and_value(dict_mlp(torch))(
            tensors(torch, params), torch.tensor(x), torch.tensor(y))
        assert_close(value, want_value, path="value")
        assert_close(grads, want_grads, path="grads")


# ---- 3. nested structures: ((W1, b1), (W2, b2)) and {"layers": [...], "scale": s} ----------------------
def nested_mlp(lib):
    def loss(layers, x, y):
        h = x
        for i, (W, b) in enumerate(layers):
            h = h @ W + b
            if i < len(layers) - 1:
                h = h.relu()
        return ((h - y) ** 2).mean()

    return loss


def dict_of_lists(lib):
    def loss(model, x, y):
        h = x
        for W, b in model["layers"]:
            h = (h @ W + b).tanh()
        return ((model["scale"] * h - y) ** 2).mean()

    return loss


@modes()
def test_nested_tuples_argument(mode):
    r = rng(53)
    layers = ((randn(r, 3, 5), randn(r, 5)), (randn(r, 5, 2), randn(r, 2)))
    x, y = randn(r, 7, 3), randn(r, 7, 2)
    check_function(nested_mlp, [(layers, x, y)], argnums=0, mode=mode)


@modes()
def test_dict_of_lists_argument(mode):
    r = rng(54)
    model = {"layers": [(randn(r, 3, 3), randn(r, 3)), (randn(r, 3, 2), randn(r, 2))], "scale": np.array(2.0, np.float32)}
    x, y = randn(r, 5, 3), randn(r, 5, 2)
    check_function(dict_of_lists, [(model, x, y)], argnums=0, mode=mode)


# ---- 4. argnums counting positional arguments; ints, floats and strings not differentiated ------------------
def activation_net(lib):
    def f(x, activation, w, n_layers, scale):
        h = x
        for _ in range(n_layers):
            h = h @ w
            h = h.tanh() if activation == "tanh" else h.sigmoid()
        return (h * scale).sum()

    return f


@modes()
def test_argnums_with_strings_and_ints(mode):
    r = rng(55)
    x, w = randn(r, 4, 3), randn(r, 3, 3)
    calls = [(x, "tanh", w, 2, 0.5), (x, "sigmoid", w, 3, 0.5)]
    check_function(activation_net, calls, argnums=(0, 2), mode=mode)
    check_function(activation_net, calls[:1], argnums=2, mode=mode)


def cube_sum(x, n):
    return (x ** n).sum()


@modes()
def test_varargs_lambda_with_an_int(mode):
    # the spelling: tg.grad(lambda *a: f(*a), argnums=(0,))(x, 3)
    x = np.array([1.0, -2.0, 0.5], np.float32)
    check_function(lambda lib: (lambda *a: cube_sum(*a)), [(x, 3), (x, 2)], argnums=(0,), mode=mode)
    if mode.functional:
        (g,) = mode.grad(lambda *a: cube_sum(*a), argnums=(0,))(tg.tensor(x), 3)
        np.testing.assert_allclose(to_np(g), 3 * x ** 2, rtol=1e-6)


# ---- 5. a compiled function with structured arguments, passed to tg.grad ----------------------------------
@modes(eager="this program is about passing a tg.compile'd function to tg.grad",
       compile_numpy="this program is about passing a tg.compile'd function to tg.grad (grad-numpy runs it)",
       compile_jax="this program is about passing a tg.compile'd function to tg.grad (grad-jax runs it)")
def test_grad_of_a_compiled_function_with_structured_arguments(mode):
    r = rng(56)
    params = {"layers": [(randn(r, 3, 3), randn(r, 3)), (randn(r, 3, 2), randn(r, 2))], "scale": np.array(1.5, np.float32)}
    x, y = randn(r, 5, 3), randn(r, 5, 2)
    compiled = tg.compile(dict_of_lists(tg), backend=mode.backend)
    tp = tensors(tg, params)
    grads = tg.grad(compiled)(tp, tg.tensor(x), tg.tensor(y))
    same_structure(grads, tp)
    want = torch.func.grad(dict_of_lists(torch))(tensors(torch, params), torch.tensor(x), torch.tensor(y))
    assert_close(grads, want, path="grads")
    value, grads = tg.value_and_grad(compiled, argnums=(0, 2))(tp, tg.tensor(x), tg.tensor(y))
    want_grads, want_value = torch.func.grad_and_value(dict_of_lists(torch), argnums=(0, 2))(
        tensors(torch, params), torch.tensor(x), torch.tensor(y))
    assert_close(value, want_value, path="value")
    assert_close(grads, want_grads, path="grads argnums=(0, 2)")


# ---- 6. a compiled model returning (loss, metrics dict); `.backward()` on the loss -------------------------
def loss_and_metrics(lib):
    def step(params, x, labels):
        logits = x @ params["W"] + params["b"]
        logp = logits.log_softmax(dim=1)
        loss = -logp[lib.arange(len(labels)), labels].mean()
        return loss, {"logits": logits, "confidence": logp.exp().max(dim=1)[0].mean()}

    return step


def train_with_metrics(mode, steps=3, lr=0.5):
    lib = mode.lib
    r = rng(57)
    x, labels = lib.tensor(randn(r, 8, 3)), lib.tensor(r.integers(0, 4, size=8).astype(np.int64))
    params = tensors(lib, {"W": randn(r, 3, 4), "b": np.zeros(4, np.float32)}, requires_grad=True)
    step = mode.compile(loss_and_metrics(lib))
    history = []
    for _ in range(steps):
        loss, metrics = step(params, x, labels)
        loss.backward()
        with lib.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad.zero_()
        history.append((loss.item(), metrics["confidence"].item(), metrics["logits"]))
    return history, params


@modes(grad_numpy="tg.grad needs a scalar-valued function; this program returns (loss, metrics) and "
                  "calls loss.backward() (API.md has no has_aux)",
       grad_jax="tg.grad needs a scalar-valued function; this program returns (loss, metrics)")
def test_compiled_step_returning_loss_and_metrics(mode):
    want_history, want_params = train_with_metrics(TORCH)
    got_history, got_params = train_with_metrics(mode)
    for k, (got, want) in enumerate(zip(got_history, want_history)):
        assert_close(list(got), list(want), path=f"step {k}: loss, confidence, logits")
    assert_close(got_params, want_params, path="params")

"""Closures and module globals: losses that read weights, data and Python settings from module
globals or from a closure, with the names rebound (or the tensors updated) between steps.

The globals are real module globals of this file, rebound with `global`, and reset around
every test. A compiled function must read captured tensors at every call (their values and
their gradients) and re-check the plain Python values it read (API.md, README).
"""
import numpy as np
import pytest

from harness import TORCH, assert_close, modes, randn, rng, same_structure, tensors

W = b = None  # the model of programs 1 and 2
XB = YB = None  # the current minibatch of program 5
L2 = 0.0  # a Python float the losses read (a regularisation schedule)


@pytest.fixture(autouse=True)
def reset_globals():
    global W, b, XB, YB, L2
    W = b = XB = YB = None
    L2 = 0.0
    yield
    W = b = XB = YB = None
    L2 = 0.0


def regression_data(seed, n=12, d=3):
    r = rng(seed)
    x = randn(r, n, d)
    y = x @ randn(r, d, 1) + 0.1 * randn(r, n, 1)
    return x, y, randn(r, d, 1, scale=0.1), np.zeros(1, np.float32)


# ---- 1. weights in module globals, rebound every step --------------------------------------------------
def global_loss(x, y):
    return ((x @ W + b - y) ** 2).mean()


GRAD_MODES_NEED_ARGUMENTS = (
    "tg.grad differentiates a function's arguments; weights read from globals or a closure are "
    "constants to it, so this training program has no grad-mode spelling (programs 4-6 run tg.grad "
    "with captured data and captured weights)")


def train_global_rebound(mode, steps=4, lr=0.1):
    global W, b
    lib = mode.lib
    x, y, W0, b0 = regression_data(11)
    x, y = lib.tensor(x), lib.tensor(y)
    W, b = lib.tensor(W0, requires_grad=True), lib.tensor(b0, requires_grad=True)
    loss_fn = mode.compile(global_loss)
    losses, snapshots = [], []
    for _ in range(steps):
        loss = loss_fn(x, y)
        loss.backward()
        snapshots.append(W)  # keeps every step's weights alive (for plotting later)
        W = (W - lr * W.grad).detach().requires_grad_()
        b = (b - lr * b.grad).detach().requires_grad_()
        losses.append(loss.item())
    return losses, [W, b]


@modes(grad_numpy=GRAD_MODES_NEED_ARGUMENTS, grad_jax=GRAD_MODES_NEED_ARGUMENTS)
def test_global_weights_rebound_each_step(mode):
    want_losses, want_params = train_global_rebound(TORCH)
    got_losses, got_params = train_global_rebound(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="W, b")


# ---- 2. weights in module globals updated in place, a global Python float as the L2 schedule ---------
def global_l2_loss(x, y):
    return ((x @ W + b - y) ** 2).mean() + L2 * (W ** 2).sum()


def train_global_inplace(mode, steps=5, lr=0.1):
    global W, b, L2
    lib = mode.lib
    x, y, W0, b0 = regression_data(12)
    x, y = lib.tensor(x), lib.tensor(y)
    W, b = lib.tensor(W0, requires_grad=True), lib.tensor(b0, requires_grad=True)
    loss_fn = mode.compile(global_l2_loss)
    losses = []
    for step in range(steps):
        L2 = 0.0 if step < 2 else 0.5  # regularisation switched on after two steps
        loss = loss_fn(x, y)
        loss.backward()
        with lib.no_grad():
            W -= lr * W.grad
            b -= lr * b.grad
        W.grad.zero_()
        b.grad.zero_()
        losses.append(loss.item())
    return losses, [W, b]


@modes(grad_numpy=GRAD_MODES_NEED_ARGUMENTS, grad_jax=GRAD_MODES_NEED_ARGUMENTS)
def test_global_weights_updated_in_place_and_global_schedule(mode):
    want_losses, want_params = train_global_inplace(TORCH)
    got_losses, got_params = train_global_inplace(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="W, b")


# ---- 3. a list of weights captured by a closure (a hand-written model) ----------------------------------
def make_model(params):
    def predict(x):
        h = x
        for layer in params[:-1]:
            h = (h @ layer).tanh()
        return h @ params[-1]

    return predict


def train_closure_list(mode, replace, steps=4, lr=0.2):
    lib = mode.lib
    r = rng(13)
    x, y = lib.tensor(randn(r, 10, 3)), lib.tensor(randn(r, 10, 1))
    params = tensors(lib, [randn(r, 3, 4), randn(r, 4, 4, scale=0.5), randn(r, 4, 1)], requires_grad=True)
    predict = make_model(params)

    def loss_fn(x, y):
        return ((predict(x) - y) ** 2).mean()

    loss_fn = mode.compile(loss_fn)
    losses, history = [], []
    for _ in range(steps):
        loss = loss_fn(x, y)
        loss.backward()
        if replace:  # new tensors put into the captured list; the old ones kept in a history
            history.append(list(params))
            for i, p in enumerate(params):
                params[i] = (p - lr * p.grad).detach().requires_grad_()
        else:  # the same tensors, updated in place
            for p in params:
                p.data -= lr * p.grad
                p.grad = None
        losses.append(loss.item())
    return losses, params


@pytest.mark.parametrize("replace", [False, True], ids=["in-place", "replaced"])
@modes(grad_numpy=GRAD_MODES_NEED_ARGUMENTS, grad_jax=GRAD_MODES_NEED_ARGUMENTS)
def test_closure_over_a_list_of_weights(mode, replace):
    want_losses, want_params = train_closure_list(TORCH, replace)
    got_losses, got_params = train_closure_list(mode, replace)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 4. the current minibatch in a closure (nonlocal), parameters as the argument -------------------
def make_trainer(lib, X, Y):
    xb = yb = None

    def next_batch(i):
        nonlocal xb, yb
        xb, yb = lib.tensor(X[i:i + 4]), lib.tensor(Y[i:i + 4])

    def loss(params):
        W, b = params
        return ((xb @ W + b - yb) ** 2).mean()

    return next_batch, loss


def train_closure_batches(mode, epochs=2, lr=0.1):
    lib = mode.lib
    X, Y, W0, b0 = regression_data(14, n=12)
    next_batch, loss = make_trainer(lib, X, Y)
    losses = []
    if mode.functional:
        params = tensors(lib, [W0, b0])
        step = mode.value_and_grad(loss)
        for _ in range(epochs):
            for i in range(0, 12, 4):
                next_batch(i)
                value, grads = step(params)
                same_structure(grads, params)
                params = [p - lr * g for p, g in zip(params, grads)]
                losses.append(value.item())
    else:
        params = tensors(lib, [W0, b0], requires_grad=True)
        loss_fn = mode.compile(loss)
        for _ in range(epochs):
            for i in range(0, 12, 4):
                next_batch(i)
                value = loss_fn(params)
                value.backward()
                with lib.no_grad():
                    for p in params:
                        p -= lr * p.grad
                        p.grad.zero_()
                losses.append(value.item())
    return losses, params


@modes()
def test_minibatches_from_a_closure(mode):
    want_losses, want_params = train_closure_batches(TORCH)
    got_losses, got_params = train_closure_batches(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 5. the current minibatch in module globals (`global XB, YB`), a global L2 schedule -------------
def global_batch_loss(params):
    W, b = params
    return ((XB @ W + b - YB) ** 2).mean() + L2 * (W ** 2).sum()


def train_global_batches(mode, epochs=2, lr=0.1):
    global XB, YB, L2
    lib = mode.lib
    X, Y, W0, b0 = regression_data(15, n=12)
    losses = []
    if mode.functional:
        params = tensors(lib, [W0, b0])
        step = mode.value_and_grad(global_batch_loss)
    else:
        params = tensors(lib, [W0, b0], requires_grad=True)
        loss_fn = mode.compile(global_batch_loss)
    for epoch in range(epochs):
        L2 = 0.01 * epoch
        for i in range(0, 12, 4):
            XB, YB = lib.tensor(X[i:i + 4]), lib.tensor(Y[i:i + 4])
            if mode.functional:
                value, grads = step(params)
                same_structure(grads, params)
                params = [p - lr * g for p, g in zip(params, grads)]
            else:
                value = loss_fn(params)
                value.backward()
                with lib.no_grad():
                    for p in params:
                        p -= lr * p.grad
                        p.grad = None
            losses.append(value.item())
    return losses, params


@modes()
def test_minibatches_from_module_globals(mode):
    want_losses, want_params = train_global_batches(TORCH)
    got_losses, got_params = train_global_batches(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 6. adversarial examples (FGSM) against a model whose weights a closure holds ---------------------
def make_classifier(lib, W0):
    weights = lib.tensor(W0)

    def load(new):  # "load a checkpoint": rebinds the captured name
        nonlocal weights
        weights = lib.tensor(new)

    def loss(x, labels):
        logp = (x @ weights).log_softmax(dim=1)
        return -logp[lib.arange(len(labels)), labels].sum()

    return load, loss


def fgsm(mode, eps=0.1):
    lib = mode.lib
    r = rng(16)
    checkpoints = [randn(r, 4, 3) for _ in range(3)]
    x0, labels = randn(r, 5, 4), lib.tensor(r.integers(0, 3, size=5).astype(np.int64))
    load, loss = make_classifier(lib, checkpoints[0])
    if mode.functional:
        input_grad = mode.grad(loss)
    else:
        loss_fn = mode.compile(loss)
    out = []
    for ckpt in checkpoints:
        load(ckpt)
        if mode.functional:
            gx = input_grad(lib.tensor(x0), labels)
        else:
            x = lib.tensor(x0, requires_grad=True)
            loss_fn(x, labels).backward()
            gx = x.grad
        x_adv = lib.tensor(x0) + eps * gx.sign()
        out.append((gx, loss(x_adv, labels)))
    return out


@modes()
def test_fgsm_against_checkpoints_held_in_a_closure(mode):
    want = fgsm(TORCH)
    got = fgsm(mode)
    for k, ((gx, adv), (want_gx, want_adv)) in enumerate(zip(got, want)):
        assert_close(gx, want_gx, path=f"checkpoint {k}: input gradient")
        assert_close(adv, want_adv, path=f"checkpoint {k}: adversarial loss")

"""In-place idioms from everyday PyTorch code: item assignment into non-leaf tensors and fresh
buffers, `+=` / `mul_` / `clamp_` on intermediate results, gradient accumulation with in-place
updates of `.grad`, and PyTorch's saved-value check (an error exactly when PyTorch raises one).
Inside compiled functions in-place operations become pure operations (README); the numbers
must still be PyTorch's."""
import numpy as np
import pytest
import torch

import transgrad as tg
from harness import (
    TORCH, assert_close, check_function, check_training, modes, randn, rng, same_structure, tensors, to_np,
)


# ---- 1. `y[:, 0] += prior` on a non-leaf (a prior added to the first class's score) ---------------------
def prior_logits(lib):
    def loss(W, x, labels):
        scores = x @ W
        scores[:, 0] += 1.0
        logp = scores.log_softmax(dim=1)
        return -logp[lib.arange(len(labels)), labels].mean()

    return loss


@modes()
def test_augmented_item_assignment_on_scores(mode):
    r = rng(31)
    W, x = randn(r, 4, 3), randn(r, 6, 4)
    labels = r.integers(0, 3, size=6).astype(np.int64)
    check_function(prior_logits, [(W, x, labels), (W * 2, x, labels)], argnums=0, mode=mode)


# ---- 2. `y[0] += 1` and `y[0:2] = y[0:2] * 3` (the spellings) -------------------------------------
def first_rows_scaled(lib):
    def f(x, w):
        y = x * w
        y[0] += 1
        y[0:2] = y[0:2] * 3
        return y.sin().sum()

    return f


@modes()
def test_item_and_slice_assignment(mode):
    r = rng(32)
    x, w = randn(r, 4, 3), randn(r, 3)
    check_function(first_rows_scaled, [(x, w), (x, -w)], argnums=(0, 1), mode=mode)


# ---- 3. a zero-padded buffer: `buf = zeros(5); buf[1:4] = x ** 2` ---------------------------------------
def padded(lib):
    def f(x, w):
        buf = lib.zeros(5)
        buf[1:4] = x ** 2
        return (buf * w).sum() + buf.max()

    return f


@modes()
def test_zero_padded_buffer(mode):
    x, w = np.array([0.5, -1.5, 2.0], np.float32), np.linspace(-1, 1, 5, dtype=np.float32)
    check_function(padded, [(x, w), (x * 0.5, w)], argnums=(0, 1), mode=mode)


# ---- 4. an in-place ReLU and scaling on a hidden layer: `h.clamp_(min=0); h.mul_(0.5)` ------------------
def inplace_relu_net(lib):
    def loss(W1, b1, W2, x, y):
        h = x @ W1 + b1
        h.clamp_(min=0)
        h.mul_(0.5)
        out = h @ W2
        return ((out - y) ** 2).mean()

    return loss


@modes()
def test_inplace_relu_hidden_layer(mode):
    r = rng(34)
    x, y = randn(r, 8, 3), randn(r, 8, 1)
    init = [randn(r, 3, 6), randn(r, 6, scale=0.1), randn(r, 6, 1)]
    check_training(inplace_relu_net, init, [x, y], steps=4, lr=0.1, mode=mode)


# ---- 5. a residual block written with `+=` on non-leaf tensors -------------------------------------------
def residual_net(lib):
    def loss(W, b, V, x, y):
        z = x @ W
        z += b
        z += x  # the skip connection
        a = z.tanh()
        return ((a @ V - y) ** 2).mean()

    return loss


@modes()
def test_residual_block_with_augmented_assignment(mode):
    r = rng(35)
    x, y = randn(r, 8, 4), randn(r, 8, 2)
    init = [randn(r, 4, 4, scale=0.5), np.zeros(4, np.float32), randn(r, 4, 2)]
    check_training(residual_net, init, [x, y], steps=4, lr=0.1, mode=mode)


# ---- 6. `z = y.exp(); y.add_(1)`: legal, exp saves its output --------------------------------------------
def exp_then_shift(lib):
    def f(x, w):
        y = x * w
        z = y.exp()
        y.add_(1)
        return (z * y).sum()

    return f


@modes()
def test_exp_then_modify_its_input(mode):
    r = rng(36)
    x, w = randn(r, 5, scale=0.5), randn(r, 5, scale=0.5)
    check_function(exp_then_shift, [(x, w)], argnums=(0, 1), mode=mode)


# ---- 7. a masked assignment: `y = x.clone(); y[y < 0] = 0` -------------------------------------------------
def masked_relu(lib):
    def f(x, w):
        y = x.clone()
        y[y < 0] = 0
        y[:, 1] *= 2
        return (y @ w).pow(2).mean()

    return f


@modes()
def test_masked_assignment(mode):
    r = rng(37)
    x, w = randn(r, 6, 3), randn(r, 3, 2)
    check_function(masked_relu, [(x, w), (-x, w)], argnums=(0, 1), mode=mode)


# ---- 8. gradient accumulation over micro-batches, in-place updates of `.grad` ---------------------------
def accum_loss(w, s, b, xb, yb):
    pred = s * (xb @ w) + b
    return ((pred - yb) ** 2).mean()


def train_accumulated(mode, steps=3, micro=3, lr=0.1):
    lib = mode.lib
    r = rng(38)
    X, Y = randn(r, 12, 3), randn(r, 12)
    init = [randn(r, 3), np.array(1.0, np.float32), np.zeros(1, np.float32)]
    batches = [(lib.tensor(X[i:i + 4]), lib.tensor(Y[i:i + 4])) for i in range(0, 12, 4)]
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(accum_loss, argnums=(0, 1, 2))
        for _ in range(steps):
            total = None
            for xb, yb in batches:
                value, grads = step(*params, xb, yb)
                total = list(grads) if total is None else [t + g for t, g in zip(total, grads)]
                losses.append(value.item())
            params = [p - lr * (t / micro) for p, t in zip(params, total)]
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(accum_loss)
        for _ in range(steps):
            for xb, yb in batches:
                value = loss_fn(*params, xb, yb)
                value.backward()  # gradients accumulate in .grad
                losses.append(value.item())
            for p in params:
                p.grad /= micro
                p.data.sub_(lr * p.grad)
                p.grad.data.zero_()
    return losses, params


@modes()
def test_gradient_accumulation(mode):
    want_losses, want_params = train_accumulated(TORCH)
    got_losses, got_params = train_accumulated(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 9. in-place edits of `.grad` between backward passes (a gradient that is a broadcast) -------------
def edit_gradients(mode):
    """Every in-place spelling users apply to `.grad`, after a backward whose gradient is a
    broadcast (`(w * 2).sum()`), and fresh gradients after `zero_()` / `.data.zero_()`."""
    lib = mode.lib
    w = lib.tensor(np.array([0.5, -1.0, 2.0], np.float32), requires_grad=True)
    x = lib.tensor(randn(rng(39), 4, 3))
    penalty = mode.compile(lambda w: (w * 2).sum())
    fit = mode.compile(lambda w, x: (x * w).sum())
    seen = []
    penalty(w).backward()
    seen.append(to_np(w.grad).copy())
    w.grad.mul_(0.5)
    w.grad += 1
    w.grad.add_(lib.tensor(np.array([0.0, 1.0, 2.0], np.float32)))
    w.grad.clamp_(max=2.5)
    seen.append(to_np(w.grad).copy())
    w.grad.zero_()
    seen.append(to_np(w.grad).copy())
    fit(w, x * 3).backward()
    seen.append(to_np(w.grad).copy())
    w.grad.data.zero_()
    penalty(w).backward()
    fit(w, x).backward()
    seen.append(to_np(w.grad).copy())
    w.grad.fill_(0.25)
    penalty(w).backward()
    seen.append(to_np(w.grad).copy())
    return seen


@modes(grad_numpy="no .grad to edit: tg.grad returns fresh gradients (program 8 and the training "
                  "programs cover its results)", grad_jax="no .grad to edit: tg.grad returns fresh gradients")
def test_inplace_edits_of_grad_between_passes(mode):
    want = edit_gradients(TORCH)
    got = edit_gradients(mode)
    assert_close(got, want, path="w.grad after each edit")


# ---- 10. PyTorch's saved-value check: raise exactly when PyTorch raises --------------------------------
SNIPPETS = {
    # name: (raises in PyTorch?, program)
    "sigmoid-output-mul_": (True, "y = x.sigmoid(); y.mul_(2); out = y.sum()"),
    "tanh-output-+=": (True, "y = x.tanh(); y += 1; out = (y * y).sum()"),
    "exp-output-add_": (True, "y = x.exp(); z = y * 2; y.add_(1); out = z.sum()"),
    "relu-output-setitem": (True, "y = x.relu(); y[0] = 0; out = y.sum()"),
    "mul-saved-input-mul_": (True, "w = x.clone(); s = (w * w).sum(); w.mul_(3); out = s"),
    "log-saved-input-clamp_": (True, "y = x + 1; z = y.log(); y.clamp_(max=2); out = z.sum()"),
    "exp-input-add_": (False, "y = x * 2; z = y.exp(); y.add_(1); out = z.sum()"),
    "pow-input-add_": (False, "y = x ** 2; y.add_(1); out = y.sum()"),
    "setitem-+=": (False, "y = x * 1.; y[0] += 1; out = (y ** 2).sum()"),
    "sin-output-mul_": (False, "y = x.sin(); y.mul_(2); out = y.sum()"),
    "slice-times-3": (False, "y = x * 1.; y[0:2] = y[0:2] * 3; out = (y ** 2).sum()"),
}


def run_snippet(lib, src, x0):
    x = lib.tensor(x0, requires_grad=True)
    env = {"x": x}
    exec(src, {}, env)
    env["out"].backward()
    return x.grad


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_saved_value_check_matches_pytorch(name):
    # eager only: inside tg.compile / tg.grad in-place operations become pure operations (README),
    # so there is no modified saved tensor to detect; the legal snippets run in every mode in
    # test_legal_inplace_snippets_in_every_mode below
    raises, src = SNIPPETS[name]
    x0 = np.array([0.5, 1.5, 0.25, 2.0], np.float32)
    if raises:
        with pytest.raises(RuntimeError):  # the oracle agrees that this program is an error
            run_snippet(torch, src, x0)
        with pytest.raises(RuntimeError):
            run_snippet(tg, src, x0)
    else:
        want = run_snippet(torch, src, x0)
        assert_close(run_snippet(tg, src, x0), want, path=name)


def snippet_function(src):
    def program(lib):
        def f(x):
            env = {"x": x}
            exec(src, {}, env)
            return env["out"]

        return f

    return program


# the other legal snippets run in every mode as programs 2 (`y[0] += 1`, `y[0:2] = y[0:2] * 3`) and 6
@pytest.mark.parametrize("name", ["pow-input-add_", "sin-output-mul_"])
@modes()
def test_legal_inplace_snippets_in_every_mode(mode, name):
    _, src = SNIPPETS[name]
    x0 = np.array([0.5, 1.5, 0.25, 2.0], np.float32)
    check_function(snippet_function(src), [(x0,)], argnums=0, mode=mode)


def test_structure_helper_sanity():
    # the harness's structure check accepts what it should (guards against a vacuous oracle)
    same_structure([torch.zeros(2), {"a": torch.zeros(())}], [torch.ones(2), {"a": torch.ones(())}])
    with pytest.raises(AssertionError):
        same_structure(torch.zeros(2), [torch.ones(2)])

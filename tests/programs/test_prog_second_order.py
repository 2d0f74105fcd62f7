"""Second-order programs: a gradient penalty (WGAN-GP style) with `autograd.grad(...,
create_graph=True)`, Hessian-vector products, Newton's method for a minimum with
`tg.grad(tg.grad(f))`, a MAML inner step and a physics-informed loss on du/dt.

Backward-style modes differentiate the (compiled) function's result with
`lib.autograd.grad(..., create_graph=True)`, as PyTorch users do; the grad modes spell the same
program by nesting `tg.grad` inside the function given to `tg.grad`. The oracle is PyTorch's
double backward on the same function, and closed forms where there is one.
"""
import numpy as np
import pytest
import torch

import transgrad as tg
from harness import TORCH, assert_close, modes, randn, rng, tensors, to_np


def critic(w, x):
    return (x @ w).tanh().sum()


# ---- 1. a gradient penalty, trained for a few steps ---------------------------------------------------
def penalty_training(mode, steps=3, lr=0.1, lam=0.5):
    lib = mode.lib
    r = rng(61)
    x0, w0 = randn(r, 4, 3), randn(r, 3, 2)
    x = lib.tensor(x0)
    history = []
    if mode.functional:
        def penalized(w, x):
            gx = tg.grad(critic, argnums=1)(w, x)
            return critic(w, x) + lam * (gx ** 2).sum()

        step = mode.value_and_grad(penalized)
        w = lib.tensor(w0)
        for _ in range(steps):
            value, gw = step(w, x)
            w = w - lr * gw
            history.append(value.item())
    else:
        f = mode.compile(critic)
        w = lib.tensor(w0, requires_grad=True)
        for _ in range(steps):
            xi = x.detach().requires_grad_()
            out = f(w, xi)
            (gx,) = lib.autograd.grad(out, xi, create_graph=True)
            loss = out + lam * (gx ** 2).sum()
            loss.backward()
            with lib.no_grad():
                w -= lr * w.grad
            w.grad = None
            history.append(loss.item())
    return history, w


@modes()
def test_gradient_penalty_training(mode):
    want_history, want_w = penalty_training(TORCH)
    got_history, got_w = penalty_training(mode)
    assert_close(got_history, want_history, path="losses")
    assert_close(got_w, want_w, path="w")


def test_gradient_penalty_issue_example():
    # the issue's example, against PyTorch: eager, compiled on NumPy and on JAX
    want = None
    for lib, wrap in ((torch, None), (tg, None), (tg, "numpy"), (tg, "jax")):
        f = (lambda w, x: (x * w).tanh().sum())
        c = tg.compile(f, backend=wrap) if wrap else f
        w = lib.tensor([.5, -1.], requires_grad=True)
        xi = lib.tensor([1., 2.], requires_grad=True)
        (gx,) = lib.autograd.grad(c(w, xi), xi, create_graph=True)
        (c(w, xi) + (gx ** 2).sum()).backward()
        if want is None:
            want = to_np(w.grad)
        else:
            assert_close(w.grad, want, path=f"w.grad ({'eager' if wrap is None else 'compiled ' + wrap})")


# ---- 2. Hessian-vector products -------------------------------------------------------------------------
def energy(x):
    return (x.sin() * x ** 2).sum() + (x[:-1] * x[1:]).sum()


def hvp(mode, x0, v0):
    lib = mode.lib
    v = lib.tensor(v0)
    if mode.functional:
        return mode.grad(lambda x, v: (tg.grad(energy)(x) * v).sum())(lib.tensor(x0), v)
    x = lib.tensor(x0, requires_grad=True)
    f = mode.compile(energy)
    (g,) = lib.autograd.grad(f(x), x, create_graph=True)
    (hv,) = lib.autograd.grad((g * v).sum(), x)
    return hv


@modes()
def test_hessian_vector_products(mode):
    r = rng(62)
    for _ in range(2):
        x0, v0 = randn(r, 4), randn(r, 4)
        want = hvp(TORCH, x0, v0)
        # closed form: d2/dx2 (sin x * x^2) = (2 - x^2) sin x + 4 x cos x on the diagonal, 1 off it
        x = x0.astype(np.float64)
        H = np.diag((2 - x ** 2) * np.sin(x) + 4 * x * np.cos(x)) + np.eye(4, k=1) + np.eye(4, k=-1)
        np.testing.assert_allclose(to_np(want), H @ v0, rtol=1e-4, atol=1e-5)
        assert_close(hvp(mode, x0, v0), want, path="Hv")


# ---- 3. Newton's method for a minimum with first and second derivatives --------------------------------
def quartic(x):
    return x ** 4 - 3 * x ** 2 + x


def newton_minimize(mode, x0, iters=5):
    lib = mode.lib
    xs = []
    if mode.functional:
        d = mode.grad(quartic)
        dd = mode.grad(lambda x: tg.grad(quartic)(x))
        x = lib.tensor(x0)
        for _ in range(iters):
            x = x - d(x) / dd(x)
            xs.append(x.item())
        return xs
    f = mode.compile(quartic)
    x = lib.tensor(x0)
    for _ in range(iters):
        x = x.detach().requires_grad_()
        (g,) = lib.autograd.grad(f(x), x, create_graph=True)
        (h,) = lib.autograd.grad(g, x)
        with lib.no_grad():
            x = x - g / h
        xs.append(x.item())
    return xs


@modes()
def test_newton_minimisation_with_second_derivatives(mode):
    for x0 in (np.array(2.0, np.float32), np.array(-1.5, np.float32)):
        want = newton_minimize(TORCH, x0)
        # closed form: f' = 4x^3 - 6x + 1, f'' = 12x^2 - 6
        x, closed = float(x0), []
        for _ in range(5):
            x = x - (4 * x ** 3 - 6 * x + 1) / (12 * x ** 2 - 6)
            closed.append(x)
        np.testing.assert_allclose(want, closed, rtol=1e-5)
        assert_close(newton_minimize(mode, x0), want, rtol=1e-5, atol=1e-6, path="iterates")


# ---- 4. MAML: one inner SGD step, the meta-gradient through it ---------------------------------------
def task_loss(w, x, y):
    return ((x @ w).tanh() - y).pow(2).mean()


def maml(mode, alpha=0.5, steps=2, beta=0.2):
    lib = mode.lib
    r = rng(64)
    xa, ya, xb, yb = (lib.tensor(a) for a in (randn(r, 6, 3), randn(r, 6, 1), randn(r, 6, 3), randn(r, 6, 1)))
    w0 = randn(r, 3, 1)
    history = []
    if mode.functional:
        def meta(w, xa, ya, xb, yb):
            adapted = w - alpha * tg.grad(task_loss)(w, xa, ya)
            return task_loss(adapted, xb, yb)

        step = mode.value_and_grad(meta)
        w = lib.tensor(w0)
        for _ in range(steps):
            value, g = step(w, xa, ya, xb, yb)
            w = w - beta * g
            history.append(value.item())
        return history, w
    inner = mode.compile(task_loss)
    w = lib.tensor(w0, requires_grad=True)
    for _ in range(steps):
        (g,) = lib.autograd.grad(inner(w, xa, ya), w, create_graph=True)
        adapted = w - alpha * g
        outer = inner(adapted, xb, yb)
        outer.backward()
        with lib.no_grad():
            w -= beta * w.grad
        w.grad.zero_()
        history.append(outer.item())
    return history, w


@modes()
def test_maml_meta_gradient(mode):
    want_history, want_w = maml(TORCH)
    got_history, got_w = maml(mode)
    assert_close(got_history, want_history, path="outer losses")
    assert_close(got_w, want_w, path="w")


# ---- 5. a physics-informed loss: fit u(t) to u' = -u through du/dt ----------------------------------------
def net(params, t):
    W1, b1, W2 = params
    return (t @ W1 + b1).tanh() @ W2


def pinn(mode, steps=3, lr=0.05):
    lib = mode.lib
    r = rng(65)
    t0 = np.linspace(0, 1, 6, dtype=np.float32).reshape(6, 1)
    init = [randn(r, 1, 5), randn(r, 5), randn(r, 5, 1)]
    history = []
    if mode.functional:
        def residual(params, t):
            du = tg.grad(lambda t: net(params, t).sum())(t)
            u = net(params, t)
            return ((du + u) ** 2).mean() + (net(params, t[:1]) - 1.0).pow(2).sum()

        step = mode.value_and_grad(residual)
        params = tensors(lib, init)
        t = lib.tensor(t0)
        for _ in range(steps):
            value, grads = step(params, t)
            params = [p - lr * g for p, g in zip(params, grads)]
            history.append(value.item())
        return history, params
    u_of = mode.compile(net)
    params = tensors(lib, init, requires_grad=True)
    for _ in range(steps):
        t = lib.tensor(t0, requires_grad=True)
        u = u_of(params, t)
        (du,) = lib.autograd.grad(u.sum(), t, create_graph=True)
        loss = ((du + u) ** 2).mean() + (u[:1] - 1.0).pow(2).sum()
        loss.backward()
        with lib.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
        history.append(loss.item())
    return history, params


@modes()
def test_physics_informed_loss(mode):
    want_history, want_params = pinn(TORCH)
    got_history, got_params = pinn(mode)
    assert_close(got_history, want_history, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 7. a scale taken without gradient (no_grad, .detach()) inside a twice-differentiated function --------
def scaled_energy(lib, how):
    def energy(x):
        y = x * 2
        if how == "no_grad":
            with lib.no_grad():
                s = y.abs().max()
        else:
            s = y.detach().abs().max()
        return (y * y / s).sum()

    return energy


def gradient_norm_gradient(mode, how, x0):
    energy = scaled_energy(mode.lib, how)
    if mode.functional:
        return to_np(mode.grad(lambda x: (tg.grad(energy)(x) ** 2).sum())(tg.tensor(x0)))
    f = mode.compile(energy)
    x = mode.lib.tensor(x0, requires_grad=True)
    (g,) = mode.lib.autograd.grad(f(x), x, create_graph=True)
    (g * g).sum().backward()
    return to_np(x.grad)


@modes()
def test_second_order_through_a_scale_taken_without_gradient(mode):
    x0 = np.array([1.0, -2.0, 3.0], np.float32)
    # closed form: s = max|2x| = 6 is a constant, energy = 4 x.x / 6, g = 4x/3, d/dx (g.g) = 32x/9
    for how in ("no_grad", "detach"):
        want = gradient_norm_gradient(TORCH, how, x0)
        np.testing.assert_allclose(want, 32 * x0 / 9, rtol=1e-6)
        assert_close(gradient_norm_gradient(mode, how, x0), want, path=how)


@modes()
def test_second_order_through_a_detached_factor_raises_or_agrees(mode):
    # energy = sum(x.detach() * x * x): its backward reads x.detach(), which a compiled trace holds as x
    # itself; compiled code says so rather than differentiate through it (d/dx g.g would be 1.5x too big)
    def energy(x):
        return (x.detach() * x * x).sum()

    x0 = np.array([1.0, -2.0, 3.0], np.float32)

    def second(m, lib):
        if m.functional:
            return to_np(m.grad(lambda x: (tg.grad(energy)(x) ** 2).sum())(tg.tensor(x0)))
        x = lib.tensor(x0, requires_grad=True)
        (g,) = lib.autograd.grad(m.compile(energy)(x), x, create_graph=True)
        (g * g).sum().backward()
        return to_np(x.grad)

    want = second(TORCH, torch)
    np.testing.assert_allclose(want, 8 * x0 ** 3, rtol=1e-6)  # g = 2 x^2 (x detached once), d/dx g.g = 8 x^3
    if mode.kind == "compile":
        with pytest.raises(RuntimeError, match=r"create_graph=True through a call of compiled energy, whose "
                                               r"backward reads a value it took without gradient"):
            second(mode, tg)
    else:
        assert_close(second(mode, tg), want)


# ---- 8. an in-place scale by a weight inside a twice-differentiated function ----------------------------
def gated(x, w):
    h = x.clone()
    h.mul_(w)  # the rule of mul_ reads h's old value: its history must reach x for the second derivative
    return (h * h).sum()


@modes()
def test_second_order_through_an_inplace_multiply(mode):
    x0, w0 = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    if mode.functional:
        both = mode.grad(lambda x, w: sum(t.sum() for t in tg.grad(gated, argnums=(0, 1))(x, w)), argnums=(0, 1))
        got = to_np(both(tg.tensor(x0), tg.tensor(w0)))
    else:
        f = mode.compile(gated)
        x, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
        gx, gw = tg.autograd.grad(f(x, w), [x, w], create_graph=True)
        (gx.sum() + gw.sum()).backward()
        got = to_np((x.grad, w.grad))
    # closed form: gx = 2 x w^2, gw = 2 x^2 w; d/dx (gx + gw) = 2 w^2 + 4 x w, d/dw = 4 x w + 2 x^2
    want = (2 * w0 ** 2 + 4 * x0 * w0, 4 * x0 * w0 + 2 * x0 ** 2)
    assert_close(got, want, path="second derivatives")
    x, w = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    gx, gw = torch.autograd.grad(gated(x, w), [x, w], create_graph=True)
    (gx.sum() + gw.sum()).backward()
    assert_close(to_np((x.grad, w.grad)), want, path="PyTorch")

"""Programs whose data sit on the edge points of a rule: polynomial features evaluated at
x = 0 (`x ** 0`, whose rule would read 0 ** -1) and features standardised by a column that
does not vary (`std` of a constant is 0). PyTorch gives finite gradients there; so must every
mode, and the second derivative through them."""
import numpy as np
import torch

import transgrad as tg
from harness import TORCH, assert_close, check_function, modes, randn, rng, to_np


# ---- 1. polynomial regression with the powers written out; x = 0 is a sample -------------------------
def polynomial_fit(lib):
    def loss(c, x, y):
        pred = sum(c[i] * x ** i for i in range(4))  # x ** 0 is the bias column
        return ((pred - y) ** 2).mean()

    return loss


@modes()
def test_polynomial_features_at_zero(mode):
    r = rng(91)
    c = randn(r, 4)
    calls = [(c, np.array([0.0, 0.5, -1.0, 2.0], np.float32), randn(r, 4)),
             (c, np.array([1.5, 0.0, 0.0, -0.5], np.float32), randn(r, 4))]
    check_function(polynomial_fit, calls, argnums=(0, 1), mode=mode)


def test_polynomial_gradient_at_zero_closed_form():
    # d/dx sum_i c_i x^i = sum_{i>=1} i c_i x^(i-1): at x = 0 it is c_1, finite
    c = tg.tensor([0.3, -1.2, 0.7, 2.0])
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    sum(c[i] * x ** i for i in range(4)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.2, -1.2 + 1.4 + 6.0], rtol=1e-6)


# ---- 2. standardised features, one of them constant (a bias-like column) -----------------------------
def standardised_regression(lib):
    def loss(w, X, y):
        Z = (X - X.mean(0)) / (X.std(0) + 1e-3)  # the constant column has std 0
        return ((Z @ w - y) ** 2).mean() + 0.1 * X.std()

    return loss


@modes()
def test_standardised_features_with_a_constant_column(mode):
    r = rng(92)
    X = randn(r, 6, 3)
    X[:, 1] = 2.0  # constant
    calls = [(randn(r, 3), X, randn(r, 6)), (randn(r, 3), X * 0.5, randn(r, 6))]
    check_function(standardised_regression, calls, argnums=(0, 1), mode=mode)


# ---- 3. the second derivative through both --------------------------------------------------------------
def curvature(mode, x0):
    lib = mode.lib

    def energy(x):
        return (x ** 0 * 3 + x ** 1 + x ** 3).sum() + x.reshape(2, 2).std(0).sum()

    if mode.functional:
        return to_np(mode.grad(lambda x: tg.grad(energy)(x).sum())(lib.tensor(x0)))
    f = mode.compile(energy)
    x = lib.tensor(x0, requires_grad=True)
    (g,) = lib.autograd.grad(f(x), x, create_graph=True)
    g.sum().backward()
    return to_np(x.grad)


@modes()
def test_second_derivative_through_edge_points(mode):
    x0 = np.array([0.0, 0.0, 1.0, 0.0], np.float32)  # column 0 of x.reshape(2, 2) is constant
    want = curvature(TORCH, x0)
    assert np.isfinite(want).all()
    assert_close(curvature(mode, x0), want, path="d/dx sum(d energy/dx)")


def test_x_to_the_zero_has_gradient_zero_as_in_pytorch():
    for lib in (torch, tg):
        x = lib.tensor([0.0, 2.0], requires_grad=True)
        (x ** 0).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])

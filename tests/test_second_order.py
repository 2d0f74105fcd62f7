"""Differentiating gradients that went through compiled functions (create_graph=True,
Hessian-vector products, nested tg.grad), on both backends, against PyTorch."""
import numpy as np
import pytest
import torch

import transgrad as tg

BACKENDS = ["numpy", "jax"]


def net(w, x):
    return (x * w).tanh().sum() + (w * w * x).sin().sum()


def arrays():
    rng = np.random.default_rng(0)
    return rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_penalty_through_a_compiled_function(backend):
    w0, x0 = arrays()
    c = tg.compile(net, backend=backend)
    w, x = tg.tensor(w0, requires_grad=True), tg.tensor(x0, requires_grad=True)
    (gx,) = tg.autograd.grad(c(w, x), x, create_graph=True)
    (c(w, x) + (gx ** 2).sum()).backward()

    wt, xt = torch.tensor(w0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    (gxt,) = torch.autograd.grad(net(wt, xt), xt, create_graph=True)
    (net(wt, xt) + (gxt ** 2).sum()).backward()
    np.testing.assert_allclose(np.asarray(gx.detach().array), gxt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_the_issue_example():
    c = tg.compile(lambda w, x: (x * w).tanh().sum())
    w = tg.tensor([.5, -1.], requires_grad=True)
    xi = tg.tensor([1., 2.], requires_grad=True)
    (gx,) = tg.autograd.grad(c(w, xi), xi, create_graph=True)
    (c(w, xi) + (gx ** 2).sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.1191, 0.1698], atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_vector_product(backend):
    w0, x0 = arrays()
    v0 = np.array([1.0, -2.0, 0.5], np.float32)
    c = tg.compile(net, backend=backend)
    w = tg.tensor(w0, requires_grad=True)
    (g,) = tg.autograd.grad(c(w, tg.tensor(x0)), w, create_graph=True)
    (hv,) = tg.autograd.grad(g, w, grad_outputs=tg.tensor(v0))
    _, hvt = torch.autograd.functional.hvp(lambda w: net(w, torch.tensor(x0)), torch.tensor(w0), torch.tensor(v0))
    np.testing.assert_allclose(np.asarray(hv.array), hvt.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_with_create_graph_then_backward_of_the_gradient(backend):
    c = tg.compile(lambda x: (x ** 4).sum(), backend=backend)
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    c(x).backward(create_graph=True)  # x.grad = 4 x^3, differentiable
    g = x.grad
    x.grad = None
    g.sum().backward()  # d/dx sum(4 x^3) = 12 x^2
    np.testing.assert_allclose(x.grad.numpy(), [12.0, 48.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_grad_of_a_compiled_function(backend):
    c = tg.compile(lambda x: (x.sin() * x).sum(), backend=backend)
    d2 = tg.grad(lambda x: tg.grad(c)(x).sum(), backend=backend)
    x0 = np.array([0.3, 1.2], np.float32)
    # d/dx (sin x * x) = cos x * x + sin x; again: -sin x * x + 2 cos x
    np.testing.assert_allclose(d2(tg.tensor(x0)).numpy(), -np.sin(x0) * x0 + 2 * np.cos(x0), rtol=1e-5)


def test_third_derivative_through_a_compiled_function():
    c = tg.compile(lambda x: (x ** 4).sum())
    x = tg.tensor([1.5], requires_grad=True)
    (g1,) = tg.autograd.grad(c(x), x, create_graph=True)
    (g2,) = tg.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = tg.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), [24 * 1.5])

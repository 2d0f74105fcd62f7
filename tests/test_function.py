"""Custom `tg.autograd.Function`s as the PyTorch tutorials write them, eagerly, inside
`tg.compile` and under `tg.grad`, on both backends; PyTorch runs the same classes."""
import numpy as np
import pytest
import torch

import transgrad as tg
from transgrad.trace import TraceError

MODES = ["eager", "compile-numpy", "compile-jax", "grad-numpy", "grad-jax"]


def make_relu(lib):
    class MyReLU(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    return MyReLU


def make_legendre(lib):
    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    return LegendrePolynomial3


def make_scaled_exp(lib):
    """Saves its output, keeps a tensor on ctx, takes a non-tensor argument."""
    class ScaledExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            out = (x * scale).exp()
            ctx.save_for_backward(out)
            ctx.scale = scale
            ctx.mask = x > 0
            return out

        @staticmethod
        def backward(ctx, g):
            out, = ctx.saved_tensors
            return g * out * ctx.scale * (ctx.mask.float() + 1), None

    return ScaledExp


def relu_net(lib, Fn, x, w):
    return (Fn.apply(x * w - 0.3) * w).sum()


def legendre_net(lib, Fn, x, w):
    return ((Fn.apply(x * w) - x) ** 2).mean()


def exp_net(lib, Fn, x, w):
    return Fn.apply(x * w, 0.5).sum()


CASES = [(make_relu, relu_net), (make_legendre, legendre_net), (make_scaled_exp, exp_net)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make,net", CASES, ids=["MyReLU", "Legendre", "ScaledExp"])
def test_custom_function_gradients(make, net, mode):
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    TFn = make(torch)
    wt = torch.tensor(w0, requires_grad=True)
    value_t = net(torch, TFn, torch.tensor(x0), wt)
    value_t.backward()
    Fn = make(tg)
    loss = lambda x, w: net(tg, Fn, x, w)  # noqa: E731
    if mode == "eager":
        w = tg.tensor(w0, requires_grad=True)
        value = loss(tg.tensor(x0), w)
        value.backward()
        g = w.grad
    elif mode.startswith("compile"):
        f = tg.compile(loss, backend=mode.split("-")[1])
        for _ in range(2):  # the second call runs the cached trace
            w = tg.tensor(w0, requires_grad=True)
            value = f(tg.tensor(x0), w)
            value.backward()
        g = w.grad
    else:
        value, g = tg.value_and_grad(loss, argnums=1, backend=mode.split("-")[1])(x0, w0)
    np.testing.assert_allclose(np.asarray(value.detach().array), value_t.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(g.array), wt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_backward_that_needs_values_says_so():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g[x > 0] * 2  # a shape that depends on the values

    # compiled: its backward is generated once for every call, so it cannot depend on values
    f = tg.compile(lambda x: Bad.apply(x).sum())
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(TraceError, match=r"boolean mask .*test_function.py:\d+ `return g\[x > 0\] \* 2 .*tg.where"):
        f(x).backward()


def test_a_backward_computing_on_its_arrays_sees_their_values():
    # its cotangent comes from `* w`, whose rule is replayed first: the rules' values are not
    # computed (NOTE [values nobody reads]) unless user code runs among them, as here
    class Normalized(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g / max(float(np.abs(g.array).max()), 1.0)  # a scale read with NumPy

    w0 = np.array([0.5, 2.0, -3.0, 0.25] * 2, np.float32)
    for n in (1, 50_000):  # small, and large enough for any size threshold
        x = tg.ones(8 * n, requires_grad=True)
        w = tg.tensor(np.tile(w0, n))
        ((Normalized.apply(x) * w) * 2).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.tile(w0, n) * 2 / 6.0, rtol=1e-6)


class _Scale(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g * w, g * x  # w's gradient is left at the broadcast shape (4, 3)


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
def test_a_custom_gradient_of_the_broadcast_shape_is_summed_down_as_in_pytorch(mode):
    import torch

    fn = (lambda x, w: (_Scale.apply(x, w) ** 2).sum())
    f = fn if mode == "eager" else tg.compile(fn, backend=mode)
    x0, w0 = np.arange(12, dtype=np.float32).reshape(4, 3) / 4, np.array([0.5, -1.0, 2.0], np.float32)
    x, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
    f(x, w).backward()
    np.testing.assert_allclose(w.grad.numpy(), (2 * x0 ** 2 * w0).sum(0), rtol=1e-6)  # closed form
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)

    class TorchScale(torch.autograd.Function):
        forward, backward = staticmethod(_Scale.forward), staticmethod(_Scale.backward)

    (TorchScale.apply(tx, tw) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_a_custom_gradient_of_a_wrong_shape_is_pytorchs_error():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    with pytest.raises(RuntimeError, match=r"Function BadBackward returned an invalid gradient at index 0 - got \[1\] "
                                           r"but expected shape compatible with \[3\]"):
        Bad.apply(tg.ones(3, requires_grad=True)).sum().backward()

"""Custom `autograd.Function`s as the PyTorch tutorials and docs write them, used in training
loops and losses, in every mode (a Function inside `tg.compile` or `tg.grad` is traced into the
generated code like any op)."""
import numpy as np

import transgrad as tg
from harness import assert_close, check_function, check_training, modes, randn, rng


# ---- 1. the tutorial's MyReLU, in a two-layer net ------------------------------------------------------
def my_relu_net(lib):
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

    def loss(w1, w2, x, y):
        relu = MyReLU.apply
        y_pred = relu(x @ w1) @ w2
        return (y_pred - y).pow(2).sum()

    return loss


@modes()
def test_tutorial_my_relu_two_layer_net(mode):
    r = rng(21)
    x, y = randn(r, 8, 5), randn(r, 8, 2)
    check_training(my_relu_net, [randn(r, 5, 6), randn(r, 6, 2)], [x, y], steps=4, lr=1e-2, mode=mode)


# ---- 2. the tutorial's LegendrePolynomial3: y = a + b * P3(c + d * x) ----------------------------------
def legendre_fit(lib):
    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    def loss(a, b, c, d, x, y):
        P3 = LegendrePolynomial3.apply
        y_pred = a + b * P3(c + d * x)
        return (y_pred - y).pow(2).sum()

    return loss


@modes()
def test_tutorial_legendre_polynomial_fit(mode):
    xs = np.linspace(-np.pi, np.pi, 100, dtype=np.float32)
    init = [np.array(v, np.float32) for v in (0.0, -1.0, 0.0, 0.3)]  # the tutorial's initial values
    check_training(legendre_fit, init, [xs, np.sin(xs)], steps=5, lr=5e-5, mode=mode)


# ---- 3. an exp that saves its output (Poisson regression) ---------------------------------------------
def poisson_regression(lib):
    class MyExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, i):
            result = i.exp()
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            result, = ctx.saved_tensors
            return grad_output * result

    def loss(w, b, x, counts):
        eta = x @ w + b
        rate = MyExp.apply(eta)
        return (rate - counts * eta).mean()

    return loss


@modes()
def test_custom_exp_poisson_regression(mode):
    r = rng(23)
    x = randn(r, 12, 3, scale=0.5)
    counts = r.poisson(2.0, size=12).astype(np.float32)
    check_training(poisson_regression, [randn(r, 3, scale=0.1), np.zeros((), np.float32)], [x, counts],
                   steps=4, lr=0.1, mode=mode)


# ---- 4. the docs' MulConstant: a non-tensor argument, `ctx.constant`, a None gradient --------------------
def scaled_loss(lib):
    class MulConstant(lib.autograd.Function):
        @staticmethod
        def forward(ctx, tensor, constant):
            ctx.constant = constant
            return tensor * constant

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.constant, None

    def loss(w, x):
        h = MulConstant.apply(x @ w, 2.5)
        return (h.tanh() ** 2).mean()

    return loss


@modes()
def test_docs_mul_constant(mode):
    r = rng(24)
    w, x = randn(r, 3, 2), randn(r, 6, 3)
    check_function(scaled_loss, [(w, x), (w * 0.5, x)], argnums=0, mode=mode)


# ---- 5. the docs' LinearFunction: several inputs, `ctx.needs_input_grad`, an optional bias -------------
def custom_linear_mlp(lib):
    class LinearFunction(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias=None):
            ctx.save_for_backward(input, weight, bias)
            output = input @ weight.t()
            if bias is not None:
                output += bias
            return output

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output @ weight
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t() @ input
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    def loss(W1, b1, W2, x, y):
        h = LinearFunction.apply(x, W1, b1).tanh()
        out = LinearFunction.apply(h, W2)  # no bias: the third gradient is None
        return ((out - y) ** 2).mean()

    return loss


@modes()
def test_docs_linear_function(mode):
    r = rng(25)
    x, y = randn(r, 10, 4), randn(r, 10, 2)
    init = [randn(r, 5, 4, scale=0.5), np.zeros(5, np.float32), randn(r, 2, 5, scale=0.5)]
    check_training(custom_linear_mlp, init, [x, y], steps=4, lr=0.2, mode=mode)


# ---- 6. a straight-through estimator: sign() forward, clipped identity backward (binarised weights) ----
def binarised_regression(lib):
    class SignSTE(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.sign()

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input.abs() > 1] = 0
            return grad_input

    def loss(w, scale, x, y):
        return ((x @ SignSTE.apply(w)) * scale - y).pow(2).mean()

    return loss


@modes()
def test_straight_through_estimator(mode):
    r = rng(26)
    x, y = randn(r, 16, 6), randn(r, 16)
    w0 = np.array([0.3, -0.2, 1.5, -0.05, 0.8, -1.2], np.float32)  # two weights outside [-1, 1]
    check_training(binarised_regression, [w0, np.array(0.5, np.float32)], [x, y], steps=4, lr=0.02, mode=mode)


# ---- 7. a custom Cube, checked against float64 central differences of the same math in NumPy ---------
def cube_loss(lib):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3 * x ** 2

    def loss(w, x):
        return Cube.apply(w).sum() + Cube.apply(x @ w).mean()

    return loss


def cube_loss_np(w, x):
    return (w ** 3).sum() + ((x @ w) ** 3).mean()


def central_differences(f, w, *args, eps=1e-6):
    w = w.astype(np.float64)
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[i] = eps
        g[i] = (f(w + d, *args) - f(w - d, *args)) / (2 * eps)
    return g


@modes()
def test_custom_cube_against_central_differences(mode):
    r = rng(27)
    w, x = randn(r, 3), randn(r, 5, 3)
    want = central_differences(cube_loss_np, w, x.astype(np.float64))
    if mode.functional:
        got = mode.grad(cube_loss(tg))(tg.tensor(w), tg.tensor(x))
    else:
        wt = tg.tensor(w, requires_grad=True)
        mode.compile(cube_loss(tg))(wt, tg.tensor(x)).backward()
        got = wt.grad
    assert_close(got, want, rtol=1e-4, atol=1e-5, path="grad")

"""Data-dependent Python control flow: an RNN that stops early on its hidden state's norm,
Newton's method with `while abs(f) > tol`, explicit Euler and RK4 integration with the step
count from an argument, the tutorial's doubling loop, a bouncing ball and a per-sample Huber
loss with `if`s inside loops.

Each program is called several times on inputs that take different paths, with one compiled
function (or one `tg.value_and_grad` wrapper) per test, as a user calls it again and again.
Where a decision compares a float32 value with a threshold, the test first checks in float64
that no compared value lies near the threshold, so that PyTorch and transgrad must agree.
"""
import numpy as np

import transgrad as tg
from harness import TORCH, assert_close, check_function, modes, randn, rng, to_np


# ---- 1. an RNN over a sequence that stops early once the hidden state's norm is large ----------------
def rnn(lib):
    def loss(Wx, Wh, v, xs, h0):
        h = h0
        for t in range(xs.shape[0]):
            h = (xs[t] @ Wx + h @ Wh).tanh()
            if h.norm() > 1.5:
                break
        return (h * v).sum()

    return loss


def rnn_steps(Wx, Wh, xs, h0):
    """float64 replay: the norms the loop compares, until it stops."""
    h, norms = h0.astype(np.float64), []
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ Wx + h @ Wh)
        norms.append(np.linalg.norm(h))
        if norms[-1] > 1.5:
            break
    return norms


@modes()
def test_rnn_with_early_stop_on_hidden_norm(mode):
    r = rng(41)
    Wx, Wh, v = randn(r, 2, 4, scale=0.6), randn(r, 4, 4, scale=0.4), randn(r, 4)
    h0 = np.zeros(4, np.float32)
    seqs = [randn(r, 6, 2, scale=s) for s in (0.3, 2.0, 0.3)]
    stops = []
    for xs in seqs:
        norms = rnn_steps(Wx, Wh, xs, h0)
        assert min(abs(n - 1.5) for n in norms) > 1e-3
        stops.append(len(norms))
    assert len(set(stops)) >= 2  # the inputs take different paths
    check_function(rnn, [(Wx, Wh, v, xs, h0) for xs in seqs], argnums=(0, 1, 2), mode=mode)


# ---- 2. Newton's method for a square root: `while abs(y * y - a) > tol` ---------------------------------
def newton_sqrt(lib):
    def sqrt(a):
        y = a / 2 + 0.5
        while abs(y * y - a) > 1e-4:
            y = y - (y * y - a) / (2 * y)
        return y

    return sqrt


def newton_residuals(step, x, residual, stop):
    """float64 replay of a Newton loop: the residuals its test compares, until it stops."""
    res = []
    for _ in range(50):
        res.append(abs(residual(x)))
        if stop(res[-1]):
            break
        x = step(x)
    return res


@modes()
def test_newton_square_root(mode):
    calls = [(np.array(a, np.float32),) for a in (2.0, 30.0, 0.25)]
    for (a,) in calls:  # every residual the loop compares is far (a factor 1.4) from the tolerance
        a = float(a)
        res = newton_residuals(lambda y: y - (y * y - a) / (2 * y), a / 2 + 0.5, lambda y: y * y - a, lambda r: r <= 1e-4)
        assert all(r > 1.4e-4 or r < 1e-4 / 1.4 for r in res)
    made = check_function(newton_sqrt, calls, argnums=0, mode=mode, rtol=1e-5, atol=1e-6)
    # independent of the oracle: the root and the derivative of sqrt
    sqrt = newton_sqrt(tg)
    for (a,) in calls:
        assert abs(sqrt(tg.tensor(a)).item() - np.sqrt(a)) < 1e-5 * max(1, np.sqrt(a))
    if mode.kind != "eager":
        assert made.cache_info().size <= 4  # one trace per iteration count


# ---- 3. Newton's method for a root of x^3 + p x - q, at most 50 iterations ------------------------------
def cubic_root(lib):
    def root(p, q):
        x = lib.tensor(1.0)
        for _ in range(50):
            fx = x ** 3 + p * x - q
            if abs(fx) < 1e-5:
                break
            x = x - fx / (3 * x ** 2 + p)
        return x

    return root


@modes()
def test_newton_cubic_root(mode):
    calls = [(np.array(p, np.float32), np.array(q, np.float32)) for p, q in ((1.0, 3.0), (0.5, 10.0))]
    for p, q in calls:  # every residual the loop compares is far (a factor 2) from the tolerance
        p, q = float(p), float(q)
        res = newton_residuals(lambda x: x - (x ** 3 + p * x - q) / (3 * x ** 2 + p), 1.0,
                               lambda x: x ** 3 + p * x - q, lambda r: r < 1e-5)
        assert all(r > 2e-5 or r < 0.5e-5 for r in res)
    check_function(cubic_root, calls, argnums=(0, 1), mode=mode, rtol=1e-4, atol=1e-5)
    # the implicit function theorem: dx/dp = -x / (3x^2 + p), dx/dq = 1 / (3x^2 + p)
    for p, q in calls:
        x = float(np.real(sorted(np.roots([1.0, 0.0, float(p), -float(q)]), key=lambda z: abs(z.imag))[0]))
        pt, qt = tg.tensor(p, requires_grad=True), tg.tensor(q, requires_grad=True)
        cubic_root(tg)(pt, qt).backward()
        np.testing.assert_allclose([pt.grad.item(), qt.grad.item()], [-x / (3 * x * x + p), 1 / (3 * x * x + p)],
                                   rtol=1e-3)


# ---- 4. explicit Euler integration of logistic growth, the step count an argument ----------------------
def euler_growth(lib):
    def loss(theta, y0, n_steps, dt):
        y = y0
        for _ in range(n_steps):
            y = y + dt * (theta[0] * y - theta[1] * y ** 2)
        return ((y - 1.0) ** 2).sum()

    return loss


@modes()
def test_euler_integration_steps_from_an_argument(mode):
    theta, y0 = np.array([1.2, 0.8], np.float32), np.array([0.1, 0.5, 1.5], np.float32)
    calls = [(theta, y0, 5, 0.1), (theta * 1.1, y0, 5, 0.1), (theta, y0, 3, 0.05)]
    check_function(euler_growth, calls, argnums=(0, 1), mode=mode)


# ---- 5. RK4 for a damped oscillator, state in a stacked tensor ---------------------------------------
def rk4_oscillator(lib):
    def energy_after(k, c, state, n_steps):
        def deriv(s):
            return lib.stack([s[1], -k * s[0] - c * s[1]])

        dt = 0.1
        for _ in range(n_steps):
            k1 = deriv(state)
            k2 = deriv(state + dt / 2 * k1)
            k3 = deriv(state + dt / 2 * k2)
            k4 = deriv(state + dt * k3)
            state = state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return 0.5 * k * state[0] ** 2 + 0.5 * state[1] ** 2

    return energy_after


@modes()
def test_rk4_damped_oscillator(mode):
    k, c, s0 = np.array(4.0, np.float32), np.array(0.3, np.float32), np.array([1.0, 0.0], np.float32)
    calls = [(k, c, s0, 3), (k, np.array(0.6, np.float32), s0, 3)]
    check_function(rk4_oscillator, calls, argnums=(0, 1, 2), mode=mode)


# ---- 6. the tutorial: `while y.data.norm() < 1000: y = y * 2`, `y.backward(v)` ---------------------------
def doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def doubling_grads(mode, x0, v0):
    lib = mode.lib
    if mode.functional:
        if mode.name not in tutorial_loss_functions:
            tutorial_loss_functions[mode.name] = mode.value_and_grad(lambda x, v: (doubling(x) * v).sum())
        _, g = tutorial_loss_functions[mode.name](lib.tensor(x0), lib.tensor(v0))
        return g
    x = lib.tensor(x0, requires_grad=True)
    if mode.name not in tutorial_loss_functions:
        tutorial_loss_functions[mode.name] = mode.compile(doubling)
    y = tutorial_loss_functions[mode.name](x)
    y.backward(lib.tensor(v0))
    return x.grad


tutorial_loss_functions = {}


@modes()
def test_tutorial_doubling_loop(mode):
    tutorial_loss_functions.clear()
    v0 = np.array([0.1, 1.0, 0.0001], np.float32)
    r = rng(46)
    for scale in (0.01, 100.0, 0.01):
        x0 = randn(r, 3, scale=scale)
        want = doubling_grads(TORCH, x0, v0)
        got = doubling_grads(mode, x0, v0)
        assert_close(got, want, rtol=1e-6, atol=0)
        # closed form: v * 2^(k+1), k the number of doublings after the first
        k = 0
        while np.linalg.norm(x0.astype(np.float64) * 2.0 ** (k + 1)) < 1000:
            k += 1
        np.testing.assert_allclose(to_np(got), v0 * 2.0 ** (k + 1), rtol=1e-6)


# ---- 7. a bouncing ball: an `if` inside the time loop; the parameters a tuple argument ------------------
def bouncing_ball(lib):
    def final_height(params, n_steps):
        h, v, restitution = params
        dt, g = 0.05, 9.81
        for _ in range(n_steps):
            v = v - g * dt
            h = h + v * dt
            if h < 0:
                h = -h * restitution
                v = -v * restitution
        return h + 0.1 * v

    return final_height


def bounce_heights(h, v, e, n_steps):
    """float64 replay: the heights the `if` compares."""
    hs = []
    for _ in range(n_steps):
        v = v - 9.81 * 0.05
        h = h + v * 0.05
        hs.append(h)
        if h < 0:
            h, v = -h * e, -v * e
    return hs


@modes()
def test_bouncing_ball(mode):
    calls = []
    for h0, v0, e, n in ((1.0, 0.0, 0.8, 12), (0.5, 2.0, 0.7, 14)):
        assert min(abs(h) for h in bounce_heights(h0, v0, e, n)) > 1e-3
        calls.append((tuple(np.array(a, np.float32) for a in (h0, v0, e)), n))
    check_function(bouncing_ball, calls, argnums=0, mode=mode, rtol=1e-4, atol=1e-5)


# ---- 8. a per-sample Huber loss written with a Python loop and an `if` per sample ----------------------
def looped_huber(lib):
    def loss(w, b, x, y):
        delta = 1.0
        total = 0.0
        pred = x @ w + b
        for i in range(len(y)):
            r = pred[i] - y[i]
            if r.abs() < delta:
                total = total + 0.5 * r ** 2
            else:
                total = total + delta * (r.abs() - 0.5 * delta)
        return total / len(y)

    return loss


@modes()
def test_per_sample_huber_loss(mode):
    r = rng(48)
    x, y = randn(r, 6, 2), randn(r, 6, scale=2.0)
    calls = []
    for w in (randn(r, 2), randn(r, 2)):
        b = np.array(0.1, np.float32)
        resid = x.astype(np.float64) @ w + 0.1 - y
        assert np.min(np.abs(np.abs(resid) - 1.0)) > 1e-3
        calls.append((w, b, x, y))
    check_function(looped_huber, calls, argnums=(0, 1), mode=mode)


# ---- 9. decisions on exact values: `int(t.item())` steps and `if float(t) > c` ----------------------------
def refine(lib):
    def f(x, k):
        n = int((x * x).sum().item())  # more refinement steps for inputs with more energy
        y = x
        for _ in range(n + 1):
            y = y - 0.1 * k * y ** 3
        if float((x * x).sum()) > 4.0:  # a large input: damp it
            y = y * 0.5
        return (y * y).sum()

    return f


@modes()
def test_step_count_from_item_and_float_decision(mode):
    k = np.array(0.5, np.float32)
    xs = [np.array(v, np.float32) for v in ([0.5, 0.4, -0.3], [-2.1, 0.4, 0.9], [1.5, -1.2, 0.3])]
    for x in xs:  # no energy near an integer or near the threshold
        e = float((x.astype(np.float64) ** 2).sum())
        assert abs(e - round(e)) > 1e-3 and abs(e - 4.0) > 1e-3
    check_function(refine, [(x, k) for x in xs], argnums=(0, 1), mode=mode)

"""In-place operations with version counters (PyTorch semantics, and both source lines in
the error when a saved value was modified)."""
import numpy as np
import pytest

import transgrad as tg


def leaf(v):
    return tg.tensor(v, dtype=tg.float64, requires_grad=True)


def test_inplace_values_and_version_counter():
    t = tg.tensor([1.0, 2.0])
    assert t._version == 0
    t.add_(1).mul_(2).sub_(1).div_(3)
    np.testing.assert_allclose(t.numpy(), ((np.array([1.0, 2.0]) + 1) * 2 - 1) / 3, rtol=1e-6)
    t += 1
    t *= 2
    t.clamp_(max=3.0)
    assert t._version == 7
    t.copy_(tg.tensor([5.0, 6.0]))
    t.fill_(2)
    t.zero_()
    np.testing.assert_array_equal(t.numpy(), [0, 0])
    assert t._version == 10


def test_data_alias_writes_through():
    x = leaf([1.0, 2.0])
    x.data.zero_()  # the classic idiom: modify the values, not the history
    np.testing.assert_array_equal(x.detach().numpy(), [0, 0])
    assert x.is_leaf and x.requires_grad


def test_inplace_on_leaf_that_requires_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"add_ at .*test_inplace.py:\d+ `x.add_\(1\)`: a leaf Variable"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="setitem at .*`x\\[0\\] = 2.0`: a leaf Variable that requires grad"):
        x[0] = 2.0
    np.testing.assert_array_equal(x.detach().numpy(), [1.0])


def test_sgd_keeps_the_same_leaf_and_converges():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 3))
    true_w = np.array([1.0, -2.0, 0.5])
    y = tg.tensor(X @ true_w)
    w = leaf(np.zeros(3))
    first = w
    for _ in range(200):
        loss = ((tg.tensor(X) @ w - y) ** 2).mean()
        loss.backward()
        with tg.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
    assert w is first and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), true_w, atol=1e-4)


def test_gradient_through_inplace_on_a_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.add_(1)  # y = 2x + 1
    y *= y  # y = (2x + 1)^2: the multiply needs the old y, which it keeps
    assert y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * np.array([1.0, 2.0]) + 1) * 2)


def test_mul_inplace_with_another_tensor_that_requires_grad():
    x, z = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = x * 1
    y.mul_(z)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(z.grad.numpy(), [1.0, 2.0])


def test_setitem_gradients():
    x, v = leaf([1.0, 2.0, 3.0]), leaf([10.0])
    y = x * 1
    y[1] = v[0] * 2
    (y * tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_allclose(v.grad.numpy(), [4.0])


def test_modified_after_save_names_both_lines():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = y * y  # saves y
    y.add_(1)  # then modifies it
    with pytest.raises(RuntimeError) as info:
        z.sum().backward()
    msg = str(info.value)
    assert "modified by an inplace operation" in msg
    assert "MulBackward0 saved it at" in msg and "z = y * y  # saves y" in msg
    assert "add_ modified it afterwards at" in msg and "y.add_(1)  # then modifies it" in msg
    assert x.grad is None


def test_overwritten_output_that_a_rule_needs():
    x = leaf([0.5, 1.0])
    y = x.exp()  # exp's gradient uses its result
    y.add_(1)
    with pytest.raises(RuntimeError, match="ExpBackward0 saved it"):
        y.sum().backward()


def test_views_share_the_version():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    v = y.reshape(4)  # a view of y's storage
    w = v.sin()  # saves v
    y.mul_(2)  # writes through the view too
    np.testing.assert_allclose(v.detach().numpy(), [2.0, 4.0, 6.0, 8.0])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()


def test_expanded_views_are_read_only():
    y = tg.ones(3).expand(2, 3)
    with pytest.raises(RuntimeError, match=r"add_ at .*`y.add_\(1\)`: this tensor is an expanded view"):
        y.add_(1)


def test_inplace_inside_compiled_function_is_pure():
    def f(x):
        y = x * 1
        y += 2
        y[0] = 0.0
        return (y * y).sum()

    x0 = np.array([1.0, 2.0, 3.0], np.float32)
    for backend in ("numpy", "jax"):
        value, g = tg.value_and_grad(f, backend=backend)(x0)
        assert value.item() == pytest.approx(16 + 25)
        np.testing.assert_allclose(g.numpy(), [0.0, 8.0, 10.0])
    np.testing.assert_array_equal(x0, [1.0, 2.0, 3.0])


def test_inplace_on_an_argument_of_a_compiled_function_reaches_the_callers_tensor():
    """As in eager PyTorch: `x.add_(1)` changes the caller's x (NOTE [effects]); the result
    reads the new values. An argument passed as an array cannot be written: refused."""
    @tg.compile
    def f(x):
        x.add_(1)
        return (x * x).sum()

    for backend in ("numpy", "jax"):
        g = tg.compile(f.fn, backend=backend)
        x = tg.tensor([1.0, 2.0])
        xs, old = [], x
        for _ in range(3):
            out = g(x)
            xs.append(x.numpy().copy())
        assert x is old and g.cache_info().misses == 1
        np.testing.assert_allclose(xs, [[2, 3], [3, 4], [4, 5]])
        assert out.item() == 4 * 4 + 5 * 5
        assert x._version == 3
    with pytest.raises(RuntimeError, match=r"add_ at .*`x.add_\(1\)`: this argument of a compiled function came as "
                       "an array"):
        f(np.array([1.0, 2.0], np.float32))


def buffer_fill(x):
    buf = tg.zeros(5)
    buf[1:4] = x ** 2
    buf[0] += x[0]
    return (buf * tg.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_buffer_made_inside_a_compiled_function_is_written_in_place(backend):
    x0 = np.array([1.0, 2.0, 3.0], np.float32)
    # closed form: x0 + 2 x0^2 + 3 x1^2 + 4 x2^2 -> gradient (1 + 4 x0, 6 x1, 8 x2)
    want = x0[0] + 2 * x0[0] ** 2 + 3 * x0[1] ** 2 + 4 * x0[2] ** 2
    f = tg.compile(buffer_fill, backend=backend)
    for _ in range(2):  # the second call runs the trace: its constant buffer was not written by the first
        x = tg.tensor(x0, requires_grad=True)
        out = f(x)
        out.backward()
        assert out.item() == pytest.approx(want)
        np.testing.assert_allclose(np.asarray(x.grad.array), [1 + 4 * x0[0], 6 * x0[1], 8 * x0[2]])
    value, g = tg.value_and_grad(buffer_fill, backend=backend)(x0)
    assert value.item() == pytest.approx(want)
    np.testing.assert_allclose(g.numpy(), [1 + 4 * x0[0], 6 * x0[1], 8 * x0[2]])


def _square_sum(x):
    return (x * x).sum()


def _matmul_t(x, w):
    return (x @ w.t()).sum()


def _doubled(x):
    return (x * 2).sum()


def _exp(x):
    return x.exp()


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
def test_an_argument_written_in_place_after_a_compiled_call_raises_when_its_backward_reads_it(mode):
    # the compiled backward reads x (a parameter it returns as a residual), w.t() (a view of w), exp's result
    wrap = (lambda f: f) if mode == "eager" else (lambda f: tg.compile(f, backend=mode))
    for fn, args in ((_square_sum, ([1.0, 2.0],)), (_matmul_t, ([[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]))):
        f = wrap(fn)
        for _ in range(2):  # the second call runs the cached trace
            ts = [tg.tensor(a, requires_grad=True) for a in args]
            out = f(*ts)
            with tg.no_grad():
                ts[-1].add_(1.0)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                out.backward()
    f = wrap(_exp)  # the backward reads the result the call returned: writing into it raises too
    for _ in range(2):
        y = f(tg.tensor([0.0, 1.0], requires_grad=True))
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    f = wrap(_doubled)  # a backward that reads nothing of x: the write is no error
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    out = f(x)
    with tg.no_grad():
        x.add_(1.0)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def _exp_and_square_sum(x):
    y = x.exp()
    return y, (y * y).sum()


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
def test_an_output_that_another_outputs_backward_reads_is_checked(mode):
    f = _exp_and_square_sum if mode == "eager" else tg.compile(_exp_and_square_sum, backend=mode)
    for write in (True, False):
        for _ in range(2):  # first and cached call
            x = tg.tensor(np.array([0.1, 0.2], np.float32), requires_grad=True)
            y, z = f(x)
            if write:
                y.add_(1.0)
                with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                    z.backward()
            else:
                z.backward()  # d/dx sum(exp(x)^2) = 2 exp(2x)
                np.testing.assert_allclose(np.asarray(x.grad.array), 2 * np.exp(2 * np.array([0.1, 0.2])), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_compiled_training_loop_updating_its_weights_in_place(backend):
    # loss = f(w); loss.backward(); w -= lr * w.grad: each step's write comes after its backward
    rng = np.random.default_rng(5)
    x0, target = rng.standard_normal((8, 3)), rng.standard_normal(8)
    w0 = rng.standard_normal(3)
    f = tg.compile(lambda w, x, t: ((x @ w - t) ** 2).mean(), backend=backend)
    w = tg.tensor(w0.astype(np.float32), requires_grad=True)
    x, t = tg.tensor(x0.astype(np.float32)), tg.tensor(target.astype(np.float32))
    want = w0.copy()
    for _ in range(6):
        loss = f(w, x, t)
        loss.backward()
        with tg.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
        want -= 0.1 * 2 * x0.T @ (x0 @ want - target) / len(target)  # the closed-form gradient step
    np.testing.assert_allclose(w.detach().numpy(), want, rtol=1e-4, atol=1e-5)


WRITTEN_AFTER = [
    lambda x, w: ((x @ w).tanh() * x.sum()).sum(),
    lambda x, w: (x.sigmoid() * w.sum()).mean(),
    lambda x, w: (x.relu() ** 2).sum() + (w * w).sum(),
    lambda x, w: (x.exp() / w.exp().sum()).sum(),
    lambda x, w: (x.reshape(-1) * w.reshape(-1)[:x.numel()]).sum(),
    lambda x, w: (x.t() @ w.t()).sum(),
    lambda x, w: x.softmax(dim=1).max() + w.abs().sum(),
    lambda x, w: (x.norm() * w).sum(),
    lambda x, w: x.sqrt().sum() + w.log().sum(),
    lambda x, w: x.clamp(0.1, 0.9).sum() * w.mean(),
    lambda x, w: (x.unsqueeze(0) * w.unsqueeze(1)).sum(),
    lambda x, w: (x.t().reshape(-1) * w.reshape(-1)).sum(),  # x.t().reshape(-1) is a copy, w.reshape(-1) a view
]


def _written_then_backward(g, x0, w0, which, *extra):
    """(x.grad, w.grad) of `g(x, w, *extra).backward()` after argument `which` is scaled in place between
    the call and the backward, or None where that raises 'modified by an inplace operation'."""
    x, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
    out = g(x, w, *extra)
    with tg.no_grad():
        (x, w)[which].mul_(1.5)
    try:
        out.backward()
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e)
        return None
    return np.asarray(x.grad.array), np.asarray(w.grad.array)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("k", range(len(WRITTEN_AFTER)))
def test_compiled_code_raises_or_agrees_with_eager_when_an_argument_is_written_before_backward(k, backend):
    # eager autograd decides (it raises exactly where PyTorch does); compiled code must raise too, or give
    # the same gradient when its backward does not read the value that changed (NOTE [watched])
    fn = WRITTEN_AFTER[k]
    rng = np.random.default_rng(k)
    x0, w0 = (np.abs(rng.standard_normal((3, 3))).astype(np.float32) + 0.2 for _ in range(2))
    f = tg.compile(fn, backend=backend)
    for which in (0, 1):
        results = [_written_then_backward(g, x0, w0, which) for g in (fn, f, f)]  # eager, first and cached call
        for got in results[1:]:
            assert (got is None) == (results[0] is None)
            if got is not None:
                for a, b in zip(got, results[0]):
                    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _loop_reads_both(x, w, n):
    h = x
    for _ in range(n):
        h = h * w + x  # saves h (x on the first trip) and w
    return h.sum()


def _loop_reads_neither(x, w, n):
    h = x
    for _ in range(n):
        h = (h + w).tanh()  # saves only tanh's results: writing x or w is no error
    return h.sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn", [_loop_reads_both, _loop_reads_neither])
def test_a_rolled_loop_raises_or_agrees_with_eager_when_an_argument_is_written_before_backward(fn, backend):
    # a rolled loop's backward is the VJP of the loop, not a replay of eager's rules; what it
    # watches must still be what eager's rules read (NOTE [watched])
    rng = np.random.default_rng(3)
    x0, w0 = (rng.uniform(-0.9, 0.9, (3, 3)).astype(np.float32) for _ in range(2))
    f = tg.compile(fn, backend=backend)
    assert "# for _ in range(n):" in f.code(tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True), 3)
    for n in (3, 5):  # the second trip count runs the same rolled program
        for which in (0, 1):
            results = [_written_then_backward(g, x0, w0, which, n) for g in (fn, f)]
            assert (results[1] is None) == (results[0] is None)
            assert (results[0] is None) == (fn is _loop_reads_both)
            if results[0] is not None:
                for a, b in zip(results[1], results[0]):
                    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _bumps_its_buffer(buf, w):
    buf.add_(1.0)  # an effect on an argument: the backward reads its new value
    return (buf @ w).sum()


def _batchnorm_model():
    bn = tg.nn.BatchNorm1d(3)  # training mode: running statistics are written at every call (an effect)
    return lambda x, w: (bn(x @ w) ** 2).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("make", [lambda: _bumps_its_buffer, _batchnorm_model], ids=["argument", "batchnorm"])
def test_a_call_with_effects_raises_or_agrees_with_eager_when_an_argument_is_written_before_backward(make, backend):
    # a GAN-style step: the weights are written (an optimizer step) between a forward and its backward;
    # eager raises where its rules read them, and so must the compiled call whose program has effects
    x0 = np.arange(12, dtype=np.float32).reshape(4, 3) / 6 + 0.5
    w0 = np.array([[0.5, 0.1, 0.0], [0.2, -0.4, 0.3], [0.0, 0.6, 0.5]], np.float32)
    eager, f = make(), make()
    f = tg.compile(f, backend=backend)
    for write in (None, 0, 1):
        for _ in range(2):  # a first and a cached call
            results = []
            for g in (eager, f):
                x, w = tg.tensor(x0), tg.tensor(w0, requires_grad=True)
                out = g(x, w)
                if write is not None:
                    with tg.no_grad():
                        (x, w)[write].mul_(1.5)
                try:
                    out.backward()
                    results.append(np.asarray(w.grad.array))
                except RuntimeError as e:
                    assert "modified by an inplace operation" in str(e)
                    results.append(None)
            assert (results[0] is None) == (write == 0)  # the gradient of w reads x, not w
            assert (results[1] is None) == (results[0] is None)
            if results[0] is not None:
                np.testing.assert_allclose(results[1], results[0], rtol=1e-4, atol=1e-5)


def _overwrites(lib):
    """zero_, fill_ and copy_ over a value with history: the old values take no gradient."""
    def zeroed(x):
        y = x * 2
        y.zero_()
        return (y * 3 + x).sum()

    def zeroed_then_added(x):
        y = x * 2
        y.zero_().add_(x)
        return (y * 3 + x).sum()

    def filled(x):
        y = x * 2
        y.fill_(5.0)
        return (y * y + x).sum()

    def copied_from_a_constant(x):
        y = x * 2
        y.copy_(x.detach() * 7)
        return (y * x).sum()

    def zeroed_under_a_view(x):
        y = (x * 2).reshape(2, 2)
        z = y[:, 1:]
        y.zero_()
        return (z * 3 + y).sum() + (x * x).sum()

    def zeroed_through_a_view(x):
        y = (x * 2).reshape(2, 2)
        y.view(-1).zero_()
        return (y * 3).sum() + x.sum()

    def filled_with_a_tensor(x):
        y = x * 2
        y.fill_(x.sum() * 0.5)
        return (y * y).sum()

    return [zeroed, zeroed_then_added, filled, copied_from_a_constant, zeroed_under_a_view, zeroed_through_a_view,
            filled_with_a_tensor]


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
@pytest.mark.parametrize("k", range(7))
def test_overwriting_a_value_with_history_stops_its_gradient_as_in_pytorch(k, mode):
    import torch

    x0 = np.array([1.0, 2.0, -1.0, 0.5], np.float32)
    xt = torch.tensor(x0, requires_grad=True)
    _overwrites(torch)[k](xt).backward()
    fn = _overwrites(tg)[k]
    f = fn if mode == "eager" else tg.compile(fn, backend=mode)
    for scale in (1.0, -2.0):  # the second call runs the cached trace
        x = tg.tensor(x0 * scale, requires_grad=True)
        f(x).backward()
        xt = torch.tensor(x0 * scale, requires_grad=True)
        _overwrites(torch)[k](xt).backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)

"""Tensor hooks run by the generated backward, and anomaly detection."""
import numpy as np
import pytest

import transgrad as tg
from transgrad import engine
from transgrad.trace import TraceError


def test_hook_sees_the_gradient_and_can_replace_it_every_step():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    before = engine.stats["misses"]
    for _ in range(3):
        y = x * 3
        y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)  # a new lambda every step
        (y * y).sum().backward()
    # dL/dy = 2y = 6x; the hook scales it by 10; dy/dx = 3
    np.testing.assert_allclose(x.grad.numpy(), 3 * (6 * np.array([1.0, 2.0]) * 10 * 3))
    assert len(seen) == 3 and all(np.allclose(s, [6.0, 12.0]) for s in seen)
    assert engine.stats["misses"] - before == 1  # generated once, hooks passed in at run time
    y = x * 3
    y.register_hook(lambda g: g)
    assert "run_hook(hook" in tg.backward_code((y * y).sum())


def test_hook_on_a_leaf_and_remove():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: g * 0 + 7)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_hook_returning_a_wrong_shape_is_an_error():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: tg.ones(3))
    with pytest.raises(RuntimeError, match=r"must return None or a tensor of shape \(2,\)"):
        y.sum().backward()


def test_hook_needs_requires_grad():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tg.ones(2).register_hook(lambda g: g)


def test_hooks_with_create_graph_see_differentiable_gradients():
    x = tg.tensor([2.0], requires_grad=True)
    y = x ** 3
    y.register_hook(lambda g: g * x)  # the replacement depends on x
    (gx,) = tg.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), [3 * 4.0 * 2.0])  # 3x^2 * x
    (g2,) = tg.autograd.grad(gx.sum(), x)
    np.testing.assert_allclose(g2.numpy(), [9 * 4.0])  # d/dx 3x^3 = 9x^2


def test_hooks_on_jax_tensors_are_traced_into_the_jitted_backward():
    import jax.numpy as jnp

    x = tg.tensor(jnp.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)  # a pure function of the gradient
    (y * y).sum().backward()
    assert type(x.grad.array).__module__.startswith("jax")
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, 2.0]) * 10 * 3)


def test_hooks_inside_compiled_functions_are_traced():
    def f(x):
        y = x * 3
        y.register_hook(lambda g: g * 10)
        return (y * y).sum()

    for backend in ("numpy", "jax"):
        g = tg.grad(f, backend=backend)(np.array([1.0, 2.0], np.float32))
        np.testing.assert_allclose(g.numpy(), 6 * np.array([1.0, 2.0]) * 10 * 3)


def test_detect_anomaly_names_the_operation_and_forward_line():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        y = tg.sqrt(x)  # d sqrt / dx is infinite at 0
        with pytest.raises(RuntimeError) as info:
            (y * 2).sum().backward()
    assert "SqrtBackward0" in str(info.value) and "y = tg.sqrt(x)" in str(info.value)
    assert x.grad is None
    (tg.sqrt(x) * 2).sum().backward()  # outside the mode: IEEE infinity, no check
    assert np.isinf(x.grad.numpy()[0])


def test_detect_anomaly_on_the_jax_backward():
    import jax.numpy as jnp

    x = tg.tensor(jnp.array([0.0, 1.0]), requires_grad=True)
    with tg.autograd.detect_anomaly():
        y = x.log()
        with pytest.raises(RuntimeError, match="LogBackward0"):
            y.sum().backward()


def test_anomaly_mode_passes_finite_gradients():
    x = tg.tensor([1.0, 4.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        tg.sqrt(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 0.5 / np.sqrt([1.0, 4.0]))


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_retain_grad_inside_a_compiled_function(backend):
    def doubled(x):
        h = x * 2
        h.retain_grad()
        return h

    def loss_and_hidden(x):
        h = x * 2
        h.retain_grad()
        return (h.tanh() ** 2).sum(), h

    x = tg.tensor([0.5, -1.0], requires_grad=True)
    h = tg.compile(doubled, backend=backend)(x)
    (h * h).sum().backward()  # h's own backward reaches it: its .grad is kept, as eager keeps it
    np.testing.assert_allclose(h.grad.numpy(), 2 * np.array([1.0, -2.0]), rtol=1e-6)
    # the loss is a sibling output: its backward goes to x, not through h; h.grad would be None
    with pytest.raises(TraceError, match=r"retain_grad\(\) of output 1 of compiled loss_and_hidden, which another"):
        tg.compile(loss_and_hidden, backend=backend)(x)
    a, b = tg.compile(lambda x: (doubled(x),) * 2, backend=backend)(x)  # one tensor twice: nothing computed from it
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
def test_a_hook_that_scales_its_gradient_in_place_as_in_pytorch(mode):
    import torch

    def f(L, x):
        h = x * 2
        h.register_hook(lambda g: g.mul_(2))  # returns None: the gradient is the one it modified
        return (h * 3).sum()

    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    f(torch, xt).backward()
    fn = (lambda x: f(tg, x))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (fn if mode == "eager" else tg.compile(fn, backend=mode))(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())  # 2 * 2 * 3 = 12
    leaf = tg.tensor([1.0, 2.0], requires_grad=True)  # on a leaf, the sum's gradient is a read-only broadcast
    leaf.register_hook(lambda g: g.mul_(2))
    (leaf * 3).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), [6.0, 6.0])


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_hook_on_an_output_another_output_is_computed_from_raises(backend):
    # loss and hidden are both returned: loss's backward goes to x directly, so a hook on hidden would
    # never see loss's gradient (it was silently not called); independent outputs take hooks as before
    def loss_and_hidden(x):
        h = (x * 2).tanh()
        return (h ** 2).sum(), h

    x = tg.tensor([0.5, -1.0], requires_grad=True)
    loss, h = tg.compile(loss_and_hidden, backend=backend)(x)
    for attach in (lambda: h.register_hook(lambda g: g * 2), h.retain_grad):
        with pytest.raises(RuntimeError, match=r"on output 1 of compiled loss_and_hidden, which another of its "
                                               r"outputs is computed from"):
            attach()
    seen = []
    a, b = tg.compile(lambda x: ((x * 2).sum(), x * 3), backend=backend)(x)
    b.register_hook(seen.append)
    b.sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_compiled_step_that_runs_backward_inside_may_return_its_logits_too(backend):
    # the outputs' graph is freed by the backward inside: finding which output another is computed from
    # must not walk it (a regression: every such step raised "backward through the graph a second time")
    def run(compiled):
        tg.manual_seed(3)
        model = tg.nn.Linear(3, 2)

        def step(x, y):
            logits = model(x)
            loss = tg.nn.functional.cross_entropy(logits, y)
            loss.backward()
            return loss, logits

        f = tg.compile(step, backend=backend) if compiled else step
        x, y = tg.tensor(np.arange(12, dtype=np.float32).reshape(4, 3) / 6), tg.tensor([0, 1, 0, 1])
        for _ in range(2):  # first call and cached trace: the gradients accumulate
            loss, logits = f(x, y)
        return loss.item(), logits.detach().numpy(), model.weight.grad.numpy(), model.bias.grad.numpy()

    for got, want in zip(run(True), run(False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

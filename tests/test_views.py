"""Views, aliases and in-place writes against PyTorch as the oracle: the same program runs
under `torch` and under transgrad, and both give the same numbers, or both raise.

Each program takes the library as `lib` and returns a tuple of tensors (or raises).
"""
import numpy as np
import pytest
import torch

import transgrad as tg


def leaf(lib, values):
    return lib.tensor(values, requires_grad=True)


def inc_element(lib):  # `y[0] += 1`: a view written in place, then the base used
    x = leaf(lib, [1.0, 2.0])
    y = x * 1.0
    y[0] += 1
    y.sum().backward()
    return x.grad, y


def slice_assign_from_itself(lib):
    x = leaf(lib, [1.0, 2.0, 3.0])
    y = x * 1.0
    y[0:2] = y[0:2] * 3
    (y * y).sum().backward()
    return x.grad, y


def exp_saves_its_output(lib):  # exp's gradient reads its result, not its input
    x = leaf(lib, [1.0, 2.0])
    y = x * 1.0
    z = y.exp()
    y.add_(1)
    z.sum().backward()
    return x.grad, y


def mul_keeps_the_old_self(lib):
    x = leaf(lib, [1.0, 2.0])
    z = leaf(lib, [1.0, 1.0])
    y = x * 2
    y.mul_(z)
    y.sum().backward()
    return x.grad, z.grad


def write_through_view_then_base(lib):
    x = leaf(lib, [1.0, 2.0])
    z = x * 2
    z[0:1].mul_(3)
    (z * z).sum().backward()
    return x.grad, z


def write_base_then_old_view(lib):
    x = leaf(lib, [1.0, 2.0])
    z = x * 2
    v = z[0:1]
    z.mul_(3)
    (v * v).sum().backward()
    return x.grad, v


def element_view_sees_base_write(lib):
    x = leaf(lib, [1.0, 2.0])
    z = x * 2
    v = z[0]
    z.mul_(3)
    (v * v).backward()
    return x.grad, v


def constant_view_takes_a_gradient(lib):
    w = leaf(lib, [1.0, 2.0])
    c = lib.zeros(2)
    c[0:1].add_(w[0:1] * 2)
    (c * c).sum().backward()
    return w.grad, c


def reshape_view_written(lib):
    x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    y = x * 1.0
    y.view(4)[1:3].mul_(10)
    (y * y).sum().backward()
    return x.grad, y


def transpose_view_written(lib):
    x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    y = x * 1.0
    y.t()[0].mul_(5)  # the first column of y
    (y * y).sum().backward()
    return x.grad, y


def clamp_in_place_on_a_non_leaf(lib):
    x = leaf(lib, [-1.0, 0.5, 2.0])
    y = x * 2
    y.clamp_(min=0.0, max=3.0)
    (y * y).sum().backward()
    return x.grad, y


def grad_zero_after_broadcast(lib):
    w = leaf(lib, [1.0, 2.0])
    (w * 2).sum().backward()
    w.grad.zero_()
    (w * 3).sum().backward()
    return (w.grad,)


def grad_data_zero(lib):
    w = leaf(lib, [1.0, 2.0])
    (w * 2).sum().backward()
    w.grad.data.zero_()
    (w * 3).sum().backward()
    return (w.grad,)


def scalar_grad_data_zero(lib):
    b = leaf(lib, 1.5)
    (b * 3).backward()
    b.grad.data.zero_()
    (b * 4).backward()
    return (b.grad,)


def grads_do_not_share_memory(lib):
    x = leaf(lib, [1.0, 2.0])
    w = leaf(lib, [3.0, 4.0])
    (x + w).sum().backward()
    x.grad.zero_()
    return x.grad, w.grad


def seed_is_not_the_gradient(lib):
    x = leaf(lib, [1.0, 2.0])
    v = lib.tensor([1.0, 1.0])
    (x * 1.0).backward(v)
    x.grad.add_(5)
    return v, x.grad


def accumulation_is_in_place(lib):
    w = leaf(lib, [1.0, 2.0])
    (w * 2).sum().backward()
    g = w.grad
    (w * 3).sum().backward()
    return g, w.grad


def sgd_through_data(lib):
    w = leaf(lib, [1.0, -2.0])
    xs = lib.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    ys = lib.tensor([1.0, 0.0, 2.0])
    for _ in range(5):
        loss = ((xs @ w - ys) ** 2).mean()
        loss.backward()
        w.data -= 0.1 * w.grad.data
        w.grad.data.zero_()
    return (w,)


# PyTorch raises for these: a value the backward reads was modified
def saved_input_modified(lib):
    x = leaf(lib, [1.0, 2.0])
    y = x * 2
    w = y * x
    y.add_(1)
    w.sum().backward()


def output_modified_through_a_view(lib):
    x = leaf(lib, [1.0, 2.0])
    z = x.exp()
    z[0:1].mul_(2)
    (z * 1).sum().backward()


def sigmoid_output_modified(lib):
    x = leaf(lib, [1.0, 2.0])
    z = x.sigmoid()
    z.mul_(2)
    z.sum().backward()


def element_views_saved_then_written(lib):
    x = leaf(lib, [1.0, 2.0, 3.0])
    y = x * 2
    y[2] = y[0] * y[1]
    y.sum().backward()


def view_of_a_leaf_written(lib):
    w = leaf(lib, [1.0, 2.0])
    w[0:1].zero_()


def ellipsis_index(lib):  # `y[...]` is y; `y[..., 0]` a view of its first column, written in place
    x = leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
    y = x * 2
    z = y[...] * 3
    c = y[..., 0]
    c.mul_(3)
    (z.sum() + (y * y).sum()).backward()
    return x.grad, y, z


VALUE_CASES = [ellipsis_index, inc_element, slice_assign_from_itself, exp_saves_its_output, mul_keeps_the_old_self,
               write_through_view_then_base, write_base_then_old_view, element_view_sees_base_write,
               constant_view_takes_a_gradient, reshape_view_written, transpose_view_written,
               clamp_in_place_on_a_non_leaf, grad_zero_after_broadcast, grad_data_zero, scalar_grad_data_zero,
               grads_do_not_share_memory, seed_is_not_the_gradient, accumulation_is_in_place, sgd_through_data]
ERROR_CASES = [saved_input_modified, element_views_saved_then_written, output_modified_through_a_view, sigmoid_output_modified, view_of_a_leaf_written]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().array)


@pytest.mark.parametrize("program", VALUE_CASES, ids=lambda p: p.__name__)
def test_same_numbers_as_pytorch(program):
    want = program(torch)
    got = program(tg)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-6)


@pytest.mark.parametrize("program", VALUE_CASES, ids=lambda p: p.__name__)
def test_same_numbers_on_jax_arrays(program, monkeypatch):
    """The same programs with every tensor on a JAX device: JAX arrays are immutable, so
    views and aliases see each other's writes only through transgrad's bookkeeping."""
    real = tg.tensor

    def jax_tensor(data, dtype=None, requires_grad=False):
        return real(data, dtype=dtype).to("jax").requires_grad_(requires_grad)

    want = program(torch)
    monkeypatch.setattr(tg, "tensor", jax_tensor)
    monkeypatch.setattr(tg, "zeros", lambda *s: jax_tensor(np.zeros(s, np.float32)))
    got = program(tg)
    for g, w in zip(got, want, strict=True):
        assert type(g.array).__module__.startswith("jax")
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-6)


@pytest.mark.parametrize("program", ERROR_CASES, ids=lambda p: p.__name__)
def test_raises_where_pytorch_raises(program):
    with pytest.raises(RuntimeError):
        program(torch)
    with pytest.raises(RuntimeError, match="in-place operation|inplace operation"):
        program(tg)


def test_the_error_names_the_saving_and_the_modifying_lines():
    with pytest.raises(RuntimeError) as info:
        output_modified_through_a_view(tg)
    msg = str(info.value)
    assert "ExpBackward0 saved it at" in msg and "z = x.exp()" in msg
    assert "mul_ modified it afterwards at" in msg and "z[0:1].mul_(2)" in msg


def test_in_place_on_a_view_inside_a_compiled_function():
    def f(x):
        y = x * 2
        y[0:2] += 1
        y[2] = y[0] + y[1] * 3
        return (y * y).sum()

    x0 = np.array([1.0, 2.0, 3.0], np.float32)
    xt = torch.tensor(x0, requires_grad=True)
    f(xt).backward()
    for backend in ("numpy", "jax"):
        value, g = tg.value_and_grad(f, backend=backend)(tg.tensor(x0))
        np.testing.assert_allclose(value.item(), f(torch.tensor(x0)).item(), rtol=1e-6)
        np.testing.assert_allclose(g.numpy(), xt.grad.numpy(), rtol=1e-6)
        c = tg.compile(f, backend=backend)
        x = tg.tensor(x0, requires_grad=True)
        c(x).backward()
        np.testing.assert_allclose(np.asarray(x.grad.array), xt.grad.numpy(), rtol=1e-6)

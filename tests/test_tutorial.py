"""The seed tutorial, end to end, against its closed-form answers."""
import os
import subprocess
import sys

import numpy as np
import pytest

import transgrad as tg
from transgrad.autograd import Variable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tutorial_part_one():
    x = Variable(tg.ones(2, 2), requires_grad=True)
    assert repr(x) == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"
    y = x + 2
    np.testing.assert_array_equal(y.numpy() if not y.requires_grad else y.detach().numpy(), np.full((2, 2), 3.0))
    assert x.grad_fn is None
    assert type(y.grad_fn).__name__ == "AddBackward0" and y.grad_fn.name() == "AddBackward0"
    assert repr(y.grad_fn).startswith("<AddBackward0 object at 0x")
    z = y * y * 3
    out = z.mean()
    assert repr(out) == "tensor(27., grad_fn=<MeanBackward0>)"
    np.testing.assert_array_equal(z.detach().numpy(), np.full((2, 2), 27.0))
    out.backward()
    # o = 1/4 sum 3 (x_i + 2)^2  =>  do/dx_i = 3/2 (x_i + 2) = 4.5
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 4.5, np.float32))
    assert x.grad.dtype == tg.float32
    assert repr(x.grad) == "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])"


def test_tutorial_part_one_random_points():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.standard_normal((2, 2)).astype(np.float32)
        x = tg.tensor(a, requires_grad=True)
        y = x + 2
        ((y * y * 3).mean()).backward()
        np.testing.assert_allclose(x.grad.numpy(), 1.5 * (a + 2), rtol=1e-6)


def test_backward_with_the_tutorials_explicit_gradient():
    x = Variable(tg.ones(2, 2), requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    out.backward(tg.Tensor([1.0]))  # the tutorial's spelling of out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 4.5))


@pytest.mark.parametrize("seed", range(8))
def test_tutorial_loop(seed):
    tg.manual_seed(seed)
    x = Variable(tg.randn(3), requires_grad=True)
    y = x * 2
    k = 0
    while y.data.norm() < 1000:
        y = y * 2
        k += 1
    v = tg.FloatTensor([0.1, 1.0, 0.0001])
    y.backward(v)
    np.testing.assert_allclose(x.grad.numpy(), np.array([0.1, 1.0, 0.0001], np.float32) * 2.0 ** (k + 1), rtol=1e-6)
    assert np.linalg.norm(x.detach().numpy() * 2.0 ** (k + 1)) >= 1000


def test_tutorial_example_script_runs():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "autograd_tutorial.py")],
                       capture_output=True, text=True, check=True)
    assert "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])" in r.stdout
    assert "def out_backward(g_out, y):" in r.stdout
    assert "def y_backward(g_y):" in r.stdout
    line = next(line for line in r.stdout.splitlines() if line.startswith("k = "))
    k = int(line.split()[2])
    grad_line = r.stdout.splitlines()[-1]
    values = [float(v) for v in grad_line[len("tensor(["):grad_line.index("]")].split(",")]
    np.testing.assert_allclose(values, np.array([0.1, 1.0, 0.0001]) * 2 ** (k + 1), rtol=1e-4)

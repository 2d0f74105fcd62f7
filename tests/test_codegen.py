"""Golden sources: the generated backward code of a few functions, pinned and run."""
import copy
import os
import pickle
import re

import libcst as cst
import numpy as np
import pytest

import transgrad as tg
from transgrad.backends import load, numpy as np_backend

import golden_cases

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def check_golden(name, source):
    path = os.path.join(GOLDEN, name + ".py")
    if os.environ.get("TRANSGRAD_REGEN_GOLDEN"):
        with open(path, "w") as f:
            f.write(source)
    with open(path) as f:
        assert source == f.read(), f"generated code for {name} changed; see {path}"


def test_tutorial_backward_golden_and_values():
    x, out = golden_cases.tutorial()
    src = tg.backward_code(out)
    check_golden("tutorial_backward", src)
    # the pinned code computes the closed-form gradient 3/2 (x + 2)
    fn = load(src, "golden", np_backend.NAMESPACE)["out_backward"]
    y = np.full((2, 2), 3.0, np.float32)
    np.testing.assert_array_equal(fn(np.float32(1.0), y), np.full((2, 2), 4.5))


def test_tutorial_loop_backward_golden_and_values():
    x0 = np.array([0.5, -1.0, 2.0], np.float32)
    y = golden_cases.tutorial_loop(tg.tensor(x0, requires_grad=True))
    src = tg.backward_code(y, tg.ones(3))
    check_golden("tutorial_loop_backward", src)
    k = 0  # the oracle: doublings until the norm reaches 1000
    while np.linalg.norm(x0 * 2.0 ** (k + 1)) < 1000:
        k += 1
    # the k + 1 multiplies by 2 fold into one multiply by 2 ** (k + 1)
    assert len(re.findall(r"^    g_\w+ = ", src, re.M)) == 1
    fn = load(src, "golden", np_backend.NAMESPACE)["y_backward"]
    v = np.array([0.1, 1.0, 0.0001], np.float32)
    np.testing.assert_array_equal(fn(v), v * 2.0 ** (k + 1))


def test_mlp_backward_golden():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((4, 3)))
    w1 = tg.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w2 = tg.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    check_golden("mlp_backward", tg.backward_code(golden_cases.mlp(x, w1, w2)))


@pytest.mark.parametrize("name", ["tutorial_backward", "tutorial_loop_backward", "mlp_backward", "compiled_rnn_numpy",
                                  "compiled_rnn_jax"])
def test_golden_files_are_valid_python(name):
    with open(os.path.join(GOLDEN, name + ".py")) as f:
        cst.parse_module(f.read())


def test_names_never_shadow_builtins_or_xp():
    def f(sum, xp):  # user variables named like a builtin and the backend module
        max = sum * xp
        return max.sum()

    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    out = f(a, b)
    src = tg.backward_code(out)
    assert not re.search(r"^\s+(sum|max|xp) =", src, re.M), src
    out.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3, 4])
    np.testing.assert_array_equal(b.grad.numpy(), [1, 2])


def test_tensors_made_on_one_line_are_named_after_their_variables():
    # `w, b = ...` names each leaf by the call that made it; its gradient code reads them by name
    rng = np.random.default_rng(0)
    w0, b0, x0 = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((4, 3))
    weight, bias = tg.tensor(w0, requires_grad=True), tg.tensor(b0, requires_grad=True)
    inputs, scale = tg.tensor(x0), tg.ones(1) * 2
    out = ((inputs @ weight + bias).tanh() * scale).sum()
    src = tg.backward_code(out)
    header = src.splitlines()[0]
    assert "inputs" in header and "return (g_bias, g_weight)" in src, src
    assert "scale" not in header  # made by `*`, not by a constructor: not a leaf named from its line
    out.backward()
    t = np.tanh(x0 @ w0 + b0)
    np.testing.assert_allclose(weight.grad.numpy(), x0.T @ (2 * (1 - t * t)), rtol=1e-12)
    np.testing.assert_allclose(bias.grad.numpy(), (2 * (1 - t * t)).sum(0), rtol=1e-12)
    assert pickle.loads(pickle.dumps(weight)).detach().numpy().tolist() == w0.tolist()  # still picklable


class Tagged(tg.Tensor):
    pass


def test_tensors_parameters_and_modules_pickle_and_copy_after_a_backward():
    model = tg.nn.Sequential(tg.nn.Linear(3, 2), tg.nn.Tanh())
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    model(x).sum().backward()
    for copied in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        for p, q in zip(model.parameters(), copied.parameters()):
            assert type(q) is type(p) and q.requires_grad
            np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())
        np.testing.assert_array_equal(copied(x).detach().numpy(), model(x).detach().numpy())
        copied(x).sum().backward()  # its parameters are leaves of their own
    u = Tagged([1.0, 2.0])  # a subclass's own attributes survive too
    u.tag = "kept"
    assert pickle.loads(pickle.dumps(u)).tag == "kept" and copy.deepcopy(u).tag == "kept"
